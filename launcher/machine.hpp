// Probing the machine (CPUs, GPUs, Neuron cores, SMDDP tools) before planning, so that
// planning itself stays pure.
#pragma once

#include "env/env_map.hpp"
#include "env/training_environment.hpp"
#include "process/supervisor.hpp"

#include <optional>
#include <string>

namespace launcher {

struct MachineProbe
{
  env::MachineFacts facts;
  std::string gpu_source; // "option", "nvml", "nvidia-smi", "none"
};

// `num_gpus` overrides detection (--num-gpus). Probes run under the supervisor.
MachineProbe probe_machine(Supervisor& supervisor,
                           const env::EnvMap& environment,
                           const std::string& instance_type,
                           std::optional<int> num_gpus);

// Count the lines of `nvidia-smi --list-gpus` that start with "GPU " (as the reference).
int count_gpu_lines(const std::string& list_gpus_output);

// Sum the "nc_count" fields of `neuron-ls -j` output; 0 when it is not that JSON.
int count_neuron_cores(const std::string& neuron_ls_json);

} // namespace launcher
