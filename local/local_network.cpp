#include "local/local_network.hpp"

#include "base/errors.hpp"
#include "base/shell.hpp"
#include "process/executables.hpp"
#include "process/failure_report.hpp"

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace local {

namespace {

using namespace std::chrono_literals;

// Hosts' addresses: the bridge lives in its own namespace, so any private range works.
std::string
host_address(std::size_t index)
{
  return "10.42.0." + std::to_string(index + 1);
}

std::string
path_with_sbin(const env::EnvMap& environment)
{
  return process::search_path(environment) + ":/usr/sbin:/sbin:/usr/bin:/bin";
}

// Effective capabilities from /proc/self/status (CapEff, a hex mask).
bool
has_capability(int bit)
{
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
      return ((mask >> bit) & 1ULL) != 0;
    }
  }
  return false;
}

std::string
namespace_id(pid_t pid, const char* kind)
{
  char buf[128];
  const std::string link = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// Every process (but `keep`) whose network namespace is `ns`.
std::vector<pid_t>
processes_in(const std::string& ns, pid_t keep)
{
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const pid_t pid = std::stoi(name);
    if (pid != keep && pid != ::getpid() && namespace_id(pid, "net") == ns) {
      pids.push_back(pid);
    }
  }
  return pids;
}

} // namespace

std::string
SimulatedNetwork::unavailable_reason(const env::EnvMap& environment)
{
  constexpr int cap_net_admin = 12;
  constexpr int cap_sys_admin = 21;
  if (::geteuid() != 0 && !(has_capability(cap_sys_admin) && has_capability(cap_net_admin))) {
    return "it needs root, or the capabilities CAP_SYS_ADMIN and CAP_NET_ADMIN (network namespaces, "
           "mounts, and an sshd per host)";
  }
  const std::string path = path_with_sbin(environment);
  for (const char* tool : {"ip", "unshare", "nsenter", "ssh", "ssh-keygen"}) {
    if (!process::find_executable(tool, path)) {
      return std::string(tool) + " is not installed (Debian: apt-get install iproute2 util-linux openssh-client)";
    }
  }
  const std::string* sshd = environment.get("SMLAUNCH_SSHD");
  const std::string sshd_path = sshd != nullptr && !sshd->empty() ? *sshd : "/usr/sbin/sshd";
  if (::access(sshd_path.c_str(), X_OK) != 0) {
    return "the SSH server " + sshd_path + " is not installed (Debian: apt-get install openssh-server)";
  }
  return "";
}

SimulatedNetwork::SimulatedNetwork(process::Supervisor& supervisor, const env::EnvMap& environment,
                                   const std::vector<std::string>& hosts, const std::string& hosts_file,
                                   const std::string& job_dir)
    : m_supervisor(supervisor), m_environment(environment), m_path(path_with_sbin(environment))
{
  m_environment.set("PATH", m_path);
  m_environment.set("SMLAUNCH_LOCAL_JOB_DIR", job_dir);
  m_nsenter = process::find_executable("nsenter", m_path).value_or("nsenter");
  const std::string ip = process::find_executable("ip", m_path).value_or("ip");
  const std::string unshare = process::find_executable("unshare", m_path).value_or("unshare");
  try {
    m_bridge = start_anchor({unshare, "--net", "--", "sleep", "infinity"}, "the bridge");
    const std::string bridge = std::to_string(m_bridge);
    run_checked({m_nsenter, "-t", bridge, "-n", ip, "link", "add", "br0", "type", "bridge"}, "creating the bridge");
    run_checked({m_nsenter, "-t", bridge, "-n", ip, "link", "set", "br0", "up"}, "starting the bridge");
    // Like a container: own hostname, /etc/hosts, /dev/shm (Open MPI's shared memory must
    // not meet another host's) and /run (sshd's privilege separation directory).
    const std::string setup = "hostname \"$1\" && mount --bind \"$2\" /etc/hosts"
                              " && mount -t tmpfs -o mode=1777,nosuid,nodev smlaunch-shm /dev/shm"
                              " && mount -t tmpfs -o mode=755,nosuid,nodev smlaunch-run /run"
                              " && mkdir -m 755 /run/sshd && exec sleep infinity";
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      const pid_t anchor = start_anchor({unshare, "--net", "--uts", "--mount", "--propagation", "private", "--",
                                         "/bin/sh", "-c", setup, "smlaunch-host", hosts[i], hosts_file},
                                        hosts[i]);
      m_anchors.push_back(anchor);
      const std::string pid = std::to_string(anchor);
      const std::string port = "h" + std::to_string(i + 1);
      run_checked({ip, "link", "add", "eth0", "netns", pid, "type", "veth", "peer", "name", port, "netns", bridge},
                  "creating " + hosts[i] + "'s eth0");
      run_checked({m_nsenter, "-t", bridge, "-n", ip, "link", "set", port, "master", "br0", "up"},
                  "attaching " + hosts[i] + " to the bridge");
      run_checked({m_nsenter, "-t", pid, "-n", ip, "addr", "add", host_address(i) + "/24", "dev", "eth0"},
                  "addressing " + hosts[i]);
      run_checked({m_nsenter, "-t", pid, "-n", ip, "link", "set", "eth0", "up"}, "starting " + hosts[i] + "'s eth0");
      run_checked({m_nsenter, "-t", pid, "-n", ip, "link", "set", "lo", "up"}, "starting " + hosts[i] + "'s loopback");
    }
  } catch (...) {
    close();
    throw;
  }
}

SimulatedNetwork::~SimulatedNetwork()
{
  try {
    close();
  } catch (...) { // NOLINT(bugprone-empty-catch): a destructor must not throw; close() is best effort
  }
}

std::string
hosts_file_text(const std::vector<std::string>& hosts)
{
  std::string text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    text += host_address(i) + "\t" + hosts[i] + "\n";
  }
  return text;
}

std::vector<std::string>
SimulatedNetwork::enter(std::size_t index) const
{
  return {m_nsenter, "-t", std::to_string(m_anchors.at(index)), "-n", "-u", "-m", "--"};
}

void
SimulatedNetwork::run_checked(const std::vector<std::string>& argv, const std::string& step)
{
  process::ChildSpec spec;
  // The tools' error messages come on stderr; capture mode keeps stdout only.
  spec.argv = {"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh"};
  spec.argv.insert(spec.argv.end(), argv.begin(), argv.end());
  spec.envp = m_environment.to_envp();
  spec.output = process::OutputMode::capture;
  spec.timeout = 20s;
  const process::ChildResult result = m_supervisor.run(spec);
  if (result.exit_code != 0) {
    throw base::ClusterError("simulated network: " + step + " failed (" + base::join_command(argv) + ", exit " +
                             std::to_string(result.exit_code) + "): " + process::last_lines(result.captured, 400));
  }
}

pid_t
SimulatedNetwork::start_anchor(const std::vector<std::string>& argv, const std::string& what)
{
  process::ChildSpec spec;
  spec.argv = argv;
  spec.envp = m_environment.to_envp();
  spec.cwd = "/";
  pid_t pid = -1;
  try {
    pid = m_supervisor.start_background(spec);
  } catch (const base::SystemError& e) {
    throw base::ClusterError("cannot start the namespace of " + what + ": " + e.what());
  }
  // unshare and sh exec() in place: the anchor is ready once the pid runs `sleep`.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name == "sleep") {
      return pid;
    }
    if (!m_supervisor.background_running(pid)) {
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  m_supervisor.stop_background(pid, 0ms);
  throw base::ClusterError("cannot set up the namespaces of " + what + " (" + base::join_command(argv) +
                           "); see the lines above");
}

void
SimulatedNetwork::close()
{
  if (m_closed) {
    return;
  }
  m_closed = true;
  // Strays first (an sshd session, an orted): nothing may outlive the job.
  for (const pid_t anchor : m_anchors) {
    const std::string ns = namespace_id(anchor, "net");
    for (int round = 0; round < 3 && !ns.empty(); ++round) {
      const auto strays = processes_in(ns, anchor);
      if (strays.empty()) {
        break;
      }
      for (const pid_t pid : strays) {
        ::kill(pid, SIGKILL);
      }
      m_supervisor.sleep_for(20ms); // reaps those that were our children
    }
  }
  for (const pid_t anchor : m_anchors) {
    m_supervisor.stop_background(anchor, 0ms);
  }
  if (m_bridge > 0) {
    m_supervisor.stop_background(m_bridge, 0ms);
  }
  m_anchors.clear();
  m_bridge = -1;
}

} // namespace local
