#include "env/thread_budget.hpp"

#include <algorithm>

namespace env {

const char*
to_string(ThreadOrigin origin)
{
  return origin == ThreadOrigin::user ? "user" : "budget";
}

ThreadBudget
thread_budget(int cpus, int processes, const EnvMap& user, const std::string& unit)
{
  ThreadBudget b;
  b.cpus = std::max(cpus, 1);
  b.processes = std::max(processes, 1);
  if (b.processes > 1) {
    b.threads = std::max(1, b.cpus / b.processes);
    b.why = std::to_string(b.threads) + " = " + std::to_string(b.cpus) + " cpus / " + std::to_string(b.processes) +
            " " + unit;
  } else {
    b.why = "none: one process on this host keeps every core";
  }
  for (const char* name : k_thread_variables) {
    if (const std::string* value = user.get(name)) {
      b.settings.push_back({name, *value, ThreadOrigin::user});
    } else if (b.threads > 0) {
      b.settings.push_back({name, std::to_string(b.threads), ThreadOrigin::budget});
    }
  }
  return b;
}

void
apply_thread_budget(const ThreadBudget& budget, EnvMap& environment)
{
  for (const auto& s : budget.settings) {
    if (s.origin == ThreadOrigin::budget && !environment.contains(s.name)) {
      environment.set(s.name, s.value);
    }
  }
}

} // namespace env
