#include "launcher/serve_command.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/shell.hpp"
#include "env/paths.hpp"
#include "fetch/fetch_helper.hpp"
#include "launcher/entry_point.hpp"
#include "launcher/install_step.hpp"
#include "launcher/machine.hpp"
#include "process/executables.hpp"
#include "process/failure_report.hpp"
#include "process/supervisor.hpp"
#include "serve/server.hpp"

#include <csignal>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace launcher {

namespace fs = std::filesystem;

namespace {

bool
is_archive(const std::string& path)
{
  return path.ends_with(".tar.gz") || path.ends_with(".tgz") || path.ends_with(".tar");
}

std::string
absolute_from(const std::string& path, const std::string& cwd)
{
  return !path.empty() && path[0] == '/' ? path : cwd + "/" + path;
}

// Workers run under the launcher's supervisor: own process group, the original signal
// mask, dying with the launcher (PR_SET_PDEATHSIG).
class SupervisedWorkers : public serve::WorkerProcesses
{
public:
  SupervisedWorkers(process::Supervisor& supervisor, const ServePlan& plan) : m_supervisor(supervisor), m_plan(plan) {}

  int
  start(int slot, int channel_fd) override
  {
    env::EnvMap environment = m_plan.worker_env;
    environment.set("SMLAUNCH_SERVE_FD", std::to_string(channel_fd));
    environment.set("SMLAUNCH_SERVE_WORKER", std::to_string(slot));
    process::ChildSpec spec;
    spec.argv = m_plan.worker_argv;
    spec.envp = environment.to_envp();
    spec.cwd = m_plan.code_dir;
    spec.only_inherited_fd = channel_fd; // a second guard: the port and clients are close-on-exec
    return m_supervisor.start_background(spec);
  }

  bool
  running(int pid) override
  {
    return m_supervisor.background_running(pid);
  }

  // The supervisor reaps every exited child whenever it looks at one.
  void
  reap() override
  {
    m_supervisor.background_running(-1);
  }

  void
  signal(int pid, int signo) override
  {
    if (pid > 0) {
      ::kill(-pid, signo);
    }
  }

private:
  process::Supervisor& m_supervisor;
  const ServePlan& m_plan;
};

void
stage_model(const ServePlan& plan, fetch::HelperFetcher& fetcher)
{
  if (plan.model_archive.empty()) {
    return;
  }
  const std::string state = plan.base_dir + "/.smlaunch";
  std::error_code ec;
  fs::create_directories(state, ec);
  std::string archive = plan.model_archive;
  if (plan.model_from_s3) {
    archive = state + "/model.tar.gz";
    spdlog::info("downloading the model from {}", plan.model_archive);
    fetcher.s3_get(plan.model_archive, archive);
  }
  // Unpacked beside, then swapped in: model/ holds exactly the archive, as on the platform.
  const std::string fresh = state + "/model.unpacking";
  fs::remove_all(fresh, ec);
  fs::create_directories(fresh, ec);
  if (ec) {
    throw base::StagingError("cannot create " + fresh + ": " + ec.message());
  }
  spdlog::info("unpacking the model {} into {}", plan.model_archive, plan.model_dir);
  try {
    fetcher.extract(archive, fresh);
  } catch (...) {
    fs::remove_all(fresh, ec);
    throw;
  }
  fs::remove_all(plan.model_dir, ec);
  if (ec) {
    throw base::StagingError("cannot replace " + plan.model_dir + ": " + ec.message());
  }
  fs::rename(fresh, plan.model_dir, ec);
  if (ec) {
    throw base::StagingError("cannot move the unpacked model to " + plan.model_dir + ": " + ec.message());
  }
  if (plan.model_from_s3) {
    fs::remove(archive, ec);
  }
}

void
install_requirements(const ServePlan& plan, const ServeFacts& facts, const env::EnvMap& inherited,
                     process::Supervisor& supervisor)
{
  const CodeView code{plan.code_dir};
  const auto type = detect_entry_point_type(plan.program, code);
  const auto install = install_command(type, code, facts.python);
  if (!install) {
    return;
  }
  process::ChildSpec spec;
  spec.argv = install->argv;
  spec.envp = inherited.to_envp();
  spec.cwd = plan.code_dir;
  run_install_step(spec, install->error_class, supervisor);
}

ServeFacts
gather_facts(const ServeOptions& options, const env::EnvMap& inherited, const std::string& code_dir,
             const std::string& base_dir)
{
  ServeFacts facts;
  std::error_code ec;
  const auto cwd = fs::current_path(ec);
  facts.cwd = ec ? "/" : cwd.string();
  facts.python = process::find_executable(options.python, inherited).value_or(options.python);
  facts.python_share = serving_python_dir();
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  facts.cpus = cpus > 0 ? static_cast<int>(cpus) : 1;
  facts.vector_isa = probe_vector_isa();
  facts.code_dir_has_files = fetch::directory_has_files(code_dir);
  facts.staged_by_smlaunch = ::access(fetch::staging_marker_path(base_dir).c_str(), F_OK) == 0;
  return facts;
}

} // namespace

std::string
serving_python_dir()
{
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path().parent_path() / "share" / "smlaunch" / "python").string();
}

ServePlan
make_serve_plan(const ServeOptions& options, const env::EnvMap& inherited, const ServeFacts& facts)
{
  ServePlan plan;
  const env::Paths paths = env::Paths::under(env::normalize_base_dir(options.base_dir, facts.cwd));
  plan.base_dir = paths.base;
  plan.code_dir = paths.code;
  plan.model_dir = paths.model;
  if (!options.model_data.empty()) {
    if (options.model_data.starts_with("s3://")) {
      plan.model_archive = options.model_data;
      plan.model_from_s3 = true;
    } else {
      const std::string local = absolute_from(
          options.model_data.starts_with("file://") ? options.model_data.substr(7) : options.model_data, facts.cwd);
      struct stat st
      {
      };
      if (::stat(local.c_str(), &st) != 0) {
        throw base::StagingError("model data " + options.model_data + ": no such file or directory");
      }
      if (S_ISDIR(st.st_mode)) {
        plan.model_dir = local; // served in place, as local mode mounts it
      } else if (is_archive(local)) {
        plan.model_archive = local;
      } else {
        throw base::StagingError("model data " + options.model_data +
                                 ": expected a .tar.gz, .tgz or .tar archive, or a folder");
      }
    }
  }

  const std::string module_dir = options.submit_directory.empty() ? paths.code : options.submit_directory;
  plan.source = fetch::classify_code_source(module_dir.starts_with("s3://") || module_dir.starts_with("file://")
                                                ? module_dir
                                                : absolute_from(module_dir, facts.cwd),
                                            paths.code);
  plan.staging = fetch::decide_staging(plan.source, facts.code_dir_has_files, facts.staged_by_smlaunch);
  plan.program = options.program;
  plan.module = module_for(options.program);
  plan.workers = options.workers.value_or(facts.cpus);

  plan.worker_argv = {facts.python, "-m", "smlaunch_serving"};
  plan.worker_env = inherited;
  const std::string* pythonpath = inherited.get("PYTHONPATH");
  std::string search = facts.python_share + ":" + paths.code;
  if (pythonpath != nullptr && !pythonpath->empty()) {
    search += ":" + *pythonpath;
  }
  plan.worker_env.set("PYTHONPATH", search);
  if (inherited.get("PYTHONUNBUFFERED") == nullptr) {
    plan.worker_env.set("PYTHONUNBUFFERED", "1");
  }
  plan.worker_env.set("SMLAUNCH_SERVE_MODULE", plan.module);
  plan.worker_env.set("SMLAUNCH_SERVE_MODEL_DIR", plan.model_dir);
  plan.worker_env.set("SMLAUNCH_SERVE_DEFAULT_ACCEPT", options.default_accept);
  plan.thread_budget = env::thread_budget(facts.cpus, plan.workers, inherited, "workers");
  env::apply_thread_budget(plan.thread_budget, plan.worker_env);
  plan.blas_core = env::blas_core_type(facts.vector_isa, inherited);
  env::apply_blas_core_type(plan.blas_core, plan.worker_env);
  return plan;
}

int
run_serve(int argc, const char* const* argv, const env::EnvMap& inherited)
{
  ServeOptions options;
  try {
    options = parse_serve_command_line(argc, argv, inherited);
  } catch (const base::UsageError& e) {
    base::print_to(STDERR_FILENO, std::string("smlaunch serve: error: ") + e.what() + "\n");
    return e.exit_code();
  }
  if (options.help) {
    base::print_to(STDOUT_FILENO, serve_help_text());
    return 0;
  }
  base::setup_logging(options.verbosity);
  for (const auto& s : options.settings) {
    spdlog::debug("setting {} = {} ({})", s.name, s.value, s.origin);
  }
  const auto fail = [&](const std::string& error_class, int code, const std::string& message) {
    spdlog::error("{}: {}", error_class, env::redact_secrets(message, inherited));
    return code;
  };
  try {
    process::Supervisor::Options supervision;
    process::Supervisor supervisor(supervision);
    std::error_code cwd_ec;
    const auto cwd = fs::current_path(cwd_ec);
    const env::Paths paths = env::Paths::under(env::normalize_base_dir(options.base_dir, cwd_ec ? "/" : cwd.string()));
    const ServeFacts facts = gather_facts(options, inherited, paths.code, paths.base);
    const ServePlan plan = make_serve_plan(options, inherited, facts);
    std::error_code ec;
    fs::create_directories(plan.base_dir, ec);
    if (ec) {
      throw base::StagingError("cannot create the base directory " + plan.base_dir + ": " + ec.message());
    }
    const std::string* region = inherited.get("SAGEMAKER_REGION");
    fetch::HelperFetcher fetcher(supervisor, inherited, region != nullptr ? *region : "", plan.base_dir + "/.smlaunch");
    stage_model(plan, fetcher);
    struct stat st
    {
    };
    if (::stat(plan.model_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      spdlog::warn(
          "the model directory {} does not exist (--model-data unpacks a model there); model_fn gets it anyway",
          plan.model_dir);
    }
    if (plan.staging == fetch::StagingAction::keep_existing) {
      spdlog::warn("{} holds files smlaunch did not put there: keeping them and not staging {}", plan.code_dir,
                   plan.source.uri);
    } else if (plan.staging != fetch::StagingAction::none) {
      spdlog::info("staging the code from {} into {}", plan.source.uri, plan.code_dir);
    }
    fetch::stage_code(plan.source, plan.staging, fetch::StagingContext{plan.base_dir, plan.code_dir, &fetcher, [&] {
                                                                         return supervisor.poll_stop_signal();
                                                                       }});
    if (const int sig = supervisor.poll_stop_signal()) {
      spdlog::warn("stopped by {} before the server started", base::signal_name(sig));
      return 128 + sig;
    }
    install_requirements(plan, facts, inherited, supervisor);

    serve::ServerConfig config;
    config.bind_address = options.bind_address;
    config.port = options.port;
    config.workers = plan.workers;
    config.timeout = options.timeout;
    config.model_load_timeout = options.model_load_timeout;
    config.default_accept = options.default_accept;
    config.max_body_size = options.max_body_size;
    config.max_buffered_bytes = options.max_buffered_bytes;
    spdlog::info("serving {} from {} with the model in {}", plan.module, plan.code_dir, plan.model_dir);
    for (const auto& t : plan.thread_budget.settings) {
      spdlog::info("thread budget: {}={} ({})", t.name, t.value,
                   t.origin == env::ThreadOrigin::user ? "user" : plan.thread_budget.why);
    }
    if (!plan.blas_core.value.empty()) {
      spdlog::info("{}={} ({})", env::k_blas_core_variable, plan.blas_core.value, plan.blas_core.why);
    }
    SupervisedWorkers workers(supervisor, plan);
    const serve::ServeOutcome outcome = serve::run_server(config, workers);
    // What user code started (and left running, in its group or not) ends with the server.
    if (const int swept = supervisor.end_descendants(outcome.stopped_at_once ? std::chrono::milliseconds(0)
                                                                             : std::chrono::milliseconds(5000));
        swept > 0) {
      spdlog::info("stopped {} process(es) left by the workers", swept);
    }
    // Stopped: a stop signal from now on must not kill the exiting process when the
    // supervisor restores the signal mask (ignoring also drops one already pending).
    struct sigaction ignore
    {
    };
    ignore.sa_handler = SIG_IGN;
    for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) {
      sigaction(sig, &ignore, nullptr);
    }
    return 0;
  } catch (const serve::ServeError& e) {
    switch (e.failure()) {
    case serve::ServeFailure::bind:
      return fail("BindError", base::to_int(base::ExitCode::serve_bind), e.what());
    case serve::ServeFailure::model_load:
      return fail("ModelLoadError", to_int(base::ExitCode::model_load), e.what());
    case serve::ServeFailure::system:
      break;
    }
    return fail("InternalError", base::to_int(base::ExitCode::internal), e.what());
  } catch (const base::LauncherError& e) {
    return fail(e.error_class(), e.exit_code(), e.what());
  } catch (const std::exception& e) {
    return fail("InternalError", base::to_int(base::ExitCode::internal), e.what());
  }
}

} // namespace launcher
