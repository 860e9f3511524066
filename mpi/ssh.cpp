#include "mpi/ssh.hpp"

namespace mpi {

std::vector<std::string>
ssh_connection_sharing(const std::string& control_dir)
{
  // %C is a 40-character hash, and ssh adds ".<16 random characters>" while it binds;
  // sun_path holds 107 characters.
  const std::string socket = control_dir + "/%C";
  if (socket.size() - 2 + 40 + 17 > 107) {
    return {};
  }
  // These options also reach mpirun's plm_rsh_agent, which Open MPI 4 splits on spaces
  // and colons, ignoring quotes: no quoting can carry such a path there.
  if (control_dir.find_first_of(" :") != std::string::npos) {
    return {};
  }
  return {"-o", "ControlMaster=auto", "-o", "ControlPersist=60", "-o", "ControlPath=" + socket};
}

std::vector<std::string>
ssh_argv(const std::vector<std::string>& ssh_command, const std::vector<std::string>& sharing, const std::string& host,
         const std::vector<std::string>& remote)
{
  std::vector<std::string> argv = ssh_command;
  argv.insert(argv.end(), sharing.begin(), sharing.end());
  argv.insert(argv.end(), {"-o", "BatchMode=yes", "-o", "ConnectTimeout=3", host});
  argv.insert(argv.end(), remote.begin(), remote.end());
  return argv;
}

std::vector<std::string>
sshd_argv(const SshdInputs& in)
{
  std::vector<std::string> argv = {in.sshd, "-D", "-e"};
  if (!in.config.empty()) {
    argv.insert(argv.end(), {"-f", in.config});
  }
  if (in.port != 22) {
    argv.insert(argv.end(), {"-p", std::to_string(in.port)});
  }
  // Every session on this host (mpirun's daemons and ranks, the master's job-ended call)
  // learns where this host's tree is. sshd splits the value on spaces unless it is in
  // double quotes (in which it reads \" and \\ as escapes).
  std::string set_env = "SMLAUNCH_BASE_DIR=" + in.base_dir;
  if (set_env.find_first_of(" \t\"\\'") != std::string::npos) {
    std::string quoted = "\"";
    for (const char c : set_env) {
      if (c == '"' || c == '\\') {
        quoted += '\\';
      }
      quoted += c;
    }
    set_env = quoted + "\"";
  }
  argv.insert(argv.end(), {"-o", "SetEnv=" + set_env});
  // The liveness probes connect every second; at sshd's default level each would log.
  argv.insert(argv.end(), {"-o", "LogLevel=ERROR"});
  // sshd -D still writes its PidFile (Debian: /run/sshd.pid, a system sshd's too); smlaunch
  // supervises this one itself, and writes nothing outside the tree.
  argv.insert(argv.end(), {"-o", "PidFile=none"});
  return argv;
}

} // namespace mpi
