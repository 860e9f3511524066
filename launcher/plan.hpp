// parse -> plan -> execute: the plan is data, computed without spawning anything, so
// `smlaunch plan` prints exactly what `smlaunch train` will run.
#pragma once

#include "env/blas_core.hpp"
#include "env/config_files.hpp"
#include "env/env_map.hpp"
#include "env/slurm.hpp"
#include "env/thread_budget.hpp"
#include "env/training_environment.hpp"
#include "fetch/code_source.hpp"
#include "launcher/cli.hpp"
#include "launcher/entry_point.hpp"
#include "mpi/mpi_settings.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace launcher {

struct Step
{
  std::string name;        // "install", "script"
  std::string error_class; // first line of output/failure when it fails
  std::vector<std::string> argv;
  env::EnvMap env; // the child's complete environment
  std::string cwd;
};

// Where the host list came from (see ClusterChoice).
struct ClusterSource
{
  std::string name = "resourceconfig"; // or "slurm"
  std::string why;
  std::optional<env::SlurmCluster> slurm;
  std::string base_dir_pattern; // absolute; may hold %n (each node's own tree)
};

struct PlanInputs
{
  Options options;
  env::Paths paths;
  env::ConfigFiles config;
  env::MachineFacts machine;
  std::string gpu_source;
  env::EnvMap inherited; // the launcher's own environment
  std::string python;    // resolved path of --python
  bool code_dir_has_files = false;
  bool staged_by_smlaunch = false; // the staging marker exists
  bool code_staged = false;        // staging is done: plan from code/ itself
  std::string smlaunch_exe;        // this binary (mpirun starts `smlaunch rank` on every host)
  int open_mpi_major = 4;
  std::vector<std::string> probes_run; // processes the machine probes ran (plan lists them)
  ClusterSource cluster;
};

enum class Role { single, master, worker };
const char* to_string(Role role);

struct TrainPlan
{
  env::TrainingEnvironment environment;
  mpi::MpiSettings mpi;
  fetch::CodeSource source;
  fetch::StagingAction staging = fetch::StagingAction::none;
  CodeView code;
  std::string entry_point;
  EntryPointType entry_type = EntryPointType::python_program;
  bool entry_point_missing = false; // known absent: the run fails with 127
  std::optional<Step> install;
  Step script;
  std::vector<std::string> dns_hosts; // resolved before the script starts
  env::EnvMap added;                  // what smlaunch adds to the inherited environment

  // MPI: the master runs `mpirun`; each rank runs `smlaunch rank ... -- rank_program`.
  Role role = Role::single;
  std::optional<Step> mpirun;
  std::vector<std::string> rank_program;
  std::vector<std::string> workers; // every host but the master
  // MPI under Slurm: the step that stages and installs on every node (srun, one task per
  // node) before mpirun starts the ranks through the allocation; no sshd, no ssh.
  std::optional<Step> slurm_setup;
  // MPI: what each rank on this host gets (the rank step applies it; see rank.hpp).
  std::optional<env::ThreadBudget> thread_budget;
  // OPENBLAS_CORETYPE for this host's processes: applied to the script; under MPI each
  // host's rank step applies its own (see env/blas_core.hpp).
  env::BlasCoreType blas_core;
};

// The variables smlaunch adds for a script on this host: SM_*, PYTHONPATH,
// PYTHONUNBUFFERED and the reference's CURRENT_HOST, SAGEMAKER_JOB_NAME, SAGEMAKER_REGION.
// Under MPI, PYTHONUNBUFFERED is not added: mpirun --tag-output tags each write, and
// unbuffered Python writes a print's text and its newline separately.
enum class Launch { process, mpi_rank };
env::EnvMap script_variables(const env::TrainingEnvironment& environment, const env::Paths& paths,
                             const env::EnvMap& inherited, Launch launch);

// ssh options that share one connection per host between smlaunch's own ssh calls and
// mpirun's (OpenSSH ControlMaster; the socket lives in <base>/.smlaunch/). Empty when the
// socket path would be too long for a Unix socket.
std::vector<std::string> ssh_connection_sharing(const env::Paths& paths);

// Where this host's cluster comes from (ClusterChoice); for Slurm, the allocation read
// from `environment`. Looks only at whether resourceconfig.json exists; throws
// env::ConfigError when a Slurm variable is missing or malformed.
ClusterSource choose_cluster(const Options& options, const env::EnvMap& inherited, const env::Paths& paths,
                             const std::string& cwd);

// `srun` running `smlaunch train --stage-only` once on every node: the settings given
// (base-dir as its %n pattern) passed on. Pure.
std::vector<std::string> slurm_setup_argv(const PlanInputs& inputs, std::size_t nodes);

// Build the plan; throws env::ConfigError or StagingError.
TrainPlan make_train_plan(const PlanInputs& inputs);

// The plan as JSON, secrets redacted.
nlohmann::ordered_json plan_to_json(const TrainPlan& plan, const PlanInputs& inputs);

} // namespace launcher
