// Probing the machine (CPUs, GPUs, Neuron cores, SMDDP tools) before planning, so that
// planning itself stays pure.
#pragma once

#include "env/env_map.hpp"
#include "env/training_environment.hpp"
#include "process/supervisor.hpp"

#include <optional>
#include <string>
#include <vector>

namespace launcher {

struct MachineProbe
{
  env::MachineFacts facts;
  std::string gpu_source; // "option", "proc", "nvidia-smi", "none"
  // Every process a probe ran, as a command line ("nvidia-smi --list-gpus"): `smlaunch plan`
  // lists them. Empty wherever an option, /proc or the instance type answered.
  std::vector<std::string> processes_run;
};

// GPUs the NVIDIA driver lists in `proc_gpus_dir` (/proc/driver/nvidia/gpus: one folder per
// GPU) whose device node `dev_dir`/nvidia<minor> exists, the minor read from the folder's
// `information` (a folder that names none counts); nullopt when the folder does not exist.
std::optional<int> count_proc_gpus(const std::string& proc_gpus_dir = "/proc/driver/nvidia/gpus",
                                   const std::string& dev_dir = "/dev");

// Open MPI's major version from the files of its launcher, without running it: `mpirun`
// resolved through its links is orterun (Open MPI 4, ORTE) or has prterun beside it
// (Open MPI 5, PRRTE). nullopt when the files do not tell.
std::optional<int> open_mpi_major_from_files(const std::string& mpirun_path);

// `num_gpus` overrides detection (--num-gpus). Probes run under the supervisor.
MachineProbe probe_machine(process::Supervisor& supervisor, const env::EnvMap& environment,
                           const std::string& instance_type, std::optional<int> num_gpus);

// Count the lines of `nvidia-smi --list-gpus` that start with "GPU " (as the reference).
int count_gpu_lines(const std::string& list_gpus_output);

// The widest vector instructions this CPU and the kernel support (cpuid, no process).
env::VectorIsa probe_vector_isa();

// Sum the "nc_count" fields of `neuron-ls -j` output; 0 when it is not that JSON.
int count_neuron_cores(const std::string& neuron_ls_json);

} // namespace launcher
