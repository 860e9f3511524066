// The ssh and sshd command lines of a several-host MPI job, as data (pure): what
// smlaunch's own ssh calls (login probes, job-ended, closing shared connections) and each
// worker's sshd receive. mpirun's ssh (plm_rsh_agent) is in mpirun_command.
#pragma once

#include <string>
#include <vector>

namespace mpi {

// ssh options that share one connection per host between smlaunch's own ssh calls and
// mpirun's (OpenSSH ControlMaster; the sockets live in `control_dir`). Empty when the
// socket path would be too long for a Unix socket (107 characters), or holds a space or a
// colon (mpirun's plm_rsh_agent is split on both, quotes or not).
std::vector<std::string> ssh_connection_sharing(const std::string& control_dir);

// `ssh_command` (the words of --ssh-command), then `sharing`, batch mode and a short
// connect timeout, the host, and the remote command's words.
std::vector<std::string> ssh_argv(const std::vector<std::string>& ssh_command, const std::vector<std::string>& sharing,
                                  const std::string& host, const std::vector<std::string>& remote);

struct SshdInputs
{
  std::string sshd = "sshd"; // the binary
  std::string config;        // -f, when not ""
  int port = 22;             // -p, when not 22
  std::string base_dir;      // every session learns where this host's tree is
};

// sshd in the foreground, logging to stderr, quiet (the liveness probes connect every second).
std::vector<std::string> sshd_argv(const SshdInputs& inputs);

} // namespace mpi
