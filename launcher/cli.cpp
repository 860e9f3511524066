#include "launcher/cli.hpp"

#include "base/errors.hpp"
#include "base/option_values.hpp"
#include "base/shell.hpp"
#include "env/slurm.hpp"
#include "mpi/mpi_settings.hpp"

#include <cmath>
#include <optional>

namespace launcher {

namespace {

// The one table of settings: README's "Options" section is written from it.
constexpr base::OptionSpec k_options[] = {
    {"base-dir", "SMLAUNCH_BASE_DIR", "SAGEMAKER_BASE_DIR", "/opt/ml", "DIR",
     "the SageMaker tree to read and write (input/, code/, model/, output/)"},
    {"python", "SMLAUNCH_PYTHON", nullptr, "python3", "PATH",
     "the Python that runs pip and Python entry points (default: the first python3 on PATH)"},
    {"num-gpus", "SMLAUNCH_NUM_GPUS", nullptr, "detect", "N",
     "GPUs on this host (default: detect from /proc/driver/nvidia/gpus, else nvidia-smi --list-gpus)"},
    {"grace-period", "SMLAUNCH_GRACE_PERIOD", nullptr, "60", "SECONDS",
     "after SIGTERM/SIGINT, how long the script may run to save a checkpoint before SIGKILL"},
    {"dns-timeout", "SMLAUNCH_DNS_TIMEOUT", nullptr, "900", "SECONDS",
     "with several hosts, how long to wait for every host name to resolve (0: do not wait)"},
    {"log-level", "SMLAUNCH_LOG_LEVEL", nullptr, "info", "LEVEL", "the launcher's own logging: warning, info or debug"},
    {"mpirun", "SMLAUNCH_MPIRUN", nullptr, "mpirun", "PATH", "Open MPI's mpirun (MPI jobs)"},
    {"sshd", "SMLAUNCH_SSHD", nullptr, "/usr/sbin/sshd", "PATH", "the SSH server every host of an MPI job starts"},
    {"sshd-config", "SMLAUNCH_SSHD_CONFIG", nullptr, "", "FILE", "sshd's configuration file (default: sshd's own)"},
    {"sshd-port", "SMLAUNCH_SSHD_PORT", nullptr, "22", "PORT", "the port sshd listens on, and that hosts probe"},
    {"ssh-command", "SMLAUNCH_SSH_COMMAND", nullptr, "ssh", "COMMAND",
     "how to reach another host (also mpirun's plm_rsh_agent), e.g. \"ssh -F /etc/smlaunch/ssh_config\""},
    {"ssh-timeout", "SMLAUNCH_SSH_TIMEOUT", nullptr, "300", "SECONDS",
     "how long the master waits for every worker's SSH login, and a worker for the master"},
    {"lost-host-timeout", "SMLAUNCH_LOST_HOST_TIMEOUT", nullptr, "10", "SECONDS",
     "a host that stops answering for this long during the job fails it"},
    {"cluster", "SMLAUNCH_CLUSTER", nullptr, "detect", "SOURCE",
     "where the hosts come from: sagemaker (resourceconfig.json), slurm (the allocation), or detect "
     "(slurm when SLURM_JOB_ID is set and the tree has no resourceconfig.json)"},
    {"instance-type", "SMLAUNCH_INSTANCE_TYPE", nullptr, "local", "TYPE",
     "under Slurm: the instance type SM_CURRENT_INSTANCE_TYPE reports (e.g. ml.p4d.24xlarge)"},
    {"network-interface", "SMLAUNCH_NETWORK_INTERFACE", nullptr, "", "NAME",
     "under Slurm: the interface MPI and NCCL use (default: Open MPI's choice; SM_* say eth0)"},
};

} // namespace

std::string
help_text()
{
  std::string out = "usage: smlaunch COMMAND [OPTIONS]\n"
                    "       train [OPTIONS]          (the same as `smlaunch train`)\n"
                    "\n"
                    "commands:\n"
                    "  train      run the training job that the tree under the base directory describes\n"
                    "  plan       print, as one JSON object, everything `train` would do, and run nothing\n"
                    "             (but a machine probe without a file to read: listed in machine.probes_run)\n"
                    "  serve      host the model under <base>/model over HTTP (see smlaunch serve --help)\n"
                    "  local      simulate a whole training job on this machine (see smlaunch local --help)\n"
                    "\n"
                    "options (each has an environment twin; the command line wins):\n";
  for (const auto& o : k_options) {
    out += base::option_help(o, o.default_value, 28);
  }
  out += "      --stage-only          stage the code and install requirements on this host, then stop\n"
         "                            (under Slurm, the step every node runs before mpirun)\n"
         "  -v, --verbose             log the plan and the environment (secrets redacted)\n"
         "  -q, --quiet               log warnings and errors only\n"
         "  -h, --help                this text\n"
         "      --version             print the version\n";
  return out;
}

namespace {

// `smlaunch rank [--keep A,B] -- PROGRAM ARGS...` and `smlaunch job-ended --exit-code N
// [--message TEXT]`: run by smlaunch itself (mpirun on every rank, the master over ssh).
std::optional<Options>
parse_internal_command(int argc, const char* const* argv)
{
  if (argc < 2) {
    return std::nullopt;
  }
  const std::string command = argv[1];
  if (command != "rank" && command != "job-ended") {
    return std::nullopt;
  }
  Options options;
  options.command = command == "rank" ? Command::rank : Command::job_ended;
  int i = 2;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--keep" && has_value) {
      const std::string names = argv[++i];
      std::size_t start = 0;
      while (start <= names.size()) {
        const auto end = names.find(',', start);
        const std::string name = names.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!name.empty()) {
          options.rank_keep.push_back(name);
        }
        if (end == std::string::npos) {
          break;
        }
        start = end + 1;
      }
    } else if (arg == "--base-dir" && has_value) {
      options.base_dir = argv[++i];
    } else if (arg == "--cluster" && has_value) {
      const std::string cluster = argv[++i];
      if (cluster != "slurm") {
        throw base::UsageError(command + ": --cluster expects slurm");
      }
      options.cluster = ClusterChoice::slurm;
    } else if (arg == "--instance-type" && has_value) {
      options.instance_type = argv[++i];
    } else if (arg == "--network-interface" && has_value) {
      options.network_interface = argv[++i];
    } else if (arg == "--exit-code" && has_value) {
      try {
        options.job_exit_code = std::stoi(argv[++i]);
      } catch (const std::exception&) {
        throw base::UsageError("job-ended: --exit-code expects a number");
      }
    } else if (arg == "--message" && has_value) {
      options.job_message = argv[++i];
    } else {
      throw base::UsageError(command + ": unexpected argument \"" + arg + "\"");
    }
  }
  for (; i < argc; ++i) {
    options.rank_program.emplace_back(argv[i]);
  }
  if (options.command == Command::rank && options.rank_program.empty()) {
    throw base::UsageError("rank: no program after --");
  }
  return options;
}

// One resolved setting into the options, through its row's parser (which names the
// setting and its origin).
void
apply_setting(Options& options, const base::Setting& s)
{
  if (s.name == "base-dir") {
    options.base_dir = s.value;
  } else if (s.name == "python") {
    options.python = s.value;
  } else if (s.name == "num-gpus") {
    if (s.value != "detect") {
      const bool digits =
          !s.value.empty() && s.value.size() <= 4 && s.value.find_first_not_of("0123456789") == std::string::npos;
      if (!digits) {
        throw base::UsageError("--num-gpus (" + s.origin + ") is \"" + s.value +
                               "\"; expected a whole number from 0 to 9999, or `detect`");
      }
      options.num_gpus = std::stoi(s.value);
    }
  } else if (s.name == "grace-period") {
    options.grace_period = base::parse_seconds(s);
  } else if (s.name == "dns-timeout") {
    options.dns_timeout = base::parse_seconds(s);
  } else if (s.name == "mpirun") {
    options.mpirun = s.value;
  } else if (s.name == "sshd") {
    options.sshd = s.value;
  } else if (s.name == "sshd-config") {
    options.sshd_config = s.value;
  } else if (s.name == "sshd-port") {
    const bool digits =
        !s.value.empty() && s.value.size() <= 5 && s.value.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(s.value) < 1 || std::stoi(s.value) > 65535) {
      throw base::UsageError("--sshd-port (" + s.origin + ") is \"" + s.value + "\"; expected a port from 1 to 65535");
    }
    options.sshd_port = std::stoi(s.value);
  } else if (s.name == "ssh-command") {
    // Checked here, not when the job first calls ssh (after staging, pip and the DNS wait).
    std::vector<std::string> ssh_words;
    try {
      ssh_words = base::shell_split(s.value);
    } catch (const std::invalid_argument& e) {
      throw base::UsageError("--ssh-command (" + s.origin + ") \"" + s.value + "\": " + e.what());
    }
    if (ssh_words.empty()) {
      throw base::UsageError("--ssh-command (" + s.origin + ") is empty");
    }
    options.ssh_command = s.value;
  } else if (s.name == "ssh-timeout") {
    options.ssh_timeout = base::parse_seconds(s);
  } else if (s.name == "lost-host-timeout") {
    options.lost_host_timeout = base::parse_seconds(s);
  } else if (s.name == "cluster") {
    if (s.value == "detect") {
      options.cluster = ClusterChoice::detect;
    } else if (s.value == "sagemaker") {
      options.cluster = ClusterChoice::sagemaker;
    } else if (s.value == "slurm") {
      options.cluster = ClusterChoice::slurm;
    } else {
      throw base::UsageError("--cluster (" + s.origin + ") is \"" + s.value +
                             "\"; expected detect, sagemaker or slurm");
    }
  } else if (s.name == "instance-type") {
    options.instance_type = s.value;
  } else if (s.name == "network-interface") {
    options.network_interface = s.value;
  } else if (s.name == "log-level") {
    options.verbosity = base::parse_log_level(s);
  }
}

// The command that the positional words name; installed as `train`, the program name is
// the command (SageMaker runs `train`).
Command
command_of(std::vector<std::string> words, const std::string& program)
{
  if (program == "train") {
    words.insert(words.begin(), "train");
    if (words.size() > 1 && words[1] == "train") {
      words.erase(words.begin() + 1); // `docker run IMAGE train` with ENTRYPOINT ["train"]
    }
  }
  if (words.empty()) {
    throw base::UsageError("no command given; expected `train` or `plan` (see smlaunch --help)");
  }
  Command command = Command::help;
  if (words[0] == "train") {
    command = Command::train;
  } else if (words[0] == "plan") {
    command = Command::plan;
  } else if (words[0] == "help") {
    return Command::help;
  } else {
    throw base::UsageError("unknown command \"" + words[0] + "\"; expected `train` or `plan` (see smlaunch --help)");
  }
  if (words.size() > 1) {
    throw base::UsageError("unexpected argument \"" + words[1] + "\" after `" + words[0] + "`");
  }
  return command;
}

} // namespace

std::string
expand_base_dir(const std::string& pattern, const env::EnvMap& environment)
{
  if (pattern.find("%n") == std::string::npos) {
    return pattern;
  }
  const std::string* node = environment.get("SLURMD_NODENAME");
  if (node == nullptr || node->empty()) {
    throw base::UsageError("--base-dir \"" + pattern +
                           "\" holds %n (the Slurm node name), but SLURMD_NODENAME is not set; " +
                           "run inside a Slurm allocation, or give a path without %n");
  }
  return env::expand_node_pattern(pattern, *node);
}

Options
parse_command_line(int argc, const char* const* argv, const env::EnvMap& environment)
{
  if (auto internal = parse_internal_command(argc, argv)) {
    // The host's own tree: sshd's SetEnv (workers) or mpirun's environment (master).
    if (internal->base_dir.empty()) {
      for (const char* name : {"SMLAUNCH_BASE_DIR", "SAGEMAKER_BASE_DIR"}) {
        if (const std::string* v = environment.get(name); v != nullptr && !v->empty()) {
          internal->base_dir = *v;
          break;
        }
      }
      if (internal->base_dir.empty()) {
        internal->base_dir = "/opt/ml";
      }
    }
    internal->base_dir_pattern = internal->base_dir;
    internal->base_dir = expand_base_dir(internal->base_dir, environment);
    internal->verbosity = base::Verbosity::quiet;
    return *internal;
  }
  if (argc >= 2 && std::string(argv[1]) == "local") {
    Options local;
    local.command = Command::local; // its own options: local/local_plan.cpp
    local.local_args.assign(argv + 2, argv + argc);
    return local;
  }
  constexpr base::FlagSpec k_flags[] = {
      {"help", 'h'}, {"version", '\0'}, {"verbose", 'v'}, {"quiet", 'q'}, {"stage-only", '\0'}};
  base::OptionWords given;
  try {
    given = base::read_option_words(argc, argv, k_options, k_flags);
  } catch (const base::UsageError& e) {
    throw base::UsageError(std::string(e.what()) + " (see smlaunch --help)");
  }

  std::string program = argc > 0 ? argv[0] : "smlaunch";
  program = program.substr(program.find_last_of('/') + 1);

  Options options;
  if (given.flags.contains("help")) {
    options.command = Command::help;
    return options;
  }
  if (given.flags.contains("version")) {
    options.command = Command::version;
    return options;
  }
  options.command = command_of(given.words, program);
  if (options.command == Command::help) {
    return options;
  }

  for (const auto& o : k_options) {
    const auto value = given.values.find(o.name);
    options.settings.push_back(
        base::resolve_setting(o, value != given.values.end() ? &value->second : nullptr, environment));
  }

  for (const auto& s : options.settings) {
    apply_setting(options, s);
  }
  options.base_dir_pattern = options.base_dir;
  options.base_dir = expand_base_dir(options.base_dir, environment);
  options.stage_only = given.flags.contains("stage-only");
  if (given.flags.contains("verbose")) {
    options.verbosity = base::Verbosity::verbose;
  } else if (given.flags.contains("quiet")) {
    options.verbosity = base::Verbosity::quiet;
  }
  return options;
}

} // namespace launcher
