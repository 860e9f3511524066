// The thread budget: with several compute processes on one host (MPI ranks, serving
// workers), each gets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS =
// max(1, cpus / processes), so that an optimized BLAS (one thread per core by default)
// does not oversubscribe the cores. A value the user set is never replaced. Pure.
#pragma once

#include "env/env_map.hpp"

#include <array>
#include <string>
#include <vector>

namespace env {

// The variables the budget sets (OpenMP, OpenBLAS, MKL).
inline constexpr std::array<const char*, 3> k_thread_variables = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                  "MKL_NUM_THREADS"};

enum class ThreadOrigin { user, budget };
const char* to_string(ThreadOrigin origin);

struct ThreadSetting
{
  std::string name;
  std::string value;
  ThreadOrigin origin = ThreadOrigin::budget;
};

struct ThreadBudget
{
  int cpus = 1;
  int processes = 1;
  int threads = 0;                     // per process; 0 when no budget applies (one process)
  std::string why;                     // "4 = 8 cpus / 2 processes", or why none applies
  std::vector<ThreadSetting> settings; // per variable: the user's value, or the budget's
};

// `processes`: how many such processes run on this host; `unit` names them ("processes",
// "workers") in `why`. `user` is the environment the processes would otherwise get: a
// variable present there (even empty) is the user's and is kept.
ThreadBudget thread_budget(int cpus, int processes, const EnvMap& user, const std::string& unit = "processes");

// Set the budget's variables in `environment` (never the user's: they are already there).
void apply_thread_budget(const ThreadBudget& budget, EnvMap& environment);

} // namespace env
