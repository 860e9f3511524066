// `smlaunch local`'s artifacts: model.tar.gz (the shared model directory) and
// output.tar.gz (every host's output/, merged), as the SDK's local mode collects them.
#pragma once

#include "env/env_map.hpp"
#include "local/local_plan.hpp"
#include "process/supervisor.hpp"

#include <string>

namespace local {

// <job dir>/model.tar.gz and <job dir>/output.tar.gz.
std::string model_archive_path(const LocalJobPlan& plan);
std::string output_archive_path(const LocalJobPlan& plan);

// Write both archives, each under a temporary name renamed into place once complete, so
// a full disk never leaves a truncated archive. Returns "" or, for each archive that could
// not be written, its name and why ("model.tar.gz: ... No space left on device"), one a line.
std::string write_artifacts(process::Supervisor& supervisor, const env::EnvMap& environment, const LocalJobPlan& plan);

} // namespace local
