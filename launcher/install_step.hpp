// The install step of `train` and `serve` (pip on requirements.txt or the package), run
// under the supervisor.
#pragma once

#include "process/supervisor.hpp"

#include <string>

namespace launcher {

// Runs `spec` (pip); returns when it succeeded. Throws StoppedError when a stop signal
// ended it, InstallError of `error_class` (with pip's ERROR lines) when it failed; both
// name the command.
void run_install_step(const process::ChildSpec& spec, const std::string& error_class, process::Supervisor& supervisor);

} // namespace launcher
