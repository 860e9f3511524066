#include "local/local_plan.hpp"

#include "base/errors.hpp"
#include "base/option_table.hpp"
#include "base/option_values.hpp"
#include "env/hyperparameters.hpp"
#include "env/paths.hpp"
#include "env/py_format.hpp"

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <sys/stat.h>

namespace local {

namespace fs = std::filesystem;

namespace {

// The one table of `smlaunch local`'s options (help text and README are written from it),
// in the form of train's and serve's: rows without a twin are repeatable and command line only.
constexpr base::OptionSpec k_local_options[] = {
    {"entry-point", "SMLAUNCH_ENTRY_POINT", nullptr, "", "FILE",
     "the training script (relative to --source-dir when given); required"},
    {"source-dir", "SMLAUNCH_SOURCE_DIR", nullptr, "", "DIR",
     "the code to stage on every host (default: the entry point's directory)"},
    {"hyperparameters", "SMLAUNCH_HYPERPARAMETERS", nullptr, "", "FILE",
     "a JSON object of hyperparameters, as given to an estimator"},
    {"hyperparameter", nullptr, nullptr, "", "KEY=VALUE",
     "one hyperparameter (VALUE is JSON when it parses: 3, 0.1, true; else text); repeatable"},
    {"channel", nullptr, nullptr, "", "NAME=PATH",
     "an input channel: a directory (or a file: its directory) as input/data/NAME; repeatable"},
    {"instance-count", "SMLAUNCH_INSTANCE_COUNT", nullptr, "1", "N",
     "hosts to simulate, algo-1..algo-N (default 1; more than 1 needs root)"},
    {"instance-type", "SMLAUNCH_INSTANCE_TYPE", nullptr, "local", "TYPE",
     "written as current_instance_type (default: local)"},
    {"use-mpi", "SMLAUNCH_USE_MPI", nullptr, "false", "",
     "run the script under mpirun even on one host (several hosts use MPI anyway)"},
    {"processes-per-host", "SMLAUNCH_PROCESSES_PER_HOST", nullptr, "", "N",
     "MPI processes per host (default: GPUs, or 1)"},
    {"num-processes", "SMLAUNCH_NUM_PROCESSES", nullptr, "", "N",
     "MPI processes in all (default: hosts x processes per host)"},
    {"additional-mpi-options", "SMLAUNCH_ADDITIONAL_MPI_OPTIONS", nullptr, "", "OPTIONS",
     "more mpirun options, e.g. \"-x NCCL_DEBUG=WARN\""},
    {"job-dir", "SMLAUNCH_JOB_DIR", nullptr, "", "DIR",
     "where the job is written (default: ./<job name>); must be new or empty"},
    {"job-name", "SMLAUNCH_JOB_NAME", nullptr, "", "NAME", "sagemaker_job_name (default: smlaunch-local-<UTC time>)"},
    {"region", "SMLAUNCH_REGION", nullptr, "", "REGION",
     "sagemaker_region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)"},
    {"keep", "SMLAUNCH_KEEP", nullptr, "false", "",
     "keep the per-host trees after collecting model.tar.gz and output.tar.gz"},
    {"python", "SMLAUNCH_PYTHON", nullptr, "", "PATH",
     "the Python every host runs pip and the script with (default: python3 on PATH)"},
    {"grace-period", "SMLAUNCH_GRACE_PERIOD", nullptr, "60", "SECONDS",
     "after Ctrl-C, how long scripts may run before SIGKILL (default 60)"},
    {"log-level", "SMLAUNCH_LOG_LEVEL", nullptr, "info", "LEVEL", "warning, info or debug (also each host's launcher)"},
};

const base::OptionSpec*
find_option(const std::string& name)
{
  for (const auto& o : k_local_options) {
    if (name == o.name) {
      return &o;
    }
  }
  return nullptr;
}

bool
repeatable(const base::OptionSpec& option)
{
  return option.env_twin == nullptr;
}

int
parse_count(const base::Setting& s, int low, int high)
{
  const std::string& value = s.value;
  const bool digits = !value.empty() && value.size() <= 6 && value.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(value) < low || std::stoi(value) > high) {
    throw base::UsageError(base::setting_label(s) + " is \"" + value + "\"; expected a whole number from " +
                           std::to_string(low) + " to " + std::to_string(high));
  }
  return std::stoi(value);
}

bool
parse_flag(const base::Setting& s)
{
  const std::string& value = s.value;
  if (value == "1" || value == "true" || value == "yes") {
    return true;
  }
  if (value.empty() || value == "0" || value == "false" || value == "no") {
    return false;
  }
  throw base::UsageError(base::setting_label(s) + " is \"" + value + "\"; expected 1/true/yes or 0/false/no");
}

std::pair<std::string, std::string>
split_pair(const std::string& option, const std::string& value, const char* form)
{
  const auto eq = value.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw base::UsageError("--" + option + " \"" + value + "\": expected " + form);
  }
  return {value.substr(0, eq), value.substr(eq + 1)};
}

// One setting into the options; the row's own parser names the setting and its origin.
void
apply(LocalOptions& o, const base::Setting& s)
{
  const std::string& name = s.name;
  const std::string& value = s.value;
  if (name == "entry-point") {
    o.entry_point = value;
  } else if (name == "source-dir") {
    o.source_dir = value;
  } else if (name == "hyperparameters") {
    o.hyperparameters_file = value;
  } else if (name == "hyperparameter") {
    o.hyperparameters.push_back(split_pair(name, value, "KEY=VALUE"));
  } else if (name == "channel") {
    auto channel = split_pair(name, value, "NAME=PATH");
    if (channel.first.find('/') != std::string::npos || channel.first == "." || channel.first == "..") {
      throw base::UsageError("--channel \"" + value + "\": the channel name must not contain '/'");
    }
    for (const auto& [existing, path] : o.channels) {
      if (existing == channel.first) {
        throw base::UsageError("--channel " + channel.first + " is given twice");
      }
    }
    if (channel.second.empty()) {
      throw base::UsageError("--channel \"" + value + "\": expected NAME=PATH with a path");
    }
    o.channels.push_back(std::move(channel));
  } else if (name == "instance-count") {
    o.instance_count = parse_count(s, 1, 64);
  } else if (name == "instance-type") {
    o.instance_type = value;
  } else if (name == "use-mpi") {
    o.use_mpi = parse_flag(s);
  } else if (name == "processes-per-host") {
    o.processes_per_host = parse_count(s, 1, 1024);
  } else if (name == "num-processes") {
    o.num_processes = parse_count(s, 1, 65536);
  } else if (name == "additional-mpi-options") {
    o.additional_mpi_options = value;
  } else if (name == "job-dir") {
    o.job_dir = value;
  } else if (name == "job-name") {
    o.job_name = value;
  } else if (name == "region") {
    o.region = value;
  } else if (name == "keep") {
    o.keep = parse_flag(s);
  } else if (name == "python") {
    o.python = value;
  } else if (name == "grace-period") {
    o.grace_period = base::parse_seconds(s);
  } else if (name == "log-level") {
    o.verbosity = base::parse_log_level(s);
  }
}

std::string
absolute(const std::string& path, const std::string& cwd)
{
  return fs::path(cwd).append(path).lexically_normal().string();
}

std::string
strip_trailing_slash(std::string path)
{
  while (path.size() > 1 && path.back() == '/') {
    path.pop_back();
  }
  return path;
}

bool
is_directory(const std::string& path)
{
  struct stat st
  {
  };
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool
is_regular_file(const std::string& path)
{
  struct stat st
  {
  };
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

} // namespace

std::string
local_help_text()
{
  std::string out = "usage: smlaunch local --entry-point FILE [OPTIONS]\n"
                    "\n"
                    "Simulate a SageMaker training job on this machine, as the SageMaker Python SDK's local mode\n"
                    "does but without Docker: one tree per host under the job directory, every host run (each in\n"
                    "its own network namespace when there are several), then model.tar.gz and output.tar.gz.\n"
                    "\n"
                    "options (the command line wins over the SMLAUNCH_* twin):\n";
  for (const auto& o : k_local_options) {
    std::string flag = std::string("  --") + o.name + (o.value_name[0] != '\0' ? std::string(" ") + o.value_name : "");
    flag.resize(std::max<std::size_t>(flag.size() + 2, 34), ' ');
    out += flag + o.help + "\n";
    if (o.env_twin != nullptr) {
      out += std::string(34, ' ') + "env: " + o.env_twin + "\n";
    }
  }
  out += "  -v, --verbose / -q, --quiet     the same as --log-level debug / warning\n"
         "  -h, --help                      this text\n";
  return out;
}

LocalOptions
parse_local_options(const std::vector<std::string>& args, const env::EnvMap& environment)
{
  LocalOptions o;
  // The command line's values: the last of each option, every one of a repeatable option.
  std::vector<std::pair<const base::OptionSpec*, std::string>> given;
  std::optional<base::Verbosity> verbosity_flag;
  bool help = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h" || arg == "--help") {
      help = true;
      continue;
    }
    if (arg == "-v" || arg == "--verbose" || arg == "-q" || arg == "--quiet") {
      verbosity_flag = arg == "-v" || arg == "--verbose" ? base::Verbosity::verbose : base::Verbosity::quiet;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      throw base::UsageError("local: unexpected argument \"" + arg + "\" (see smlaunch local --help)");
    }
    std::string value;
    bool inline_value = false;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    const base::OptionSpec* spec = find_option(arg.substr(2));
    if (spec == nullptr) {
      throw base::UsageError("local: unknown option \"" + arg + "\" (see smlaunch local --help)");
    }
    if (spec->value_name[0] == '\0') {
      given.emplace_back(spec, inline_value ? value : "true");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        throw base::UsageError("local: " + arg + " expects " + spec->value_name);
      }
      value = args[++i];
    }
    given.emplace_back(spec, value);
  }
  for (const auto& spec : k_local_options) {
    if (repeatable(spec)) {
      for (const auto& [option, value] : given) {
        if (option == &spec) {
          o.settings.push_back(base::resolve_setting(spec, &value, environment));
          apply(o, o.settings.back());
        }
      }
      continue;
    }
    const std::string* last = nullptr;
    for (const auto& [option, value] : given) {
      if (option == &spec) {
        last = &value;
      }
    }
    o.settings.push_back(base::resolve_setting(spec, last, environment));
    if (!o.settings.back().value.empty()) {
      apply(o, o.settings.back());
    }
  }
  // -v and -q win over --log-level, as for train.
  if (verbosity_flag) {
    o.verbosity = *verbosity_flag;
  }
  if (help) {
    o.help = true;
    return o;
  }
  if (o.entry_point.empty()) {
    throw base::UsageError("local: --entry-point FILE is required (see smlaunch local --help)");
  }
  return o;
}

env::Value
hyperparameter_value(const std::string& text)
{
  // As the container decodes hyperparameters.json's values: one rule (env/).
  try {
    return env::decode_hyperparameter(env::Value::string(text));
  } catch (const env::JsonError& e) {
    throw base::UsageError(std::string("local: a hyperparameter's value cannot be decoded: ") + e.what());
  }
}

env::Value
load_user_hyperparameters(const LocalOptions& options)
{
  env::Value user = env::Value::object();
  if (!options.hyperparameters_file.empty()) {
    std::ifstream in(options.hyperparameters_file, std::ios::binary);
    if (!in) {
      throw base::UsageError("--hyperparameters " + options.hyperparameters_file + ": cannot be read");
    }
    std::stringstream text;
    text << in.rdbuf();
    const std::string content = text.str();
    if (!env::is_valid_utf8(content)) {
      throw base::UsageError("--hyperparameters " + options.hyperparameters_file + ": not UTF-8 text");
    }
    env::Value parsed;
    try {
      parsed = env::parse_json(content);
    } catch (const env::JsonError& e) {
      throw base::UsageError("--hyperparameters " + options.hyperparameters_file + ": invalid JSON at line " +
                             std::to_string(e.line) + ", column " + std::to_string(e.column) + ": " + e.what());
    }
    if (!parsed.is_object()) {
      throw base::UsageError("--hyperparameters " + options.hyperparameters_file + ": expected a JSON object of " +
                             "hyperparameters, found " + parsed.type_name());
    }
    for (std::size_t i = 0; i < parsed.size(); ++i) {
      user.set(parsed.keys()[i], parsed.items()[i]);
    }
  }
  for (const auto& [key, text] : options.hyperparameters) {
    if (!env::is_valid_utf8(key) || !env::is_valid_utf8(text)) {
      throw base::UsageError("--hyperparameter " + key + ": not UTF-8 text");
    }
    user.set(key, hyperparameter_value(text));
  }
  return user;
}

env::Value
encode_local_hyperparameters(const env::Value& user, const std::string& submit_directory, const std::string& program,
                             const std::string& job_name, const std::string& region, const ChainerMpiArguments& mpi)
{
  // EstimatorBase._json_encode_hyperparameters: json.dumps of every value; the framework's
  // keys are added with dict.update, so a key the user already gave keeps its place.
  env::Value encoded = env::Value::object();
  for (std::size_t i = 0; i < user.size(); ++i) {
    encoded.set(user.keys()[i], env::Value::string(env::py_json_dumps_default(user.items()[i])));
  }
  auto add = [&](const char* key, const env::Value& value) {
    encoded.set(key, env::Value::string(env::py_json_dumps_default(value)));
  };
  add("sagemaker_submit_directory", env::Value::string(submit_directory));
  add("sagemaker_program", env::Value::string(program));
  add("sagemaker_container_log_level", env::Value::integer(20));
  add("sagemaker_job_name", env::Value::string(job_name));
  add("sagemaker_region", env::Value::string(region));
  // The Chainer estimator adds its MPI keys only when they are truthy.
  if (mpi.use_mpi) {
    add("sagemaker_use_mpi", env::Value::boolean(true));
  }
  if (mpi.num_processes > 0) {
    add("sagemaker_num_processes", env::Value::integer(mpi.num_processes));
  }
  if (mpi.process_slots_per_host > 0) {
    add("sagemaker_process_slots_per_host", env::Value::integer(mpi.process_slots_per_host));
  }
  if (!mpi.additional_mpi_options.empty()) {
    add("sagemaker_additional_mpi_options", env::Value::string(mpi.additional_mpi_options));
  }
  return encoded;
}

std::string
local_job_name(std::chrono::system_clock::time_point now)
{
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char buf[64];
  if (std::strftime(buf, sizeof(buf), "%Y-%m-%d-%H-%M-%S", &utc) == 0) {
    buf[0] = '\0';
  }
  std::string millis = std::to_string(ms % 1000);
  millis.insert(0, 3 - millis.size(), '0');
  return std::string("smlaunch-local-") + buf + "-" + millis;
}

LocalJobPlan
plan_local_job(const LocalOptions& options, const env::Value& user_hyperparameters, const std::string& cwd,
               const env::EnvMap& environment, std::chrono::system_clock::time_point now)
{
  LocalJobPlan plan;
  plan.job_name = options.job_name.empty() ? local_job_name(now) : options.job_name;
  if (plan.job_name.find('/') != std::string::npos || plan.job_name.find('\0') != std::string::npos) {
    throw base::UsageError("--job-name \"" + plan.job_name + "\" must not contain '/'");
  }
  plan.job_dir = strip_trailing_slash(absolute(options.job_dir.empty() ? plan.job_name : options.job_dir, cwd));
  plan.model_dir = plan.job_dir + "/model";

  // The SDK's rule: with a source directory the entry point is a file at its root;
  // without one, the entry point's own directory is the code.
  std::string entry =
      absolute(options.source_dir.empty() ? options.entry_point
                                          : fs::path(options.source_dir).append(options.entry_point).string(),
               cwd);
  if (!options.source_dir.empty() && !is_directory(absolute(options.source_dir, cwd))) {
    throw base::UsageError("--source-dir " + options.source_dir + ": not a directory");
  }
  if (!is_regular_file(entry)) {
    throw base::UsageError("--entry-point " + options.entry_point + ": no such file" +
                           (options.source_dir.empty() ? std::string() : " in --source-dir " + options.source_dir));
  }
  plan.source_dir = options.source_dir.empty() ? fs::path(entry).parent_path().string()
                                               : strip_trailing_slash(absolute(options.source_dir, cwd));
  plan.program = options.source_dir.empty() ? fs::path(entry).filename().string()
                                            : fs::path(options.entry_point).lexically_normal().string();
  if (plan.job_dir == plan.source_dir || plan.source_dir.rfind(plan.job_dir + "/", 0) == 0) {
    throw base::UsageError("--job-dir " + plan.job_dir + " must not contain the source directory " + plan.source_dir);
  }

  plan.region = options.region;
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (const std::string* v = environment.get(name); plan.region.empty() && v != nullptr) {
      plan.region = *v;
    }
  }
  if (plan.region.empty()) {
    plan.region = "us-east-1";
  }

  // MPI as the launcher will decide it: several hosts, or asked for, unless turned off.
  plan.use_mpi = options.use_mpi || options.instance_count > 1;
  for (const char* key : {"sagemaker_use_mpi", "sagemaker_mpi_enabled"}) {
    if (const env::Value* v = user_hyperparameters.find(key)) {
      plan.use_mpi = v->is_string() ? (v->text() == "true" || v->text() == "True") : v->truthy();
    }
  }

  // The hosts stage a copy taken at the start (as the SDK uploads a snapshot): edits made
  // during the job do not reach it, and a job directory inside the source is left out.
  plan.code_copy = plan.job_dir + "/.smlaunch-local/source";
  plan.hyperparameters = encode_local_hyperparameters(
      user_hyperparameters, "file://" + plan.code_copy, plan.program, plan.job_name, plan.region,
      {options.use_mpi, options.num_processes, options.processes_per_host, options.additional_mpi_options});

  env::Value hosts = env::Value::array();
  for (int i = 1; i <= options.instance_count; ++i) {
    hosts.items().push_back(env::Value::string("algo-" + std::to_string(i)));
  }
  env::Value input_data = env::Value::object();
  for (const auto& [name, path] : options.channels) {
    env::Value channel = env::Value::object();
    channel.set("TrainingInputMode", env::Value::string("File"));
    input_data.set(name, std::move(channel));
  }

  plan.directories = {plan.job_dir, plan.model_dir};
  for (int i = 0; i < options.instance_count; ++i) {
    LocalHost host;
    host.name = hosts.items()[static_cast<std::size_t>(i)].text();
    host.base = plan.job_dir + "/" + host.name;
    host.role = !plan.use_mpi ? "single" : (i == 0 ? "master" : "worker");
    for (const char* dir : {"", "/input", "/input/config", "/input/data", "/output", "/output/data"}) {
      plan.directories.push_back(host.base + dir);
    }
    env::Value resource = env::Value::object();
    resource.set("current_host", env::Value::string(host.name));
    resource.set("hosts", hosts);
    resource.set("network_interface_name", env::Value::string("eth0"));
    resource.set("current_instance_type", env::Value::string(options.instance_type));
    plan.files.push_back(
        {host.base + "/input/config/hyperparameters.json", env::py_json_dumps_default(plan.hyperparameters)});
    plan.files.push_back({host.base + "/input/config/resourceconfig.json", env::py_json_dumps_default(resource)});
    plan.files.push_back({host.base + "/input/config/inputdataconfig.json", env::py_json_dumps_default(input_data)});
    // The SDK mounts one model directory on every host, and each channel's directory.
    plan.links.push_back({host.base + "/model", "../model"});
    for (const auto& [name, path] : options.channels) {
      std::string data = absolute(path.rfind("file://", 0) == 0 ? path.substr(7) : path, cwd);
      if (path.rfind("s3://", 0) == 0) {
        throw base::UsageError("--channel " + name + "=" + path +
                               ": s3:// channels are not supported by smlaunch local; " +
                               "download the data and give its directory");
      }
      if (is_regular_file(data)) {
        data = fs::path(data).parent_path().string();
      } else if (!is_directory(data)) {
        throw base::UsageError("--channel " + name + "=" + path + ": no such file or directory");
      }
      plan.links.push_back({host.base + "/input/data/" + name, strip_trailing_slash(data)});
    }
    plan.hosts.push_back(std::move(host));
  }
  return plan;
}

} // namespace local
