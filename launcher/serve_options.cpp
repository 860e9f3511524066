#include "launcher/serve_options.hpp"

#include "base/errors.hpp"
#include "base/option_values.hpp"
#include "launcher/cli.hpp"

namespace launcher {

namespace {

// The one table of serve's settings (README "Serving" is written from it).
constexpr base::OptionSpec k_serve_options[] = {
    {"base-dir", "SMLAUNCH_BASE_DIR", "SAGEMAKER_BASE_DIR", "/opt/ml", "DIR", "the tree: model/ and code/ under it"},
    {"python", "SMLAUNCH_PYTHON", nullptr, "python3", "PATH", "the Python that runs pip and the workers"},
    {"log-level", "SMLAUNCH_LOG_LEVEL", "SAGEMAKER_CONTAINER_LOG_LEVEL", "info", "LEVEL",
     "warning, info or debug (or a Python logging level number, as SAGEMAKER_CONTAINER_LOG_LEVEL)"},
    {"port", "SMLAUNCH_PORT", "SAGEMAKER_BIND_TO_PORT", "8080", "PORT", "the HTTP port (0: any free port)"},
    {"bind-address", "SMLAUNCH_BIND_ADDRESS", nullptr, "0.0.0.0", "ADDRESS", "the address to listen on"},
    {"workers", "SMLAUNCH_WORKERS", "SAGEMAKER_MODEL_SERVER_WORKERS", "cpus", "N",
     "Python worker processes, each with the model loaded (default: one per CPU)"},
    {"timeout", "SMLAUNCH_TIMEOUT", "SAGEMAKER_MODEL_SERVER_TIMEOUT", "60", "SECONDS",
     "a request still running after this gets 504 and its worker is replaced"},
    {"default-accept", "SMLAUNCH_DEFAULT_ACCEPT", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json", "TYPE",
     "the answer's content type when Accept is missing or */*"},
    {"program", "SMLAUNCH_PROGRAM", "SAGEMAKER_PROGRAM", "", "FILE",
     "the user's module (train.py), with model_fn and optionally input_fn, predict_fn, output_fn"},
    {"submit-directory", "SMLAUNCH_SUBMIT_DIRECTORY", "SAGEMAKER_SUBMIT_DIRECTORY", "<base>/code", "URI",
     "where the code is: a folder, file://, a .tar.gz or s3://; staged into <base>/code as for training"},
    {"model-data", "SMLAUNCH_MODEL_DATA", nullptr, "", "PATH",
     "a model.tar.gz (unpacked into <base>/model, as the platform does), s3:// object, or folder to serve"},
    {"model-load-timeout", "SMLAUNCH_MODEL_LOAD_TIMEOUT", nullptr, "600", "SECONDS",
     "how long the workers may take to import the module and run model_fn at start"},
    {"max-body-size", "SMLAUNCH_MAX_BODY_SIZE", nullptr, "1073741824", "BYTES", "larger request bodies get 413"},
    {"max-buffered-bytes", "SMLAUNCH_MAX_BUFFERED_BYTES", nullptr, "536870912", "BYTES",
     "request body bytes held across all connections; beyond it bodies are read only as others drain"},
};

std::uint64_t
whole_number(const base::Setting& s, std::uint64_t min, std::uint64_t max, const std::string& expected)
{
  const bool digits =
      !s.value.empty() && s.value.size() <= 19 && s.value.find_first_not_of("0123456789") == std::string::npos;
  if (digits) {
    const std::uint64_t v = std::stoull(s.value);
    if (v >= min && v <= max) {
      return v;
    }
  }
  throw base::UsageError("--" + s.name + " (" + s.origin + ") is \"" + s.value + "\"; expected " + expected);
}

base::Verbosity
log_level(const base::Setting& s)
{
  // SAGEMAKER_CONTAINER_LOG_LEVEL is a Python logging level: 10 debug, 20 info, 30 warning.
  return base::parse_log_level(s, base::LogLevelNumbers::accepted);
}

std::string
program_name(const char* argv0)
{
  std::string program = argv0 != nullptr ? argv0 : "smlaunch";
  return program.substr(program.find_last_of('/') + 1);
}

} // namespace

bool
serve_command_requested(int argc, const char* const* argv)
{
  if (argc > 0 && program_name(argv[0]) == "serve") {
    return true;
  }
  return argc > 1 && std::string(argv[1]) == "serve";
}

std::string
serve_help_text()
{
  std::string out = "usage: smlaunch serve [OPTIONS]\n"
                    "       serve [OPTIONS]          (the same as `smlaunch serve`)\n"
                    "\n"
                    "Host the model under <base>/model: GET /ping, POST /invocations (input_fn -> predict_fn ->\n"
                    "output_fn of the user's module, with defaults for JSON, CSV and NPY).\n"
                    "\n"
                    "options (each has an environment twin, then the platform's variable; the command line wins):\n";
  for (const auto& o : k_serve_options) {
    out += base::option_help(o, *o.default_value != '\0' ? o.default_value : "none", 32);
  }
  out += "  -v, --verbose                 log debug lines\n"
         "  -q, --quiet                   log warnings and errors only\n"
         "  -h, --help                    this text\n";
  return out;
}

ServeOptions
parse_serve_command_line(int argc, const char* const* argv, const env::EnvMap& environment)
{
  constexpr base::FlagSpec k_flags[] = {{"help", 'h'}, {"verbose", 'v'}, {"quiet", 'q'}};
  base::OptionWords given;
  try {
    given = base::read_option_words(argc, argv, k_serve_options, k_flags);
  } catch (const base::UsageError& e) {
    throw base::UsageError(std::string(e.what()) + " (see smlaunch serve --help)");
  }
  std::vector<std::string>& words = given.words;
  // `smlaunch serve`, `serve`, and `serve serve` (ENTRYPOINT ["serve"] + CMD ["serve"]).
  if (!words.empty() && words[0] == "serve") {
    words.erase(words.begin());
  }
  if (!words.empty()) {
    throw base::UsageError("unexpected argument \"" + words[0] + "\" after `serve` (see smlaunch serve --help)");
  }

  ServeOptions options;
  if (given.flags.contains("help")) {
    options.help = true;
    return options;
  }
  for (const auto& o : k_serve_options) {
    const auto value = given.values.find(o.name);
    options.settings.push_back(
        base::resolve_setting(o, value != given.values.end() ? &value->second : nullptr, environment));
  }
  for (const auto& s : options.settings) {
    const bool is_default = s.origin == "default";
    if (s.name == "base-dir") {
      options.base_dir = s.value;
    } else if (s.name == "python") {
      options.python = s.value;
    } else if (s.name == "log-level") {
      options.verbosity = log_level(s);
    } else if (s.name == "port") {
      options.port = static_cast<std::uint16_t>(whole_number(s, 0, 65535, "a port from 0 to 65535 (0: any free port)"));
    } else if (s.name == "bind-address") {
      options.bind_address = s.value;
    } else if (s.name == "workers") {
      if (!is_default) {
        options.workers = static_cast<int>(whole_number(s, 1, 1024, "a whole number of workers from 1 to 1024"));
      }
    } else if (s.name == "timeout") {
      options.timeout = base::parse_seconds(s, 0.001);
    } else if (s.name == "model-load-timeout") {
      options.model_load_timeout = base::parse_seconds(s, 0.001);
    } else if (s.name == "default-accept") {
      if (s.value.find_first_of("\r\n") != std::string::npos || s.value.find('/') == std::string::npos) {
        throw base::UsageError("--default-accept (" + s.origin + ") is \"" + s.value +
                               "\"; expected a media type such as application/json");
      }
      options.default_accept = s.value;
    } else if (s.name == "program") {
      options.program = s.value;
    } else if (s.name == "submit-directory") {
      options.submit_directory = is_default ? "" : s.value;
    } else if (s.name == "model-data") {
      options.model_data = s.value;
    } else if (s.name == "max-body-size") {
      options.max_body_size = whole_number(s, 1, 1ULL << 40, "a number of bytes from 1 to 1099511627776");
    } else if (s.name == "max-buffered-bytes") {
      options.max_buffered_bytes = whole_number(s, 1, 1ULL << 40, "a number of bytes from 1 to 1099511627776");
    }
  }
  if (given.flags.contains("verbose")) {
    options.verbosity = base::Verbosity::verbose;
  } else if (given.flags.contains("quiet")) {
    options.verbosity = base::Verbosity::quiet;
  }
  if (options.program.empty()) {
    throw base::UsageError(
        "no program to serve: set SAGEMAKER_PROGRAM (or --program / SMLAUNCH_PROGRAM) to the file of "
        "the module that defines model_fn, e.g. inference.py");
  }
  const auto bad_program = [&](const std::string& why) {
    const base::Setting& s = *std::find_if(options.settings.begin(), options.settings.end(),
                                           [](const base::Setting& x) { return x.name == "program"; });
    return base::UsageError("--program (" + s.origin + ") is \"" + s.value + "\"; " + why);
  };
  if (options.program.front() == '/' || options.program.find("..") != std::string::npos) {
    throw bad_program("expected a file name inside the code directory");
  }
  return options;
}

} // namespace launcher
