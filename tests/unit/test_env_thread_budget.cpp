// env::thread_budget: max(1, cpus / processes) per process when a host runs more than one,
// nothing with one, and a value the user set is never replaced.
#include "env/thread_budget.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace {

using Vars = std::vector<std::pair<std::string, std::string>>;

env::EnvMap
map_of(const Vars& vars)
{
  env::EnvMap m;
  for (const auto& [k, v] : vars) {
    m.set(k, v);
  }
  return m;
}

// "NAME=value/origin" per setting, in the order of k_thread_variables.
std::vector<std::string>
summary(const env::ThreadBudget& b)
{
  std::vector<std::string> out;
  for (const auto& s : b.settings) {
    out.push_back(s.name + "=" + s.value + "/" + env::to_string(s.origin));
  }
  return out;
}

TEST(ThreadBudget, Table)
{
  struct Case
  {
    const char* name;
    int cpus;
    int processes;
    Vars user;
    int threads;
    std::vector<std::string> settings;
    const char* why;
  };
  const Case cases[] = {
    {"one process keeps every core", 96, 1, {}, 0, {}, "none: one process on this host keeps every core"},
    {"8 ranks on 96 cores", 96, 8, {}, 12,
     {"OMP_NUM_THREADS=12/budget", "OPENBLAS_NUM_THREADS=12/budget", "MKL_NUM_THREADS=12/budget"},
     "12 = 96 cpus / 8 processes"},
    {"2 on 8", 8, 2, {}, 4, {"OMP_NUM_THREADS=4/budget", "OPENBLAS_NUM_THREADS=4/budget", "MKL_NUM_THREADS=4/budget"},
     "4 = 8 cpus / 2 processes"},
    {"rounded down", 7, 2, {}, 3,
     {"OMP_NUM_THREADS=3/budget", "OPENBLAS_NUM_THREADS=3/budget", "MKL_NUM_THREADS=3/budget"},
     "3 = 7 cpus / 2 processes"},
    {"more processes than cpus: at least 1", 2, 4, {}, 1,
     {"OMP_NUM_THREADS=1/budget", "OPENBLAS_NUM_THREADS=1/budget", "MKL_NUM_THREADS=1/budget"},
     "1 = 2 cpus / 4 processes"},
    {"zero processes counts as one", 8, 0, {}, 0, {}, "none: one process on this host keeps every core"},
    {"zero cpus counts as one", 0, 2, {}, 1,
     {"OMP_NUM_THREADS=1/budget", "OPENBLAS_NUM_THREADS=1/budget", "MKL_NUM_THREADS=1/budget"},
     "1 = 1 cpus / 2 processes"},
    {"the user's OMP_NUM_THREADS is kept", 8, 2, {{"OMP_NUM_THREADS", "6"}}, 4,
     {"OMP_NUM_THREADS=6/user", "OPENBLAS_NUM_THREADS=4/budget", "MKL_NUM_THREADS=4/budget"},
     "4 = 8 cpus / 2 processes"},
    {"an empty value is the user's too", 8, 2, {{"MKL_NUM_THREADS", ""}}, 4,
     {"OMP_NUM_THREADS=4/budget", "OPENBLAS_NUM_THREADS=4/budget", "MKL_NUM_THREADS=/user"},
     "4 = 8 cpus / 2 processes"},
    {"every variable the user's", 8, 2,
     {{"OPENBLAS_NUM_THREADS", "1"}, {"OMP_NUM_THREADS", "2"}, {"MKL_NUM_THREADS", "3"}}, 4,
     {"OMP_NUM_THREADS=2/user", "OPENBLAS_NUM_THREADS=1/user", "MKL_NUM_THREADS=3/user"},
     "4 = 8 cpus / 2 processes"},
    {"one process: the user's value is still reported", 8, 1, {{"OMP_NUM_THREADS", "5"}}, 0,
     {"OMP_NUM_THREADS=5/user"}, "none: one process on this host keeps every core"},
    {"other variables do not count", 8, 2, {{"OMP_PROC_BIND", "true"}, {"NUM_THREADS", "9"}}, 4,
     {"OMP_NUM_THREADS=4/budget", "OPENBLAS_NUM_THREADS=4/budget", "MKL_NUM_THREADS=4/budget"},
     "4 = 8 cpus / 2 processes"},
  };
  for (const auto& c : cases) {
    const env::ThreadBudget b = env::thread_budget(c.cpus, c.processes, map_of(c.user));
    EXPECT_EQ(b.threads, c.threads) << c.name;
    EXPECT_EQ(summary(b), c.settings) << c.name;
    EXPECT_EQ(b.why, c.why) << c.name;
  }
}

TEST(ThreadBudget, UnitNamesTheProcesses)
{
  EXPECT_EQ(env::thread_budget(8, 4, {}, "workers").why, "2 = 8 cpus / 4 workers");
}

TEST(ThreadBudget, ApplySetsOnlyTheBudgetsVariables)
{
  const env::EnvMap user = map_of({{"PATH", "/bin"}, {"OMP_NUM_THREADS", "7"}});
  env::EnvMap child = user;
  env::apply_thread_budget(env::thread_budget(8, 2, user), child);
  EXPECT_EQ(*child.get("OMP_NUM_THREADS"), "7");
  EXPECT_EQ(*child.get("OPENBLAS_NUM_THREADS"), "4");
  EXPECT_EQ(*child.get("MKL_NUM_THREADS"), "4");
  EXPECT_EQ(*child.get("PATH"), "/bin");

  env::EnvMap alone = map_of({{"PATH", "/bin"}});
  env::apply_thread_budget(env::thread_budget(8, 1, alone), alone);
  EXPECT_EQ(alone.size(), 1u); // one process: nothing added

  // A variable that appeared in the target after the budget was computed is not replaced.
  env::EnvMap later = map_of({{"MKL_NUM_THREADS", "9"}});
  env::apply_thread_budget(env::thread_budget(8, 2, {}), later);
  EXPECT_EQ(*later.get("MKL_NUM_THREADS"), "9");
}

} // namespace
