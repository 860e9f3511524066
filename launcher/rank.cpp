#include "launcher/rank.hpp"

#include "base/logging.hpp"
#include "env/config_files.hpp"
#include "env/paths.hpp"
#include "env/slurm.hpp"
#include "env/training_environment.hpp"
#include "launcher/host_state.hpp"
#include "launcher/machine.hpp"
#include "launcher/plan.hpp"
#include "mpi/mpirun_command.hpp"
#include "process/supervisor.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sys/prctl.h>
#include <system_error>
#include <unistd.h>

namespace launcher {

namespace {

// Variables the MPI runtime sets for each rank: a rank cannot start without them.
bool
is_mpi_runtime_variable(const std::string& name)
{
  for (const char* prefix : {"OMPI_", "PMIX_", "OPAL_", "PRTE_", "HYDRA_", "PMI_"}) {
    if (name.rfind(prefix, 0) == 0) {
      return true;
    }
  }
  return false;
}

} // namespace

env::ThreadBudget
rank_thread_budget(const env::TrainingEnvironment& training, int cpus, const env::EnvMap& process_environment,
                   const env::EnvMap& user)
{
  // What mpirun placed on this host (exact, whatever mapping options the user passed);
  // without it, the reference's --host/-np slot distribution.
  int processes = 0;
  if (const std::string* local = process_environment.get("OMPI_COMM_WORLD_LOCAL_SIZE")) {
    const auto [end, ec] = std::from_chars(local->data(), local->data() + local->size(), processes);
    if (ec != std::errc() || end != local->data() + local->size()) {
      processes = 0;
    }
  }
  if (processes <= 0) {
    processes = mpi::processes_on_host(mpi::resolve_mpi_settings(training), training.current_host);
  }
  return env::thread_budget(cpus, processes, user);
}

std::string
hostname_shim_path()
{
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return "";
  }
  const auto shim = exe.parent_path().parent_path() / "lib" / "libsmlaunch_hostname.so";
  return std::filesystem::exists(shim, ec) ? shim.lexically_normal().string() : "";
}

int
run_rank(const Options& options, const env::EnvMap& process_environment)
{
  // mpirun (or its daemon) starts this step and never reaps it when it is SIGKILLed itself
  // (`smlaunch local` killed): die with it, checked against its death before the prctl.
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {
    return 137;
  }
  try {
    char cwd[4096] = "/";
    [[maybe_unused]] const char* ignored = getcwd(cwd, sizeof(cwd));
    const env::Paths paths = env::Paths::under(env::normalize_base_dir(options.base_dir, cwd));
    // Under Slurm, the cluster is this node's view of the allocation, as on the master.
    std::optional<env::Value> slurm_config;
    if (options.cluster == ClusterChoice::slurm) {
      slurm_config = env::slurm_resource_config(env::read_slurm_cluster(process_environment), options.instance_type,
                                                options.network_interface.empty() ? "eth0" : options.network_interface);
    }
    const env::ConfigFiles files = env::read_config_files(paths, slurm_config ? &*slurm_config : nullptr);
    const HostState host = read_host_state(paths.base);
    const env::TrainingEnvironment training =
        env::build_training_environment(paths, files, host.machine, host.environment);

    // This host's environment, what mpirun exported, the runtime's own, then smlaunch's.
    env::EnvMap environment = host.environment;
    for (const auto& [name, value] : process_environment.entries()) {
      const bool kept = std::find(options.rank_keep.begin(), options.rank_keep.end(), name) != options.rank_keep.end();
      if (kept || is_mpi_runtime_variable(name)) {
        environment.set(name, value);
      }
    }
    // The thread budget, on top of every value the user can have set: the host's own
    // environment (image and job) and what mpirun exported (the user's `-x` included).
    env::apply_thread_budget(rank_thread_budget(training, host.machine.num_cpus, process_environment, environment),
                             environment);
    // OpenBLAS's kernels for this host's CPU, on the same terms (env/blas_core.hpp).
    env::apply_blas_core_type(env::blas_core_type(probe_vector_isa(), environment), environment);
    const env::EnvMap added = script_variables(training, paths, host.environment, Launch::mpi_rank);
    for (const auto& [name, value] : added.entries()) {
      environment.set(name, value);
    }
    environment.set("SMLAUNCH_HOSTNAME", training.current_host);
    if (const std::string shim = hostname_shim_path(); !shim.empty()) {
      const std::string* preload = environment.get("LD_PRELOAD");
      environment.set("LD_PRELOAD", preload != nullptr && !preload->empty() ? shim + ":" + *preload : shim);
    }

    if (::chdir(paths.code.c_str()) != 0) {
      base::print_to(STDERR_FILENO,
                     "smlaunch rank: cannot enter " + paths.code + ": " + std::system_category().message(errno) + "\n");
      return 126;
    }
    // The program runs under the one supervisor (signals forwarded, the exec rules of every
    // child), its output relayed in whole lines, and dies if this step is killed.
    process::ChildSpec spec;
    spec.argv = options.rank_program;
    spec.envp = environment.to_envp();
    spec.output = process::OutputMode::lines;
    spec.die_with_parent = true;
    process::ChildResult result;
    {
      base::setup_logging(base::Verbosity::quiet); // stdout is the rank's: only warnings, on stderr
      // mpirun forwards the job's SIGTERM as k_rank_stop_signal: the program gets SIGTERM.
      process::Supervisor::Options supervision;
      supervision.term_alias = mpi::k_rank_stop_signal;
      // The master's --grace-period governs: when it ends, mpirun stops this step (SIGKILL).
      supervision.grace_period = std::chrono::hours(24);
      process::Supervisor supervisor(supervision);
      result = supervisor.run(spec);
    } // the signal mask is restored here
    if (result.exec_errno != 0) {
      base::print_to(STDERR_FILENO, "smlaunch rank: cannot run " + options.rank_program[0] + ": " +
                                        std::system_category().message(result.exec_errno) + "\n");
    }
    if (result.term_signal != 0) {
      // End as the program ended, so mpirun reports its signal.
      static_cast<void>(std::signal(result.term_signal, SIG_DFL));
      static_cast<void>(::raise(result.term_signal));
    }
    return result.exit_code;
  } catch (const std::exception& e) {
    base::print_to(STDERR_FILENO, std::string("smlaunch rank: ") + e.what() + "\n");
    return 65;
  }
}

int
run_job_ended(const Options& options)
{
  try {
    write_job_outcome(options.base_dir, JobOutcome{options.job_exit_code, options.job_message});
    return 0;
  } catch (const std::exception& e) {
    base::print_to(STDERR_FILENO, std::string("smlaunch job-ended: ") + e.what() + "\n");
    return 70;
  }
}

} // namespace launcher
