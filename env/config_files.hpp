// Reading and validating the three files SageMaker writes under input/config/.
#pragma once

#include "env/json_value.hpp"
#include "env/paths.hpp"

#include <string>

namespace env {

struct ConfigFiles
{
  Value hyperparameters;   // as written: every value normally a JSON text in a string
  Value resource_config;   // hosts, current_host, instance groups ...
  Value input_data_config; // channel name -> channel description
};

// Largest config file accepted; SageMaker's own are a few KiB.
inline constexpr std::size_t k_max_config_file_bytes = 64u * 1024u * 1024u;

// Read `path` as JSON (Python's json.load rules); throws ConfigError naming the file.
Value read_json_file(const std::string& path);

// Read and validate all three files; throws ConfigError listing every problem found.
// With `resource_config` (a cluster described by Slurm), that value stands for
// resourceconfig.json, which is not read.
ConfigFiles read_config_files(const Paths& paths, const Value* resource_config = nullptr);

// Validation alone, for tests and for trees built in memory.
void validate_config_files(const ConfigFiles& files, const Paths& paths);

// True for a host name smlaunch accepts: letters, digits, '.', '-', '_'.
bool is_valid_host_name(const std::string& name);

} // namespace env
