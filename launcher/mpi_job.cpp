#include "launcher/mpi_job.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/shell.hpp"
#include "launcher/host_state.hpp"
#include "launcher/train.hpp"
#include "mpi/mpi_settings.hpp"
#include "mpi/mpirun_command.hpp"
#include "mpi/ssh.hpp"
#include "process/failure_report.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <fcntl.h>
#include <mutex>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace launcher {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string
seconds_text(std::chrono::milliseconds d)
{
  return fmt::format("{:g} s", std::chrono::duration<double>(d).count());
}

std::vector<std::string>
ssh_argv(const PlanInputs& in, const std::string& host, const std::vector<std::string>& remote)
{
  // --ssh-command was checked when parsed (cli.cpp): it splits into at least one word.
  return mpi::ssh_argv(base::shell_split(in.options.ssh_command), ssh_connection_sharing(in.paths), host, remote);
}

pid_t
start_sshd(const PlanInputs& in, process::Supervisor& supervisor)
{
  process::ChildSpec spec;
  spec.argv =
      mpi::sshd_argv(mpi::SshdInputs{in.options.sshd, in.options.sshd_config, in.options.sshd_port, in.paths.base});
  spec.envp = in.inherited.to_envp();
  spec.cwd = "/";
  spdlog::info("starting sshd: {}", base::join_command(spec.argv));
  try {
    return supervisor.start_background(spec);
  } catch (const base::SystemError& e) {
    throw base::SshdError(std::string("cannot start sshd (") + e.what() + "); install openssh-server or set --sshd");
  }
}

void
check_sshd(process::Supervisor& supervisor, pid_t sshd)
{
  if (!supervisor.background_running(sshd)) {
    throw base::SshdError("sshd exited (see its messages above)");
  }
}

// Wait until every worker accepts a real SSH login, with backoff from 50 ms.
void
wait_for_ssh_logins(const TrainPlan& plan, const PlanInputs& in, process::Supervisor& supervisor, pid_t sshd)
{
  const auto deadline = Clock::now() + in.options.ssh_timeout;
  std::vector<std::string> pending = plan.workers;
  std::map<std::string, std::string> last_error;
  auto delay = 50ms;
  const auto start = Clock::now();
  while (!pending.empty()) {
    // A login is tried only once the host's sshd greets us (cheap, in-process), then on
    // every such host at once.
    std::vector<std::string> greeting;
    std::vector<std::string> silent;
    for (const auto& host : pending) {
      if (port_answers(host, in.options.sshd_port, 500ms)) {
        greeting.push_back(host);
      } else {
        silent.push_back(host);
        last_error[host] = "nothing answers on port " + std::to_string(in.options.sshd_port);
      }
    }
    std::vector<process::ChildSpec> probes;
    for (const auto& host : greeting) {
      process::ChildSpec probe;
      probe.argv = ssh_argv(in, host, {"true"});
      probe.envp = in.inherited.to_envp();
      probe.output = process::OutputMode::capture;
      probe.timeout = 10s;
      probes.push_back(std::move(probe));
    }
    const std::vector<process::ChildResult> results = supervisor.run_all(probes);
    std::vector<std::string> still = silent;
    for (std::size_t i = 0; i < greeting.size(); ++i) {
      const process::ChildResult& r = results[i];
      if (r.stop_signal != 0) {
        throw base::StoppedError(r.stop_signal, "waiting for the workers' SSH logins");
      }
      if (r.exit_code != 0) {
        still.push_back(greeting[i]);
        last_error[greeting[i]] =
            r.exec_errno != 0 ? "cannot run ssh" : "ssh login failed (exit " + std::to_string(r.exit_code) + ")";
      }
    }
    pending = still;
    if (pending.empty()) {
      break;
    }
    check_sshd(supervisor, sshd);
    if (Clock::now() >= deadline) {
      std::string names;
      for (const auto& h : pending) {
        names += (names.empty() ? "" : ", ") + h + " (" + last_error[h] + ")";
      }
      throw base::HostUnreachableError("no SSH login within " + seconds_text(in.options.ssh_timeout) + " to: " + names);
    }
    if (const int sig = supervisor.sleep_for(delay)) {
      throw base::StoppedError(sig, "waiting for the workers' SSH logins");
    }
    delay = std::min(delay * 2, std::chrono::milliseconds(500));
  }
  spdlog::info("every worker answered over SSH after {:.2f} s",
               std::chrono::duration<double>(Clock::now() - start).count());
}

// Probes every worker's sshd port once a second while mpirun runs; a host that stays
// silent for --lost-host-timeout gets the job stopped and named.
class Watchdog
{
public:
  Watchdog(std::vector<std::string> hosts, int port, std::chrono::milliseconds limit)
      : m_hosts(std::move(hosts)), m_port(port), m_limit(limit)
  {
    if (!m_hosts.empty()) {
      m_thread = std::thread([this] { loop(); });
    }
  }
  ~Watchdog() { stop(); }

  void
  set_target(pid_t pgid)
  {
    m_target = pgid;
  }
  void
  stop()
  {
    {
      std::lock_guard<std::mutex> guard(m_lock);
      m_stop = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable()) {
      m_thread.join();
    }
  }
  std::string
  lost_host() const
  {
    std::lock_guard<std::mutex> guard(m_lock);
    return m_lost;
  }

private:
  void
  loop()
  {
    std::map<std::string, Clock::time_point> last_seen;
    for (const auto& h : m_hosts) {
      last_seen[h] = Clock::now();
    }
    std::unique_lock<std::mutex> lock(m_lock);
    while (!m_stop) {
      lock.unlock();
      for (const auto& h : m_hosts) {
        if (port_answers(h, m_port, 1s)) {
          last_seen[h] = Clock::now();
        } else if (Clock::now() - last_seen[h] > m_limit) {
          lock.lock();
          if (m_lost.empty()) {
            m_lost = h;
            const pid_t target = m_target.load();
            if (target > 0) {
              kill(-target, SIGTERM);
            }
            m_kill_at = Clock::now() + 5s;
          }
          lock.unlock();
        }
      }
      lock.lock();
      if (!m_lost.empty() && Clock::now() >= m_kill_at && m_target.load() > 0) {
        kill(-m_target.load(), SIGKILL); // mpirun did not stop on SIGTERM
      }
      m_wake.wait_for(lock, 1s, [this] { return m_stop; });
    }
  }

  std::vector<std::string> m_hosts;
  int m_port;
  std::chrono::milliseconds m_limit;
  std::atomic<pid_t> m_target{0};
  mutable std::mutex m_lock;
  std::condition_variable m_wake;
  bool m_stop = false;
  std::string m_lost;
  Clock::time_point m_kill_at{};
  std::thread m_thread;
};

void
notify_workers(const TrainPlan& plan, const PlanInputs& in, process::Supervisor& supervisor, int code,
               const std::string& message, const std::string& skip)
{
  // Every worker at once: the job ends when the last one knows.
  std::vector<std::string> hosts;
  std::vector<process::ChildSpec> calls;
  const std::string remote = base::shell_quote(in.smlaunch_exe) + " job-ended --exit-code " + std::to_string(code) +
                             " --message " + base::shell_quote(message.substr(0, 2048));
  for (const auto& host : plan.workers) {
    if (host == skip) {
      continue;
    }
    process::ChildSpec spec;
    spec.argv = ssh_argv(in, host, {remote});
    spec.envp = in.inherited.to_envp();
    spec.output = process::OutputMode::capture;
    spec.timeout = 15s;
    hosts.push_back(host);
    calls.push_back(std::move(spec));
  }
  const std::vector<process::ChildResult> results = supervisor.run_all(calls);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].exit_code != 0) {
      spdlog::warn("could not tell {} that the job ended (ssh exited with {}); it will stop when it loses the master",
                   hosts[i], results[i].exit_code);
    }
  }
}

// End the shared ssh connections (ControlPersist would keep them a minute).
void
close_shared_connections(const TrainPlan& plan, const PlanInputs& in, process::Supervisor& supervisor)
{
  if (ssh_connection_sharing(in.paths).empty()) {
    return;
  }
  std::vector<process::ChildSpec> calls;
  for (const auto& host : plan.workers) {
    process::ChildSpec spec;
    spec.argv = ssh_argv(in, host, {});
    spec.argv.insert(spec.argv.end() - 1, {"-O", "exit"});
    spec.envp = in.inherited.to_envp();
    spec.output = process::OutputMode::capture;
    spec.timeout = 5s;
    calls.push_back(std::move(spec));
  }
  supervisor.run_all(calls);
}

} // namespace

bool
port_answers(const std::string& host, int port, std::chrono::milliseconds timeout)
{
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &addresses) != 0) {
    return false;
  }
  bool ok = false;
  for (addrinfo* a = addresses; a != nullptr && !ok; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      continue;
    }
    bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    if (!connected && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        connected = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
      }
    }
    if (connected) {
      // An SSH server speaks first ("SSH-2.0-..."): its banner proves sshd itself answers.
      // Answering with our own identification lets it log a quiet disconnect.
      pollfd p{fd, POLLIN, 0};
      char banner[64] = {0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && ::read(fd, banner, sizeof(banner) - 1) >= 4 &&
          std::string_view(banner).starts_with("SSH-")) {
        ok = true;
        static const char hello[] = "SSH-2.0-smlaunch_probe\r\n";
        [[maybe_unused]] const auto n = ::write(fd, hello, sizeof(hello) - 1);
      }
    }
    ::close(fd);
  }
  freeaddrinfo(addresses);
  return ok;
}

int
run_mpi_master(const TrainPlan& plan, const PlanInputs& in, process::Supervisor& supervisor,
               process::OutcomeFiles& outcome)
{
  write_host_state(in.paths.base, HostState{in.inherited, plan.environment.machine});
  pid_t sshd = -1;
  if (!plan.workers.empty()) {
    sshd = start_sshd(in, supervisor);
  }
  const std::string command = base::join_command(plan.mpirun->argv);
  int code = 0;
  std::string error_class = plan.mpirun->error_class;
  std::string message;
  std::string lost;
  try {
    if (!plan.workers.empty()) {
      wait_for_ssh_logins(plan, in, supervisor, sshd);
    }
    Watchdog watchdog(plan.workers, in.options.sshd_port, in.options.lost_host_timeout);
    process::ChildSpec spec;
    spec.argv = plan.mpirun->argv;
    spec.envp = plan.mpirun->env.to_envp();
    spec.cwd = plan.mpirun->cwd;
    spec.on_start = [&watchdog](pid_t pid) { watchdog.set_target(pid); };
    // SIGTERM reaches the ranks' programs through their rank steps, with the whole grace
    // period; mpirun gets SIGTERM only when it ends.
    spec.term_as = mpi::k_rank_stop_signal;
    log_invocation("mpirun", command, plan.script.env);
    const process::ChildResult r = supervisor.run(spec);
    watchdog.stop();
    lost = watchdog.lost_host();
    code = r.exit_code;
    if (!lost.empty()) {
      code = base::to_int(base::ExitCode::cluster);
      error_class = "HostLostError";
      message = "lost host " + lost + ": it stopped answering on port " + std::to_string(in.options.sshd_port) +
                " for more than " + seconds_text(in.options.lost_host_timeout) + " during the job";
    } else if (code != 0) {
      message = process::describe_script_failure(r, plan.mpirun->argv[0],
                                                 std::chrono::duration<double>(in.options.grace_period).count());
    } else {
      spdlog::info("mpirun succeeded in {:.1f} s", r.seconds);
    }
  } catch (const base::LauncherError& e) {
    code = e.exit_code();
    error_class = e.error_class();
    message = e.what();
  }
  spdlog::debug("telling {} worker(s) the outcome ({})", plan.workers.size(), code);
  notify_workers(plan, in, supervisor, code, code == 0 ? "" : error_class + ": " + message, lost);
  spdlog::debug("workers told");
  close_shared_connections(plan, in, supervisor);
  if (sshd > 0) {
    supervisor.stop_background(sshd, 2s);
  }
  spdlog::debug("sshd stopped");
  return process::record_outcome(outcome, code, error_class, message, command, plan.script.env);
}

int
run_mpi_worker(const TrainPlan& plan, const PlanInputs& in, process::Supervisor& supervisor,
               process::OutcomeFiles& outcome)
{
  write_host_state(in.paths.base, HostState{in.inherited, plan.environment.machine});
  ::unlink(job_outcome_path(in.paths.base).c_str()); // a previous run's
  const pid_t sshd = start_sshd(in, supervisor);
  const std::string& master = plan.mpi.master;
  const std::string what = "MPI worker of " + master;
  spdlog::info("worker: waiting for the master {} to run the job", master);

  const auto start = Clock::now();
  std::optional<Clock::time_point> last_seen;
  auto next_probe = start;
  int code = 0;
  std::string error_class = "ExecuteUserScriptError";
  std::string message;
  while (true) {
    if (const auto job = read_job_outcome(in.paths.base)) {
      code = job->exit_code;
      message = job->message.empty() ? "" : "the job failed on the master " + master + ": " + job->message;
      break;
    }
    if (!supervisor.background_running(sshd)) {
      code = base::to_int(base::ExitCode::cluster);
      error_class = "SshdError";
      message = "sshd exited (see its messages above); the master cannot reach this host";
      break;
    }
    const auto now = Clock::now();
    if (now >= next_probe) {
      if (port_answers(master, in.options.sshd_port, 1s)) {
        last_seen = Clock::now();
      } else if (!last_seen && now - start > in.options.ssh_timeout) {
        code = base::to_int(base::ExitCode::cluster);
        error_class = "HostUnreachableError";
        message = "the master " + master + " never answered on port " + std::to_string(in.options.sshd_port) +
                  " within " + seconds_text(in.options.ssh_timeout);
        break;
      } else if (last_seen && now - *last_seen > in.options.lost_host_timeout) {
        code = base::to_int(base::ExitCode::cluster);
        error_class = "HostLostError";
        message = "lost the master " + master + ": no answer on port " + std::to_string(in.options.sshd_port) +
                  " for more than " + seconds_text(in.options.lost_host_timeout);
        break;
      }
      next_probe = Clock::now() + 1s;
    }
    if (const int sig = supervisor.sleep_for(50ms)) {
      const base::StoppedError stop(sig, "waiting for the master");
      code = stop.exit_code();
      error_class = stop.error_class();
      message = stop.what();
      break;
    }
  }
  spdlog::debug("worker: outcome {}", code);
  supervisor.stop_background(sshd, 2s);
  spdlog::debug("worker: sshd stopped");
  if (code == 0) {
    spdlog::info("the master reported success");
  }
  return process::record_outcome(outcome, code, error_class, message, what, plan.script.env);
}

} // namespace launcher
