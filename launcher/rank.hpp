// The internal commands of an MPI job: `smlaunch rank` (what mpirun starts on every host)
// and `smlaunch job-ended` (what the master runs on each worker over ssh).
#pragma once

#include "env/env_map.hpp"
#include "env/thread_budget.hpp"
#include "env/training_environment.hpp"
#include "launcher/cli.hpp"

namespace launcher {

// Compute this host's environment from its own tree and run the rank's program, its
// output passed on in whole lines (rank_relay.hpp). Returns its exit status (127/126 when
// it cannot run, 65 for a bad tree); when it was killed by a signal, dies of the same.
int run_rank(const Options& options, const env::EnvMap& process_environment);

// Record the job's outcome for this host's waiting launcher.
int run_job_ended(const Options& options);

// A rank's thread budget: `cpus` (this host's SM_NUM_CPUS) over the ranks on this host
// (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE, else mpi::processes_on_host), keeping every
// thread variable present in `user` (the rank's environment before smlaunch's additions).
env::ThreadBudget rank_thread_budget(const env::TrainingEnvironment& training, int cpus,
                                     const env::EnvMap& process_environment, const env::EnvMap& user);

// <dir of this binary>/../lib/libsmlaunch_hostname.so, "" when it is not there.
std::string hostname_shim_path();

} // namespace launcher
