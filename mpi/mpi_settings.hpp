// Whether a job runs under MPI, and with how many processes: both the Chainer names
// (sagemaker_use_mpi, ...) and the toolkit names (sagemaker_mpi_enabled, ...) count.
#pragma once

#include "env/training_environment.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mpi {

struct MpiSettings
{
  bool enabled = false;
  std::string why; // one line: which setting decided
  int processes_per_host = 1;
  int num_processes = 1;
  std::vector<std::string> custom_options; // shell-split, additional then custom
  std::vector<std::string> hosts;          // in launch order; hosts.front() is the master
  std::string master;
};

// Upper bound on slots per host and on processes in all; larger values are mistakes.
inline constexpr long long k_max_processes_per_host = 1024;

// Decide from the hyperparameters; throws env::ConfigError for bad counts or options.
// Slots per host: the hyperparameter, else `cluster_slots` (Slurm's tasks per node), else
// the host's GPUs, else 1.
MpiSettings resolve_mpi_settings(const env::TrainingEnvironment& environment,
                                 std::optional<int> cluster_slots = std::nullopt);

} // namespace mpi

namespace mpi {

// How many ranks mpirun places on `host` with the reference's `--host h:slots -np P
// -map-by slot`: the hosts' slots are filled in order. 0 for a host not in the job.
int processes_on_host(const MpiSettings& settings, const std::string& host);

} // namespace mpi
