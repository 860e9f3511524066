#include "launcher/install_step.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/shell.hpp"
#include "process/failure_report.hpp"

namespace launcher {

void
run_install_step(const process::ChildSpec& spec, const std::string& error_class, process::Supervisor& supervisor)
{
  const std::string command = base::join_command(spec.argv);
  spdlog::info("installing: {}", command);
  const process::ChildResult r = supervisor.run(spec);
  // Thrown by copy, as with_command() returns *this: same type, no slicing.
  if (r.stop_signal != 0) {
    // NOLINTNEXTLINE(cert-err60-cpp,misc-throw-by-value-catch-by-reference)
    throw base::StoppedError(r.stop_signal, "installing with pip").with_command(command);
  }
  if (r.exit_code != 0) {
    // NOLINTNEXTLINE(cert-err60-cpp,misc-throw-by-value-catch-by-reference)
    throw base::InstallError(error_class, process::describe_install_failure(r, spec.argv.at(0))).with_command(command);
  }
}

} // namespace launcher
