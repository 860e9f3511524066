// The hosts of a several-host `smlaunch local` job: one network namespace per host, the
// mechanism tests/cluster proved, now a feature. Each host has its own hostname (algo-k),
// an eth0 on a private bridge, an /etc/hosts naming every host, a private /dev/shm and
// /run (sshd's), so its launcher, sshd and Open MPI behave as on separate machines. The
// machine's own network, /etc and /run are never touched.
#pragma once

#include "env/env_map.hpp"
#include "process/supervisor.hpp"

#include <string>
#include <vector>

namespace local {

// /etc/hosts for the hosts: localhost, then "10.42.0.k<TAB>algo-k".
std::string hosts_file_text(const std::vector<std::string>& hosts);

class SimulatedNetwork
{
public:
  // "" when this process can create the namespaces, else what is missing (root, a tool).
  static std::string unavailable_reason(const env::EnvMap& environment);

  // Starts one "anchor" process per host (and one for the bridge) that holds the
  // namespaces; `hosts_file` is bind-mounted over /etc/hosts. Every anchor carries
  // SMLAUNCH_LOCAL_JOB_DIR=`job_dir` in its environment, so a stray one can be traced.
  // Throws LauncherError (ClusterError, exit 68) naming the step that failed.
  SimulatedNetwork(process::Supervisor& supervisor, const env::EnvMap& environment,
                   const std::vector<std::string>& hosts, const std::string& hosts_file, const std::string& job_dir);
  ~SimulatedNetwork();
  SimulatedNetwork(const SimulatedNetwork&) = delete;
  SimulatedNetwork& operator=(const SimulatedNetwork&) = delete;

  // The argv prefix that runs a command on host `index` (nsenter into its namespaces).
  std::vector<std::string> enter(std::size_t index) const;

  // Kill every process still inside the hosts' namespaces, then the anchors; the
  // namespaces and their interfaces vanish with them. Also done by the destructor.
  void close();

private:
  void run_checked(const std::vector<std::string>& argv, const std::string& step);
  pid_t start_anchor(const std::vector<std::string>& argv, const std::string& what);

  process::Supervisor& m_supervisor;
  env::EnvMap m_environment;
  std::string m_path; // PATH with the sbin directories, where `ip` lives
  std::string m_nsenter;
  pid_t m_bridge = -1;
  std::vector<pid_t> m_anchors;
  bool m_closed = false;
};

} // namespace local
