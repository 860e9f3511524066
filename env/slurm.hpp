// A Slurm allocation read as the cluster SageMaker would describe: the host list
// (Slurm's hostlist grammar, expanded as `scontrol show hostnames` does), the current
// host, tasks per node, and the resourceconfig.json SageMaker would write for it. Pure.
#pragma once

#include "env/env_map.hpp"
#include "env/json_value.hpp"

#include <optional>
#include <string>
#include <vector>

namespace env {

// Largest host list accepted from one expression; real clusters are far smaller.
inline constexpr std::size_t k_max_slurm_hosts = 65536;

// Expand a Slurm hostlist ("algo-[1-3,7]", "n[01-10]" keeping the zero padding,
// "a[1-2]b[3-4]", comma- or space-separated lists of these, plain names) in Slurm's order,
// duplicates kept. Throws ConfigError naming `variable` (e.g. "SLURM_JOB_NODELIST").
std::vector<std::string> expand_hostlist(const std::string& text, const std::string& variable);

// Tasks on each node from SLURM_TASKS_PER_NODE's form "2(x3),1": one count per node.
// Throws ConfigError naming `variable`.
std::vector<int> parse_tasks_per_node(const std::string& text, const std::string& variable);

// Replace "%n" in a path with the node's name ("%%" is a literal '%'), as Slurm's own
// file patterns do; other '%' sequences are kept as written.
std::string expand_node_pattern(const std::string& pattern, const std::string& node);

struct SlurmCluster
{
  std::vector<std::string> hosts; // SLURM_JOB_NODELIST expanded; hosts.front() is the master
  std::string current_host;       // SLURMD_NODENAME
  std::optional<int> tasks_per_node;
  std::string tasks_source;        // the variable tasks_per_node came from
  std::optional<int> gpus_on_node; // SLURM_GPUS_ON_NODE
};

// Read the allocation from a step's or batch script's environment. Throws ConfigError
// naming the variable that is missing or malformed.
SlurmCluster read_slurm_cluster(const EnvMap& environment);

// The resourceconfig.json SageMaker writes for a homogeneous job of these hosts.
Value slurm_resource_config(const SlurmCluster& cluster, const std::string& instance_type,
                            const std::string& network_interface);

} // namespace env
