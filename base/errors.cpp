#include "base/errors.hpp"

#include <system_error>

namespace launcher {

SystemError::SystemError(const std::string& call, const std::string& what, int err)
  : LauncherError("SystemError", ExitCode::internal, call + "(" + what + "): " + std::system_category().message(err))
{
}

} // namespace launcher
