// The kernel's limits on what execve() takes, checked before a child starts, so that a
// million hyperparameters or one 50 MB value is named instead of "Argument list too long".
#pragma once

#include "base/kernel_limits.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace process {

using base::k_max_arg_strlen;

// "" when `argv` and `envp` fit (each string at most MAX_ARG_STRLEN, all of them with
// their pointers within `arg_max`), else what does not: the argument after "--key" names
// hyperparameter "key", a variable its name. `arg_max` 0: sysconf(_SC_ARG_MAX).
std::string exec_limits_problem(const std::vector<std::string>& argv, const std::vector<std::string>& envp,
                                std::size_t arg_max = 0);

} // namespace process
