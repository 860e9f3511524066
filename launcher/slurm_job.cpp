#include "launcher/slurm_job.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/shell.hpp"
#include "env/config_error.hpp"
#include "launcher/host_state.hpp"
#include "launcher/install_step.hpp"
#include "launcher/train.hpp"
#include "process/failure_report.hpp"

#include <fstream>
#include <string>

namespace launcher {

int
stage_only(const TrainPlan& plan, PlanInputs& in, process::Supervisor& supervisor, const process::OutcomeFiles& outcome)
{
  if (const int stopped = stage(plan, in, supervisor)) {
    return stopped;
  }
  const bool staged = plan.staging != fetch::StagingAction::none && plan.staging != fetch::StagingAction::keep_existing;
  in.code_staged = in.code_staged || staged;
  const TrainPlan after = staged ? make_train_plan(in) : plan;
  if (after.install) {
    run_install_step(spec_for(*after.install), after.install->error_class, supervisor);
  }
  write_host_state(in.paths.base, HostState{in.inherited, after.environment.machine});
  process::release_failure_reserve(outcome); // this node's outcome is the master's to record
  spdlog::info("{}: code staged{}", after.environment.current_host, after.install ? " and requirements installed" : "");
  return 0;
}

int
run_slurm_master(const TrainPlan& plan, PlanInputs& in, process::Supervisor& supervisor, process::OutcomeFiles& outcome)
{
  if (plan.role == Role::worker) {
    throw env::ConfigError("SLURMD_NODENAME", "",
                           "is " + plan.environment.current_host + ", not the first host of the allocation (" +
                               plan.mpi.master +
                               "): under Slurm with MPI, run `smlaunch train` once, in the batch "
                               "script; its mpirun starts every node's ranks through srun");
  }
  const std::string setup_command = base::join_command(plan.slurm_setup->argv);
  spdlog::info("staging every node: {}", setup_command);
  const process::ChildResult setup = supervisor.run(spec_for(*plan.slurm_setup));
  if (setup.exit_code != 0) {
    // The step's task on this node wrote this tree's output/failure when this node's staging
    // failed: the job's report replaces it, quoting it.
    std::string this_node;
    if (std::ifstream file(in.paths.failure_file); file) {
      std::getline(file, this_node, '\0');
    }
    outcome = process::prepare_outcome(in.paths);
    std::string message =
        "the setup step (staging, requirements) failed on a node; each node's output/failure says why. " +
        process::describe_script_failure(setup, plan.slurm_setup->argv[0],
                                         std::chrono::duration<double>(in.options.grace_period).count());
    if (!this_node.empty()) {
      message += "\nOn " + plan.environment.current_host + ": " + process::last_lines(this_node, 1024);
    }
    return process::record_outcome(outcome, setup.exit_code, plan.slurm_setup->error_class, message, setup_command,
                                   plan.script.env);
  }
  // This node's tree was staged by the step: plan again from code/ itself.
  in.code_staged = true;
  const TrainPlan run = make_train_plan(in);
  write_host_state(in.paths.base, HostState{in.inherited, run.environment.machine});

  const std::string command = base::join_command(run.mpirun->argv);
  log_invocation("mpirun", command, run.script.env);
  const process::ChildResult r = supervisor.run(spec_for(*run.mpirun));
  std::string message;
  if (r.exit_code != 0) {
    message = process::describe_script_failure(r, run.mpirun->argv[0],
                                               std::chrono::duration<double>(in.options.grace_period).count());
  } else {
    spdlog::info("mpirun succeeded in {:.1f} s", r.seconds);
  }
  return process::record_outcome(outcome, r.exit_code, run.mpirun->error_class, message, command, run.script.env);
}

} // namespace launcher
