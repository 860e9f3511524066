// An MPI job inside a Slurm allocation: the batch script runs `smlaunch train` once; it
// stages and installs on every node with one srun step (`smlaunch train --stage-only`,
// one task per node), then runs mpirun, whose Slurm support starts `smlaunch rank` on
// every node through srun. No sshd, no ssh, no workers to notify.
#pragma once

#include "launcher/plan.hpp"
#include "process/failure_report.hpp"
#include "process/supervisor.hpp"

namespace launcher {

// `smlaunch train --stage-only`: stage the code, install the requirements and record this
// host's state (for its ranks) in this host's tree, then stop. Returns 0, or 128+N on a
// stop signal; throws LauncherError for a failed step.
int stage_only(const TrainPlan& plan, PlanInputs& inputs, process::Supervisor& supervisor,
               const process::OutcomeFiles& outcome);

// The master of a Slurm MPI job: the setup step, then mpirun. Returns the job's status and
// writes output/success or output/failure in this host's tree.
int run_slurm_master(const TrainPlan& plan, PlanInputs& inputs, process::Supervisor& supervisor,
                     process::OutcomeFiles& outcome);

} // namespace launcher
