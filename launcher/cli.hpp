// The command line: one table of options, each with an SMLAUNCH_* environment twin
// (an ENTRYPOINT's argv is fixed in the image); the command line wins.
#pragma once

#include "base/logging.hpp"
#include "base/option_table.hpp"
#include "env/env_map.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace launcher {

enum class Command { train, plan, help, version, rank, job_ended, local };

// Where the host list comes from: resourceconfig.json (SageMaker, `smlaunch local`) or a
// Slurm allocation; `detect` picks Slurm when SLURM_JOB_ID is set and the tree has no
// resourceconfig.json.
enum class ClusterChoice { detect, sagemaker, slurm };

struct Options
{
  Command command = Command::help;
  std::string base_dir;         // this host's tree (%n expanded)
  std::string base_dir_pattern; // as given: may hold %n (Slurm's node name)
  std::string python;           // as given; resolved against PATH when planning
  std::optional<int> num_gpus;  // unset: detect
  std::chrono::milliseconds grace_period{60000};
  std::chrono::milliseconds dns_timeout{900000};
  base::Verbosity verbosity = base::Verbosity::normal;
  // MPI across hosts.
  std::string mpirun = "mpirun";
  std::string sshd = "/usr/sbin/sshd";
  std::string sshd_config; // "" : sshd's own default
  int sshd_port = 22;
  std::string ssh_command = "ssh";
  std::chrono::milliseconds ssh_timeout{300000};
  std::chrono::milliseconds lost_host_timeout{10000};
  ClusterChoice cluster = ClusterChoice::detect;
  std::string instance_type = "local"; // Slurm: SM_CURRENT_INSTANCE_TYPE
  std::string network_interface;       // Slurm: "" is eth0 in SM_*, Open MPI's own choice
  bool stage_only = false;             // stage and install on this host, then stop
  std::vector<base::Setting> settings;

  // Internal commands (run by smlaunch itself on other hosts).
  std::vector<std::string> rank_program; // `rank -- PROGRAM...`
  std::vector<std::string> rank_keep;    // `rank --keep A,B`: variables mpirun exported
  int job_exit_code = 0;                 // `job-ended --exit-code N`
  std::string job_message;               // `job-ended --message TEXT`
  std::vector<std::string> local_args;   // `local ARGS...`: parsed by local_plan
};

// `pattern` with %n replaced by SLURMD_NODENAME; throws UsageError when it holds %n and
// that variable is not set.
std::string expand_base_dir(const std::string& pattern, const env::EnvMap& environment);

// Parse argv (argv[0] "train" dispatches like "smlaunch train"); throws UsageError.
Options parse_command_line(int argc, const char* const* argv, const env::EnvMap& environment);

std::string help_text();

} // namespace launcher
