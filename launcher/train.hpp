// Carrying out a plan: stage, install, wait for host names, run the script, report.
#pragma once

#include "launcher/plan.hpp"
#include "launcher/supervisor.hpp"

namespace launcher {

// Returns the exit status; writes output/success or output/failure for the script's
// outcome. Throws LauncherError for the launcher's own failures.
int execute_train(const TrainPlan& plan, const PlanInputs& inputs, Supervisor& supervisor);

} // namespace launcher
