#include "process/exec_limits.hpp"

#include <unistd.h>

namespace process {

namespace {

std::string
what_the_argument_is(const std::vector<std::string>& argv, std::size_t i)
{
  if (i > 0 && argv[i - 1].starts_with("--") && argv[i - 1].size() > 2) {
    return "the value of hyperparameter \"" + argv[i - 1].substr(2) + "\" (argument " + std::to_string(i) + ")";
  }
  return "argument " + std::to_string(i) + " of the command";
}

} // namespace

std::string
exec_limits_problem(const std::vector<std::string>& argv, const std::vector<std::string>& envp, std::size_t arg_max)
{
  if (arg_max == 0) {
    const long limit = ::sysconf(_SC_ARG_MAX);
    arg_max = limit > 0 ? static_cast<std::size_t>(limit) : 2 * 1024 * 1024;
  }
  const std::string per_string = " bytes, over the kernel's limit of " + std::to_string(k_max_arg_strlen) +
                                 " bytes for one argument or variable (MAX_ARG_STRLEN)";
  std::size_t total = 0;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].size() + 1 > k_max_arg_strlen) {
      return what_the_argument_is(argv, i) + " is " + std::to_string(argv[i].size()) + per_string;
    }
    total += argv[i].size() + 1 + sizeof(char*);
  }
  std::string largest;
  for (const auto& entry : envp) {
    const std::string name = entry.substr(0, entry.find('='));
    if (entry.size() + 1 > k_max_arg_strlen) {
      return "environment variable " + name + " is " + std::to_string(entry.size()) + per_string;
    }
    total += entry.size() + 1 + sizeof(char*);
  }
  total += 2 * sizeof(char*); // the two NULL pointers
  if (total > arg_max) {
    return "the command line and environment take " + std::to_string(total) + " bytes (" + std::to_string(argv.size()) +
           " arguments, " + std::to_string(envp.size()) + " variables), over the kernel's limit of " +
           std::to_string(arg_max) + " bytes (ARG_MAX)";
  }
  return "";
}

} // namespace process
