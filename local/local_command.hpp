// `smlaunch local`: write the job's trees (local_plan), run every host with its own
// `smlaunch train` (in its own namespaces when there are several: local_network), relay
// their output with each host's name, collect model.tar.gz and output.tar.gz, and print
// what happened on every host.
#pragma once

#include "env/env_map.hpp"

#include <string>
#include <vector>

namespace local {

// `args`: what follows "local" on the command line. Returns the exit status: 0 when every
// host succeeded, 128+N after a stop signal N, else the first failing host's status.
int run_local(const std::vector<std::string>& args, const env::EnvMap& environment);

// One line on why a host failed, from its output/failure: "AlgorithmError: ValueError: boom".
std::string failure_reason(const std::string& failure_file_text);

} // namespace local
