// Files a host's launcher keeps under <base>/.smlaunch/ for the other processes of an MPI
// job on that host: the host's environment and machine facts (for `smlaunch rank`, whose
// own environment is an ssh session's), and the job's outcome (written by the master).
#pragma once

#include "env/env_map.hpp"
#include "env/training_environment.hpp"

#include <optional>
#include <string>

namespace launcher {

struct HostState
{
  env::EnvMap environment; // the launcher's inherited environment on this host
  env::MachineFacts machine;
};

// Write <base>/.smlaunch/host.json (mode 0600: it holds credentials).
void write_host_state(const std::string& base_dir, const HostState& state);
// Read it back; throws StagingError when missing or unreadable.
HostState read_host_state(const std::string& base_dir);

struct JobOutcome
{
  int exit_code = 0;
  std::string message; // the master's failure message, "" on success
};

std::string job_outcome_path(const std::string& base_dir);
// Atomically (write, then rename) record the outcome.
void write_job_outcome(const std::string& base_dir, const JobOutcome& outcome);
std::optional<JobOutcome> read_job_outcome(const std::string& base_dir);

} // namespace launcher
