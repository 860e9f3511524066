// The mpirun command line, as data: the reference's flags in its order, with Open MPI
// version differences in one table. Pure.
#pragma once

#include "mpi/mpi_settings.hpp"

#include <csignal>
#include <string>
#include <vector>

namespace mpi {

// Parameter names that differ between Open MPI releases.
struct OpenMpiNames
{
  int major = 4;
  const char* abort_on_non_zero_status; // "orte_abort_on_non_zero_status" (4), "prte_..." (5)
  const char* vader_single_copy;        // "btl_vader_single_copy_mechanism" (4), "smsc" (5)
  // The reference passes "^openib"; ofi and uct are excluded too, as Debian's own default
  // does: without a fabric, the ofi BTL alone adds a second to every job's end.
  const char* btl_exclude;
  const char* forward_signals; // "ess_base_forward_signals" (4), "prte_ess_base_forward_signals" (5)
};

// What the master sends mpirun in place of a SIGTERM, and each rank step turns back into
// SIGTERM for its program: on SIGTERM itself, mpirun kills the ranks within 2 s, whatever the
// grace period; this one it only forwards (with -mca <forward_signals>), and its default
// action is to be ignored.
inline constexpr int k_rank_stop_signal = SIGURG;
inline constexpr const char* k_rank_stop_signal_name = "SIGURG";

// The names for Open MPI `major` (4 and 5 are known; others use 4's).
OpenMpiNames open_mpi_names(int major);

// Parse the major version from `mpirun --version` output ("mpirun (Open MPI) 4.1.4").
int parse_open_mpi_major(const std::string& version_output);

// How mpirun reaches the other hosts: over ssh (SageMaker, `smlaunch local`), or through
// the Slurm allocation it runs in (Open MPI's plm/slurm starts its daemons with srun).
enum class Starter { ssh, slurm };

struct MpirunInputs
{
  Starter starter = Starter::ssh;
  MpiSettings settings;
  OpenMpiNames names = open_mpi_names(4);
  std::string mpirun = "mpirun";
  std::string network_interface;         // network_interface_name (Slurm: "" leaves Open MPI's choice)
  std::string instance_type;             // current_instance_type (EFA flags)
  std::string ssh_command;               // plm_rsh_agent; "" or "ssh": Open MPI's default
  std::vector<std::string> present;      // names of variables set in the master's environment
  std::string rank_wrapper;              // the smlaunch binary: each rank runs `smlaunch rank
                                         // --keep <exported> -- <program>` ("": the bare program)
  std::vector<std::string> rank_options; // after `smlaunch rank` (Slurm: --cluster slurm ...)
  std::vector<std::string> program;      // the user's program each rank runs
  bool single_host = false;              // run locally: no ssh, no interface selection
};

struct MpirunCommand
{
  std::vector<std::string> argv;
  std::vector<std::string> exported; // the names passed with -x (the rank step keeps them)
};

// Build the command (see README "MPI" for the flags and why each is there).
MpirunCommand build_mpirun_command(const MpirunInputs& inputs);

// How many values the mpirun option `word` takes (Open MPI 4.1's `mpirun --help all`, 5's
// prterun for its own MCA prefixes, and the reference's --NCCL_DEBUG); 0 for anything else.
int option_value_count(const std::string& word);

// Split "--NCCL_DEBUG X" / "--NCCL_DEBUG=X" out of the user's options, as the reference
// does; returns the level ("INFO" when absent) and leaves the other options in place.
std::string take_nccl_debug(std::vector<std::string>& options);

} // namespace mpi
