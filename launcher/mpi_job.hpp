// An MPI job across hosts: the master waits for every worker's SSH login, runs mpirun,
// watches that every host stays reachable, and tells each worker the outcome; a worker
// runs sshd and waits for that outcome (or fails when its master is lost).
#pragma once

#include "launcher/plan.hpp"
#include "process/failure_report.hpp"
#include "process/supervisor.hpp"

#include <string>

namespace launcher {

int run_mpi_master(const TrainPlan& plan, const PlanInputs& inputs, process::Supervisor& supervisor,
                   process::OutcomeFiles& outcome);
int run_mpi_worker(const TrainPlan& plan, const PlanInputs& inputs, process::Supervisor& supervisor,
                   process::OutcomeFiles& outcome);

// True when a TCP connection to `host`:`port` opens within `timeout`.
bool port_answers(const std::string& host, int port, std::chrono::milliseconds timeout);

} // namespace launcher
