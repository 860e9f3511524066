#include "base/errors.hpp"

#include <cstring>
#include <system_error>

namespace base {

std::string
errno_text(int err)
{
  return std::system_category().message(err);
}

SystemError::SystemError(const std::string& call, const std::string& what, int err)
    : LauncherError("SystemError", ExitCode::internal, call + "(" + what + "): " + errno_text(err))
{
}

StoppedError::StoppedError(int signo, const std::string& phase)
    : LauncherError("Stopped", 128 + signo, "stopped by " + signal_name(signo) + " while " + phase), m_signal(signo)
{
}

std::string
signal_name(int signo)
{
  const char* abbrev = sigabbrev_np(signo);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(signo);
}

} // namespace base
