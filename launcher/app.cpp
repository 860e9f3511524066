#include "launcher/app.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/shell.hpp"
#include "env/config_error.hpp"
#include "env/config_files.hpp"
#include "env/slurm.hpp"
#include "launcher/cli.hpp"
#include "launcher/machine.hpp"
#include "launcher/plan.hpp"
#include "launcher/rank.hpp"
#include "launcher/serve_command.hpp"
#include "launcher/slurm_job.hpp"
#include "launcher/train.hpp"
#include "local/local_command.hpp"
#include "mpi/mpirun_command.hpp"
#include "process/executables.hpp"
#include "process/failure_report.hpp"
#include "process/supervisor.hpp"

#include <filesystem>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace launcher {

namespace {

std::string
current_directory()
{
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  return ec ? "/" : cwd.string();
}

// Open MPI's major version, asked only when the job may use MPI: from its files when they
// tell, else from `mpirun --version` (recorded in `processes_run`).
int
probe_open_mpi_major(process::Supervisor& supervisor, const env::EnvMap& inherited, const Options& options,
                     const env::ConfigFiles& config, std::vector<std::string>& processes_run)
{
  const env::Value* hosts = config.resource_config.find("hosts");
  bool maybe_mpi = hosts != nullptr && hosts->size() > 1;
  for (const auto& key : config.hyperparameters.keys()) {
    maybe_mpi = maybe_mpi || key == "sagemaker_use_mpi" || key == "sagemaker_mpi_enabled";
  }
  if (!maybe_mpi) {
    return 4;
  }
  const auto mpirun = process::find_executable(options.mpirun, inherited);
  if (!mpirun) {
    return 4;
  }
  if (const auto major = open_mpi_major_from_files(*mpirun)) {
    return *major;
  }
  process::ChildSpec spec;
  spec.argv = {*mpirun, "--version"};
  processes_run.push_back(base::join_command(spec.argv));
  spec.envp = inherited.to_envp();
  spec.output = process::OutputMode::capture;
  spec.timeout = std::chrono::seconds(20);
  return mpi::parse_open_mpi_major(supervisor.run(spec).captured);
}

PlanInputs
gather_inputs(const Options& options, const env::Paths& paths, const env::EnvMap& inherited,
              process::Supervisor& supervisor)
{
  PlanInputs in;
  in.options = options;
  in.inherited = inherited;
  in.paths = paths;
  struct stat st
  {
  };
  if (::stat(in.paths.base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw base::BaseDirectoryError("base directory " + in.paths.base +
                                   " does not exist; expected a SageMaker tree (set --base-dir or SAGEMAKER_BASE_DIR)");
  }
  in.cluster = choose_cluster(options, inherited, in.paths, current_directory());
  std::optional<int> num_gpus = options.num_gpus;
  if (in.cluster.slurm) {
    const env::Value rc =
        env::slurm_resource_config(*in.cluster.slurm, options.instance_type,
                                   options.network_interface.empty() ? "eth0" : options.network_interface);
    in.config = env::read_config_files(in.paths, &rc);
    if (!num_gpus) {
      num_gpus = in.cluster.slurm->gpus_on_node; // the GPUs Slurm gave this node
    }
  } else {
    in.config = env::read_config_files(in.paths);
  }
  const env::Value* type = in.config.resource_config.find("current_instance_type");
  const auto probe =
      probe_machine(supervisor, inherited, type != nullptr && type->is_string() ? type->text() : "local", num_gpus);
  in.machine = probe.facts;
  in.gpu_source = probe.gpu_source;
  if (!options.num_gpus && num_gpus) {
    in.gpu_source = "SLURM_GPUS_ON_NODE";
  }
  in.probes_run = probe.processes_run;
  in.python = process::find_executable(options.python, inherited).value_or(options.python);
  in.code_dir_has_files = fetch::directory_has_files(in.paths.code);
  in.staged_by_smlaunch = ::access(fetch::staging_marker_path(in.paths.base).c_str(), F_OK) == 0;
  std::error_code ec;
  in.smlaunch_exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  in.open_mpi_major = probe_open_mpi_major(supervisor, inherited, options, in.config, in.probes_run);
  return in;
}

// The launcher's own failure: logged, and for `train` written to output/failure (through
// the run's outcome files once prepared).
int
report(const std::string& error_class, int code, const std::string& message, const std::string& command,
       const Options& options, const env::EnvMap& inherited, std::optional<process::OutcomeFiles>& outcome)
{
  const std::string safe = env::redact_secrets(message, inherited);
  spdlog::error("{}: {}", error_class, safe);
  if (options.command != Command::train) {
    return code;
  }
  const auto paths =
      outcome ? outcome->paths : env::Paths::under(env::normalize_base_dir(options.base_dir, current_directory()));
  struct stat st
  {
  };
  if (::stat(paths.base.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::error_code ec;
    std::filesystem::create_directories(paths.output, ec);
    if (!outcome) {
      outcome = process::OutcomeFiles{paths};
    }
    process::record_failure(
        *outcome, env::redact_secrets(process::format_failure(error_class, code, message, command), inherited));
  }
  return code;
}

} // namespace

int
run(int argc, const char* const* argv, char** envp)
{
  const env::EnvMap inherited = env::EnvMap::from_environ(envp);
  // `serve` has its own options (launcher/serve_options.cpp) and its own flow.
  if (serve_command_requested(argc, argv)) {
    return run_serve(argc, argv, inherited);
  }
  const std::string launcher_command = base::join_command(std::vector<std::string>(argv, argv + argc));
  Options options;
  try {
    options = parse_command_line(argc, argv, inherited);
  } catch (const base::UsageError& e) {
    base::print_to(STDERR_FILENO, std::string("smlaunch: error: ") + e.what() + "\n");
    return e.exit_code();
  }
  if (options.command == Command::help) {
    base::print_to(STDOUT_FILENO, help_text());
    return 0;
  }
  if (options.command == Command::version) {
    base::print_to(STDOUT_FILENO, "smlaunch " SMLAUNCH_VERSION "\n");
    return 0;
  }
  if (options.command == Command::rank) {
    return run_rank(options, inherited);
  }
  if (options.command == Command::job_ended) {
    return run_job_ended(options);
  }
  std::optional<process::OutcomeFiles> outcome; // prepared by `train` before anything can fail
  if (options.command == Command::local) {
    try {
      return local::run_local(options.local_args, inherited);
    } catch (const base::LauncherError& e) {
      base::setup_logging(base::Verbosity::normal);
      return report(e.error_class(), e.exit_code(), e.what(), launcher_command, options, inherited, outcome);
    } catch (const env::ConfigError& e) {
      base::setup_logging(base::Verbosity::normal);
      return report("ConfigError", base::to_int(base::ExitCode::config), e.what(), launcher_command, options, inherited,
                    outcome);
    } catch (const std::exception& e) {
      base::setup_logging(base::Verbosity::normal);
      return report("InternalError", base::to_int(base::ExitCode::internal), e.what(), launcher_command, options,
                    inherited, outcome);
    }
  }
  base::setup_logging(options.verbosity);
  spdlog::debug("smlaunch {}: {}", SMLAUNCH_VERSION, launcher_command);

  try {
    process::Supervisor::Options supervision;
    supervision.grace_period = options.grace_period;
    process::Supervisor supervisor(supervision);
    const env::Paths paths = env::Paths::under(env::normalize_base_dir(options.base_dir, current_directory()));
    if (options.command == Command::train) {
      outcome = process::prepare_outcome(paths);
    }
    PlanInputs inputs = gather_inputs(options, paths, inherited, supervisor);
    const TrainPlan plan = make_train_plan(inputs);
    if (options.command == Command::plan) {
      base::print_to(STDOUT_FILENO,
                     plan_to_json(plan, inputs).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      return 0;
    }
    if (options.stage_only) {
      return stage_only(plan, inputs, supervisor, *outcome);
    }
    if (plan.slurm_setup) {
      return run_slurm_master(plan, inputs, supervisor, *outcome);
    }
    if (const int stopped = stage(plan, inputs, supervisor)) {
      return stopped;
    }
    // Nothing staged: code/ is what the plan saw, and planning again would give the same plan.
    if (plan.staging == fetch::StagingAction::none || plan.staging == fetch::StagingAction::keep_existing) {
      return execute_train(plan, inputs, supervisor, *outcome);
    }
    // Archives and S3 objects are only known once unpacked: plan again from code/.
    inputs.code_staged = true;
    return execute_train(make_train_plan(inputs), inputs, supervisor, *outcome);
  } catch (const env::ConfigError& e) {
    return report("ConfigError", base::to_int(base::ExitCode::config), e.what(), launcher_command, options, inherited,
                  outcome);
  } catch (const base::LauncherError& e) {
    return report(e.error_class(), e.exit_code(), e.what(), e.command().empty() ? launcher_command : e.command(),
                  options, inherited, outcome);
  } catch (const std::exception& e) {
    return report("InternalError", base::to_int(base::ExitCode::internal), e.what(), launcher_command, options,
                  inherited, outcome);
  }
}

} // namespace launcher
