// Linux's limits on what execve() takes, shared by the early checks of the configuration
// (env/) and the last check before a child starts (process/exec_limits.hpp). Header only:
// env/ links nothing of base/.
#pragma once

#include <cstddef>

namespace base {

// MAX_ARG_STRLEN: one argument or "NAME=value" string, its NUL included.
inline constexpr std::size_t k_max_arg_strlen = 32 * 4096;

} // namespace base
