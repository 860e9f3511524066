// Carrying out a plan: stage, install, wait for host names, run the script, report.
#pragma once

#include "launcher/plan.hpp"
#include "process/failure_report.hpp"
#include "process/supervisor.hpp"

namespace launcher {

// How the supervisor starts a planned step: its argv, environment and folder.
process::ChildSpec spec_for(const Step& step);

// The info line "invoking <what>: <command>", secrets of `env` hidden. Redacting walks the
// whole environment (a tenth of a start), so it is done only when the line is shown.
void log_invocation(const char* what, const std::string& command, const env::EnvMap& env);

// Stage the code as `plan` says. Returns 128+N when a stop signal N arrived, else 0.
// Throws StagingError.
int stage(const TrainPlan& plan, const PlanInputs& inputs, process::Supervisor& supervisor);

// Install, wait for host names, run the script (the code is staged). Returns the exit status; writes output/success or
// output/failure for the script's outcome. Throws LauncherError for the launcher's own failures.
int execute_train(const TrainPlan& plan, const PlanInputs& inputs, process::Supervisor& supervisor,
                  process::OutcomeFiles& outcome);

} // namespace launcher
