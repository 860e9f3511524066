#include "process/supervisor.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "process/executables.hpp"
#include "process/output_relay.hpp"
#include "process/rank_relay.hpp"
#include "process/relay_wait.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <linux/close_range.h>
#include <memory>
#include <optional>
#include <poll.h>
#include <sched.h>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <system_error>
#include <termios.h>
#include <thread>
#include <unistd.h>

namespace process {

namespace {

using Clock = std::chrono::steady_clock;

// Forwarded to the child's process group; the first four also start the grace period
// when they stop a job (TERM/INT) or simply pass through (HUP/QUIT).
constexpr int k_forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

bool
is_stop_signal(int sig)
{
  return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
}

std::string
exec_path_for(const std::string& name, const std::vector<std::string>& envp)
{
  std::string path = k_default_path;
  for (const auto& entry : envp) {
    if (entry.rfind("PATH=", 0) == 0) {
      path = entry.substr(5);
    }
  }
  return find_executable(name, path).value_or(name); // execve then fails with ENOENT
}

// The child writes errno to the exec status pipe when exec fails; exec closes it (O_CLOEXEC)
// when it succeeds. Returns that errno, or 0; closes `fd`.
int
read_exec_errno(int fd)
{
  int err = 0;
  ssize_t got = 0;
  do {
    got = ::read(fd, &err, sizeof(err));
  } while (got < 0 && errno == EINTR);
  ::close(fd);
  return got == static_cast<ssize_t>(sizeof(err)) ? err : 0;
}

// Async-signal-safe: called between fork and exec.
bool
looks_binary(const char* path)
{
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  unsigned char head[256];
  const ssize_t n = ::read(fd, head, sizeof(head));
  ::close(fd);
  if (n >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F') {
    return true;
  }
  for (ssize_t i = 0; i < n; ++i) {
    if (head[i] == 0) {
      return true;
    }
  }
  return false;
}

bool
same_open_file(int a, int b)
{
  struct stat sa
  {
  };
  struct stat sb
  {
  };
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int
make_pipe(int fds[2])
{
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw base::SystemError("pipe2", "output pipe", errno);
  }
  // A larger pipe means fewer wake-ups for a chatty script (best effort).
  ::fcntl(fds[1], F_SETPIPE_SZ, 1024 * 1024);
  return 0;
}

// A pseudo-terminal for the script when the launcher's stderr is a terminal (a developer's
// shell, `docker run -t`, the SageMaker SDK's local mode, whose compose file sets tty):
// the script still sees a terminal (isatty(), colours, progress bars, the same size and
// modes), but its output passes through the launcher, which relays it to the real terminal
// and keeps the tail that explains a failure. ONLCR is left to the real terminal, so the
// tail holds the script's own bytes. Returns false (hand the terminal over as it is) when
// no pseudo-terminal can be had.
bool
open_relay_terminal(int terminal_fd, int fds[2])
{
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) {
    return false;
  }
  std::array<char, 64> name{};
  const bool named =
      ::grantpt(master) == 0 && ::unlockpt(master) == 0 && ::ptsname_r(master, name.data(), name.size()) == 0;
  const int slave = named ? ::open(name.data(), O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
  if (slave < 0) {
    ::close(master);
    return false;
  }
  termios modes{};
  if (::tcgetattr(terminal_fd, &modes) == 0) {
    modes.c_oflag &= ~static_cast<tcflag_t>(ONLCR);
    ::tcsetattr(slave, TCSANOW, &modes);
  }
  winsize size{};
  if (::ioctl(terminal_fd, TIOCGWINSZ, &size) == 0) {
    ::ioctl(slave, TIOCSWINSZ, &size);
  }
  fds[0] = master;
  fds[1] = slave;
  return true;
}

// What the child does between fork and exec, prepared by the parent: only
// async-signal-safe calls on memory the parent keeps alive.
struct ChildSetup
{
  const char* exec_path = nullptr;
  char* const* argv = nullptr;
  char* const* sh_argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr; // nullptr: stay
  int child_stdout = STDOUT_FILENO;
  int child_stderr = STDERR_FILENO;
  int exec_error_fd = -1;
  bool background = false; // sshd and the like: no terminal foreground
  bool stdin_null = false;
  int only_inherited_fd = -1; // >= 0: every other descriptor above 2 is closed at exec
  int max_fd = 0;             // the fallback's bound without close_range (Linux < 5.11)
  pid_t parent = 0;
  const sigset_t* original_mask = nullptr;
  const struct sigaction* original_ttin = nullptr;
  const struct sigaction* original_ttou = nullptr;
  const struct sigaction* original_pipe = nullptr;
};

// Marks every descriptor above stderr but `keep` close-on-exec (the exec status pipe is
// already, and stays usable until exec).
void
cloexec_all_but(int keep, int max_fd)
{
  const auto mark = [max_fd](unsigned first, unsigned last) {
    if (first > last) {
      return;
    }
    if (::close_range(first, last, CLOSE_RANGE_CLOEXEC) == 0) {
      return;
    }
    for (unsigned fd = first; fd <= last && fd < static_cast<unsigned>(max_fd); ++fd) {
      const int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
      if (flags >= 0) {
        ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
      }
    }
  };
  if (keep <= STDERR_FILENO) {
    mark(STDERR_FILENO + 1, ~0U);
    return;
  }
  mark(STDERR_FILENO + 1, static_cast<unsigned>(keep) - 1);
  mark(static_cast<unsigned>(keep) + 1, ~0U);
}

// Child: its own process group, the caller's signal state, then exec. Never returns.
[[noreturn]] void
child_after_fork(const ChildSetup& c)
{
  setpgid(0, 0);
  // Every child dies with the launcher, also when something SIGKILLs it (a test harness,
  // `smlaunch local`, a developer's shell): checked against the race where the launcher
  // died before the prctl.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != c.parent) {
    _exit(1);
  }
  if (!c.background && isatty(STDIN_FILENO) != 0) {
    tcsetpgrp(STDIN_FILENO, getpid());
  }
  if (c.stdin_null) {
    const int null_in = ::open("/dev/null", O_RDONLY);
    if (null_in >= 0 && null_in != STDIN_FILENO) {
      dup2(null_in, STDIN_FILENO);
      ::close(null_in);
    }
  }
  if (c.child_stdout != STDOUT_FILENO) {
    dup2(c.child_stdout, STDOUT_FILENO);
  }
  if (c.child_stderr != STDERR_FILENO) {
    dup2(c.child_stderr, STDERR_FILENO);
  }
  if (c.only_inherited_fd >= 0) {
    cloexec_all_but(c.only_inherited_fd, c.max_fd);
  }
  int err = 0;
  if (c.cwd != nullptr && chdir(c.cwd) != 0) {
    err = errno;
  } else {
    sigaction(SIGTTIN, c.original_ttin, nullptr);
    sigaction(SIGTTOU, c.original_ttou, nullptr);
    sigaction(SIGPIPE, c.original_pipe, nullptr);
    sigprocmask(SIG_SETMASK, c.original_mask, nullptr); // NOLINT(concurrency-mt-unsafe): the child: one thread
    execve(c.exec_path, c.argv, c.envp);
    err = errno;
    // No shebang: a text file runs with /bin/sh (as execvp() does); a binary the kernel
    // refuses stays an error (126), as in bash.
    if (err == ENOEXEC && !looks_binary(c.exec_path)) {
      execve("/bin/sh", c.sh_argv, c.envp);
      err = errno;
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr); // NOLINT(concurrency-mt-unsafe): the child: one thread
  }
  if (c.exec_error_fd >= 0) {
    [[maybe_unused]] const auto n = ::write(c.exec_error_fd, &err, sizeof(err));
  }
  _exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SMLAUNCH_FORK_CHILDREN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define SMLAUNCH_FORK_CHILDREN 1
#endif
#endif

#if defined(SMLAUNCH_FORK_CHILDREN)
// The sanitizers do not follow a child that shares the parent's memory: fork.
pid_t
start_child(const ChildSetup& setup)
{
  const pid_t pid = fork();
  if (pid == 0) {
    child_after_fork(setup);
  }
  return pid;
}
#else
int
child_entry(void* setup)
{
  child_after_fork(*static_cast<const ChildSetup*>(setup));
}

// The child shares the parent's memory until it execs (CLONE_VM | CLONE_VFORK, as
// posix_spawn does), so no page table is copied and no page is copied on write afterwards:
// fork() of the launcher was a third of its own start-up cost. The parent's signals are all
// blocked (the supervisor collects them through a signalfd), so no handler can run on the
// child's stack; the child gets its own copy of the dispositions (no CLONE_SIGHAND).
pid_t
start_child(const ChildSetup& setup)
{
  // The child's own stack while it shares our memory; the parent waits (CLONE_VFORK) until
  // the child has exec'd or exited, so the buffer outlives every use.
  constexpr std::size_t k_stack_size = 64 * 1024;
  const std::unique_ptr<char[]> stack(new char[k_stack_size]); // NOLINT(cppcoreguidelines-avoid-c-arrays)
  return ::clone(child_entry, stack.get() + k_stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD,
                 const_cast<ChildSetup*>(&setup)); // NOLINT(cppcoreguidelines-pro-type-const-cast)
}
#endif

double
seconds_since(Clock::time_point start)
{
  return std::chrono::duration<double>(Clock::now() - start).count();
}

} // namespace

namespace {

// Deliver `sig` to the group of every child of run_all()/run_together() still running; a
// stop signal is recorded on its result.
template <typename Running>
void
forward_to_running(int sig, const std::vector<Running>& running, std::vector<ChildResult>& results)
{
  for (std::size_t i = 0; i < running.size(); ++i) {
    if (!running[i].exited) {
      kill(-running[i].pid, sig);
      if (is_stop_signal(sig) && results[i].stop_signal == 0) {
        results[i].stop_signal = sig;
      }
    }
  }
}

} // namespace

ExitStatus
decode_wait_status(int status)
{
  if (WIFEXITED(status)) {
    return {WEXITSTATUS(status), 0};
  }
  if (WIFSIGNALED(status)) {
    return {128 + WTERMSIG(status), WTERMSIG(status)};
  }
  return {};
}

Supervisor::Supervisor(Options options) : m_options(options)
{
  // Block everything but the synchronous faults, as tini does: a blocked signal stays
  // pending until wait_signal collects it, even for PID 1.
  sigset_t all;
  sigfillset(&all);
  for (int sig : {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU}) {
    sigdelset(&all, sig);
  }
  pthread_sigmask(SIG_SETMASK, &all, &m_original_mask);

  // Being in the background must not stop the launcher when it touches the terminal.
  struct sigaction ignore
  {
  };
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGTTIN, &ignore, &m_original_ttin);
  sigaction(SIGTTOU, &ignore, &m_original_ttou);
  // A closed output (`smlaunch train | head -1`) must not kill the launcher after the job
  // succeeded: writes get EPIPE instead, for the launcher's whole life (not restored by
  // the destructor). Children get the caller's disposition back.
  sigaction(SIGPIPE, &ignore, &m_original_pipe);

  sigemptyset(&m_wait_set);
  sigaddset(&m_wait_set, SIGCHLD);
  for (int sig : k_forwarded) {
    sigaddset(&m_wait_set, sig);
  }
  if (m_options.term_alias > 0) {
    sigaddset(&m_wait_set, m_options.term_alias);
  }
  m_signal_fd = signalfd(-1, &m_wait_set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (m_signal_fd < 0) {
    const int err = errno;
    pthread_sigmask(SIG_SETMASK, &m_original_mask, nullptr);
    throw std::system_error(err, std::system_category(), "cannot create the signalfd that collects signals");
  }

  if (getpid() == 1 || prctl(PR_SET_CHILD_SUBREAPER, 1) == 0) {
    m_reaps_orphans = true;
  } else {
    spdlog::warn("not PID 1 and could not become a child subreaper ({}): orphaned processes will not be "
                 "reaped; run smlaunch as the container's entry point or on Linux >= 3.4",
                 std::system_category().message(errno));
  }
}

namespace {

// Every live process whose parent chain reaches `root`, read from /proc (zombies are left
// to reap()). As subreaper or PID 1, a descendant whose parent died is re-parented to us,
// so a daemon that called setsid() is still found.
std::vector<pid_t>
live_descendants_of(pid_t root)
{
  std::vector<std::pair<pid_t, pid_t>> parent_of; // (pid, ppid) of every live process
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] < '1' || name[0] > '9') {
      continue;
    }
    std::ifstream in("/proc/" + name + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos || close_paren + 4 >= stat.size()) {
      continue;
    }
    const char state = stat[close_paren + 2];
    if (state == 'Z' || state == 'X') {
      continue;
    }
    const auto ppid = static_cast<pid_t>(std::strtol(stat.c_str() + close_paren + 4, nullptr, 10));
    parent_of.emplace_back(static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10)), ppid);
  }
  std::vector<pid_t> found = {root};
  for (std::size_t i = 0; i < found.size(); ++i) {
    for (const auto& [pid, ppid] : parent_of) {
      if (ppid == found[i]) {
        found.push_back(pid);
      }
    }
  }
  found.erase(found.begin());
  return found;
}

} // namespace

int
Supervisor::end_descendants(std::chrono::milliseconds grace)
{
  // As subreaper (or PID 1) every descendant is a child or below one: with no child at
  // all, nothing can be alive, and the scan of /proc (a few hundred microseconds on a busy
  // machine) is skipped. WNOWAIT leaves a zombie for reap().
  siginfo_t info{};
  if (m_reaps_orphans && waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD) {
    return 0;
  }
  std::vector<pid_t> alive = live_descendants_of(getpid());
  const int signalled = static_cast<int>(alive.size());
  if (alive.empty()) {
    return 0;
  }
  spdlog::debug("{} process(es) of the job still alive at its end: sending SIGTERM", alive.size());
  for (const pid_t pid : alive) {
    kill(pid, SIGTERM);
  }
  int orphans = 0;
  const auto deadline = Clock::now() + grace;
  while (!alive.empty() && Clock::now() < deadline) {
    const int sig = wait_signal(std::chrono::milliseconds(20));
    keep_signal(sig, -1);
    reap({}, orphans);
    alive = live_descendants_of(getpid());
    if (is_stop_signal(sig)) {
      break; // a further stop signal: no more waiting
    }
  }
  if (!alive.empty()) {
    spdlog::debug("{} process(es) of the job ignored SIGTERM: sending SIGKILL", alive.size());
    for (const pid_t pid : alive) {
      kill(pid, SIGKILL);
    }
    const auto kill_deadline = Clock::now() + std::chrono::seconds(2);
    while (!alive.empty() && Clock::now() < kill_deadline) {
      keep_signal(wait_signal(std::chrono::milliseconds(10)), -1);
      reap({}, orphans);
      alive = live_descendants_of(getpid());
    }
  }
  reap({}, orphans);
  return signalled;
}

Supervisor::~Supervisor()
{
  // One end of life for every command (train, local, serve, a rank): whatever the job
  // started and left running, in its process group or not, ends with it.
  if (m_spawned) {
    try {
      end_descendants(std::chrono::seconds(2));
    } catch (...) { // NOLINT(bugprone-empty-catch): a destructor must not throw
    }
  }
  if (m_signal_fd >= 0) {
    ::close(m_signal_fd);
  }
  sigaction(SIGTTIN, &m_original_ttin, nullptr);
  sigaction(SIGTTOU, &m_original_ttou, nullptr);
  pthread_sigmask(SIG_SETMASK, &m_original_mask, nullptr);
}

int
Supervisor::wait_signal(std::chrono::milliseconds timeout, int fd)
{
  // The wait set is blocked: a pending signal makes m_signal_fd readable and is collected by
  // reading it.
  pollfd fds[2] = {{m_signal_fd, POLLIN, 0}, {fd, POLLIN, 0}};
  const auto timeout_ms = std::clamp<long long>(timeout.count(), 0, std::numeric_limits<int>::max());
  const int ready = ::poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(timeout_ms));
  if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
    signalfd_siginfo info{};
    if (::read(m_signal_fd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      const int sig = static_cast<int>(info.ssi_signo);
      return sig == m_options.term_alias ? SIGTERM : sig;
    }
  }
  if (ready > 0 && fd >= 0 && fds[1].revents != 0) {
    return hung_up_without_data(fds[1].revents) ? k_fd_hung_up : k_fd_readable;
  }
  return 0; // the timeout (EINTR cannot happen: no handler runs)
}

// The only waitpid() of the launcher: every exited child is reaped here. A child the
// caller runs goes to `claim` (which returns true for its own), a background one (sshd) is
// remembered, any other is an orphan we reaped as PID 1 or subreaper.
void
Supervisor::reap(const std::function<bool(pid_t, int)>& claim, int& orphans)
{
  for (int n = 0; n < 1 << 16; ++n) {
    int st = 0;
    const pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) {
      return; // 0: children left but none exited; -1/ECHILD: no children at all
    }
    if (claim && claim(pid, st)) {
      continue;
    }
    if (std::find(m_background.begin(), m_background.end(), pid) != m_background.end()) {
      m_background_exited.push_back(pid);
    } else {
      ++orphans;
    }
  }
}

int
Supervisor::keep_signal(int sig, pid_t group)
{
  if (sig == 0 || sig == SIGCHLD) {
    return 0;
  }
  if (group > 0) {
    kill(-group, sig);
  }
  if (is_stop_signal(sig)) {
    if (m_pending_stop == 0) {
      m_pending_stop = sig;
    }
    return sig;
  }
  return 0;
}

int
Supervisor::end_process_group(pid_t pgid, int& orphans)
{
  // The main child is gone; whatever it left in its group is stopped too, politely first.
  // A signal that arrives meanwhile is kept (a stop signal stops the job), not dropped.
  int stop = 0;
  const auto keep = [&](int sig) {
    if (const int s = keep_signal(sig, pgid); s != 0 && stop == 0) {
      stop = s;
    }
  };
  if (kill(-pgid, 0) != 0) {
    return stop;
  }
  spdlog::debug("processes left in group {}: sending SIGTERM", pgid);
  kill(-pgid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (kill(-pgid, 0) == 0 && Clock::now() < deadline) {
    keep(wait_signal(std::chrono::milliseconds(20)));
    reap({}, orphans);
  }
  if (kill(-pgid, 0) == 0) {
    spdlog::debug("processes left in group {}: sending SIGKILL", pgid);
    kill(-pgid, SIGKILL);
    const auto kill_deadline = Clock::now() + std::chrono::seconds(2);
    while (kill(-pgid, 0) == 0 && Clock::now() < kill_deadline) {
      keep(wait_signal(std::chrono::milliseconds(10)));
      reap({}, orphans);
    }
  }
  return stop;
}

pid_t
Supervisor::spawn(const ChildSpec& spec, int child_stdout, int child_stderr, int exec_error_fd, bool background)
{
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls are allowed.
  const std::string exec_path = exec_path_for(spec.argv.at(0), spec.envp);
  std::vector<char*> argv;
  for (const auto& a : spec.argv) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  // ENOEXEC (no shebang): run it with /bin/sh, as execvp() and shells do.
  std::vector<char*> sh_argv;
  sh_argv.push_back(const_cast<char*>("/bin/sh"));
  sh_argv.push_back(const_cast<char*>(exec_path.c_str()));
  for (std::size_t i = 1; i < spec.argv.size(); ++i) {
    sh_argv.push_back(const_cast<char*>(spec.argv[i].c_str()));
  }
  sh_argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.envp) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  ChildSetup setup;
  setup.exec_path = exec_path.c_str();
  setup.argv = argv.data();
  setup.sh_argv = sh_argv.data();
  setup.envp = envp.data();
  setup.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  setup.child_stdout = child_stdout;
  setup.child_stderr = child_stderr;
  setup.exec_error_fd = exec_error_fd;
  setup.background = background;
  setup.stdin_null = spec.stdin_null;
  setup.only_inherited_fd = spec.only_inherited_fd;
  if (spec.only_inherited_fd >= 0) {
    rlimit limit{};
    setup.max_fd = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (1U << 20)
                       ? static_cast<int>(limit.rlim_cur)
                       : 1 << 20;
  }
  setup.parent = getpid();
  setup.original_mask = &m_original_mask;
  setup.original_ttin = &m_original_ttin;
  setup.original_ttou = &m_original_ttou;
  setup.original_pipe = &m_original_pipe;

  m_spawned = true;
  const pid_t pid = start_child(setup);
  if (pid < 0) {
    throw base::SystemError("fork", spec.argv[0], errno);
  }
  // Set the group here too, so a signal sent right away reaches the group.
  setpgid(pid, pid);
  return pid;
}

pid_t
Supervisor::start_background(const ChildSpec& spec)
{
  int exec_error_pipe[2];
  if (::pipe2(exec_error_pipe, O_CLOEXEC) != 0) {
    throw base::SystemError("pipe2", "exec status pipe", errno);
  }
  const pid_t pid = spawn(spec, STDOUT_FILENO, STDERR_FILENO, exec_error_pipe[1], true);
  ::close(exec_error_pipe[1]);
  std::erase(m_background_exited, pid); // a reused pid is a new, running child
  m_background.push_back(pid);
  if (const int exec_errno = read_exec_errno(exec_error_pipe[0]); exec_errno != 0) {
    throw base::SystemError("execve", spec.argv[0], exec_errno);
  }
  return pid;
}

bool
Supervisor::background_running(pid_t pid)
{
  int orphans = 0;
  reap({}, orphans);
  return std::find(m_background_exited.begin(), m_background_exited.end(), pid) == m_background_exited.end();
}

void
Supervisor::stop_background(pid_t pid, std::chrono::milliseconds grace)
{
  if (!background_running(pid)) {
    return;
  }
  kill(-pid, SIGTERM);
  const auto deadline = Clock::now() + grace;
  while (background_running(pid) && Clock::now() < deadline) {
    keep_signal(wait_signal(std::chrono::milliseconds(10)), -1);
  }
  if (background_running(pid)) {
    kill(-pid, SIGKILL);
    const auto kill_deadline = Clock::now() + std::chrono::seconds(2);
    while (background_running(pid) && Clock::now() < kill_deadline) {
      keep_signal(wait_signal(std::chrono::milliseconds(10)), -1);
    }
  }
}

namespace {

// Where one run()'s child writes, and what relays it: see README "Output". A terminal
// becomes a pseudo-terminal of the launcher's (open_relay_terminal), so progress bars still
// see a TTY and a failure still has its reason.
struct OutputPlumbing
{
  int out_pipe[2] = {-1, -1};
  int line_pipes[2][2] = {{-1, -1}, {-1, -1}};
  int child_stdout = STDOUT_FILENO;
  int child_stderr = STDERR_FILENO;
  int relay_to = STDERR_FILENO;
  int dev_null = -1;
  bool relay = true;
  bool terminal = false;
};

OutputPlumbing
plan_output(OutputMode mode)
{
  OutputPlumbing p;
  if (mode == OutputMode::lines) {
    make_pipe(p.line_pipes[0]);
    make_pipe(p.line_pipes[1]);
    p.child_stdout = p.line_pipes[0][1];
    p.child_stderr = p.line_pipes[1][1];
    p.relay = false;
  } else if (mode == OutputMode::capture) {
    make_pipe(p.out_pipe);
    p.child_stdout = p.out_pipe[1];
    p.child_stderr = -1; // /dev/null
    p.relay_to = -1;
  } else if (isatty(STDERR_FILENO) != 0) {
    if (open_relay_terminal(STDERR_FILENO, p.out_pipe)) {
      p.terminal = true;
      p.child_stderr = p.out_pipe[1];
      if (same_open_file(STDOUT_FILENO, STDERR_FILENO)) {
        p.child_stdout = p.out_pipe[1];
      }
    } else {
      p.relay = false;
    }
  } else {
    make_pipe(p.out_pipe);
    p.child_stderr = p.out_pipe[1];
    if (same_open_file(STDOUT_FILENO, STDERR_FILENO)) {
      // One destination: one pipe for both keeps their interleaving exact.
      p.child_stdout = p.out_pipe[1];
      p.relay_to = STDOUT_FILENO;
    }
  }
  if (p.child_stderr < 0) {
    p.dev_null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    p.child_stderr = p.dev_null;
  }
  return p;
}

// The relays of a started child, reading the parent's ends of its pipes.
struct Relays
{
  std::unique_ptr<LineRelay> lines;
  std::unique_ptr<OutputRelay> output;
};

Relays
start_relays(OutputPlumbing& p, OutputMode mode, std::size_t tail_bytes)
{
  Relays relays;
  if (mode == OutputMode::lines) {
    ::close(p.line_pipes[0][1]);
    ::close(p.line_pipes[1][1]);
    relays.lines = std::make_unique<LineRelay>(p.line_pipes[0][0], p.line_pipes[1][0]);
    relays.lines->start();
  }
  if (p.out_pipe[0] >= 0) {
    ::close(p.out_pipe[1]);
    if (p.relay || mode == OutputMode::capture) {
      const std::size_t keep = mode == OutputMode::capture ? 4 * 1024 * 1024 : tail_bytes;
      relays.output = std::make_unique<OutputRelay>(p.out_pipe[0], p.relay_to, keep); // started by wait_for_main
    }
  }
  if (p.dev_null >= 0) {
    ::close(p.dev_null);
  }
  return relays;
}

// How far a child's shutdown has gone (torchrun's state machine): running until a stop
// signal (TERM/INT) is forwarded, then a grace period until its deadline, then SIGKILL
// (a ChildSpec::term_as child: terminated, SIGTERM, in between). A second SIGINT goes
// straight to killed.
enum class Shutdown { running, grace, terminated, killed };

// `sig` to the child's process group, or to the child alone when it has no group of its own.
void
signal_group(pid_t pid, int sig)
{
  if (kill(-pid, sig) != 0 && errno == ESRCH) {
    kill(pid, sig);
  }
}

// The grace period (or term_as's SIGTERM time) is over: SIGKILL to the group, or first
// SIGTERM to a term_as child, with SIGKILL k_term_to_kill later.
void
end_grace(pid_t pid, const ChildSpec& spec, std::chrono::milliseconds grace, Shutdown& shutdown,
          Clock::time_point& kill_deadline, ChildResult& result)
{
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(grace).count();
  if (shutdown == Shutdown::grace && spec.term_as > 0) {
    spdlog::warn("the job did not end within the {} s grace period after {}: sending SIGTERM, SIGKILL in {} s", seconds,
                 base::signal_name(result.stop_signal), k_term_to_kill.count());
    kill(-pid, SIGTERM);
    shutdown = Shutdown::terminated;
    result.terminated_after_grace = true;
    kill_deadline = Clock::now() + k_term_to_kill;
    return;
  }
  spdlog::warn("the script did not exit within the {} s grace period after {}: sending SIGKILL", seconds,
               base::signal_name(result.stop_signal));
  kill(-pid, SIGKILL);
  shutdown = Shutdown::killed;
  result.killed_after_grace = true;
}

} // namespace

int
Supervisor::wait_for_main(pid_t pid, const ChildSpec& spec, Clock::time_point start, int terminal_fd,
                          OutputRelay* relay, ChildResult& result)
{
  bool main_exited = false;
  int status = 0;
  Shutdown shutdown = Shutdown::running;
  Clock::time_point kill_deadline;
  const bool has_timeout = spec.timeout.count() > 0; // probes: SIGKILL at start + timeout
  const Clock::time_point timeout_deadline = start + spec.timeout;
  int sigint_count = 0;
  bool output_hung_up = false;
  const auto claim_main = [&](pid_t exited, int st) {
    if (exited != pid) {
      return false;
    }
    main_exited = true;
    status = st;
    return true;
  };
  const auto kill_now = [&] {
    kill(-pid, SIGKILL);
    shutdown = Shutdown::killed;
    result.killed_after_grace = true;
  };
  while (true) {
    reap(claim_main, result.orphans_reaped);
    if (main_exited) {
      return status;
    }
    const auto now = Clock::now();
    const bool deadline_set = shutdown == Shutdown::grace || shutdown == Shutdown::terminated;
    if (deadline_set && now >= kill_deadline) {
      end_grace(pid, spec, m_options.grace_period, shutdown, kill_deadline, result);
    }
    if (has_timeout && now >= timeout_deadline && !result.timed_out) {
      kill(-pid, SIGKILL);
      result.timed_out = true;
    }
    auto wait = std::chrono::milliseconds(1000);
    const auto until = [&](Clock::time_point deadline) {
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                                std::chrono::milliseconds(1));
    };
    if (deadline_set) {
      until(kill_deadline);
    }
    if (has_timeout && !result.timed_out) {
      until(timeout_deadline);
    }
    const bool relay_waiting = relay != nullptr && !relay->started() && !output_hung_up;
    const int sig = wait_signal(wait, relay_waiting ? relay->pipe_fd() : -1);
    if (sig == k_fd_readable) {
      relay->start(); // the child wrote: relay it from the relay's own thread from now on
      continue;
    }
    if (sig == k_fd_hung_up) {
      // The child closed its output without writing (a silent script exiting): nothing to
      // relay, ever; wait for its SIGCHLD alone.
      output_hung_up = true;
      continue;
    }
    if (sig == 0 || sig == SIGCHLD) {
      continue;
    }
    if (sig == SIGWINCH && terminal_fd >= 0) {
      // The real terminal was resized: the script's pseudo-terminal takes its new size.
      winsize size{};
      if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0) {
        ::ioctl(terminal_fd, TIOCSWINSZ, &size);
      }
    }
    const int sent = sig == SIGTERM && spec.term_as > 0 ? spec.term_as : sig;
    spdlog::info("forwarding {} to the child's process group{}", base::signal_name(sig),
                 sent == sig ? "" : " as " + base::signal_name(sent));
    signal_group(pid, sent);
    if (is_stop_signal(sig)) {
      // A stopped script (SIGSTOP, a suspended job) would only act on the signal once
      // continued, so it spent its whole grace period frozen and got SIGKILL without the
      // chance to checkpoint: continue the group, as systemd does after its stop signal.
      signal_group(pid, SIGCONT);
    }
    if (sig == SIGINT && ++sigint_count >= 2) {
      // A second Ctrl-C means "now".
      spdlog::warn("second SIGINT: sending SIGKILL without waiting");
      kill_now();
    } else if ((sig == SIGTERM || sig == SIGINT) && shutdown == Shutdown::running) {
      shutdown = Shutdown::grace;
      kill_deadline = Clock::now() + m_options.grace_period;
    }
    if (is_stop_signal(sig) && result.stop_signal == 0) {
      result.stop_signal = sig;
    }
  }
}

ChildResult
Supervisor::run(const ChildSpec& spec)
{
  const auto start = Clock::now();
  ChildResult result;
  OutputPlumbing plumbing = plan_output(spec.output);

  int exec_error_pipe[2];
  if (::pipe2(exec_error_pipe, O_CLOEXEC) != 0) {
    throw base::SystemError("pipe2", "exec status pipe", errno);
  }
  const pid_t pid = spawn(spec, plumbing.child_stdout, plumbing.child_stderr, exec_error_pipe[1], spec.die_with_parent);
  if (spec.on_start) {
    spec.on_start(pid);
  }
  ::close(exec_error_pipe[1]);
  const Relays relays = start_relays(plumbing, spec.output, m_options.tail_bytes);
  result.exec_errno = read_exec_errno(exec_error_pipe[0]);

  const int status =
      wait_for_main(pid, spec, start, plumbing.terminal ? plumbing.out_pipe[0] : -1, relays.output.get(), result);

  if (relays.output && !relays.output->started() && kill(-pid, 0) == 0) {
    relays.output->start(); // what the script left in its group may still write while it is ended
  }
  if (const int late_stop = end_process_group(pid, result.orphans_reaped); late_stop != 0 && result.stop_signal == 0) {
    result.stop_signal = late_stop;
  }
  if (relays.output) {
    relays.output->finish(std::chrono::milliseconds(500));
    if (spec.output == OutputMode::capture) {
      result.captured = relays.output->tail();
    } else {
      result.output_tail = relays.output->tail();
    }
    result.relayed_bytes = relays.output->bytes();
  }
  if (relays.lines) {
    relays.lines->finish(std::chrono::milliseconds(1000));
  }

  const ExitStatus decoded = decode_wait_status(status);
  result.exit_code = decoded.code;
  result.term_signal = decoded.term_signal;
  result.seconds = seconds_since(start);
  // Logged only now: until the relay has drained, a line here could land inside the
  // script's last output.
  spdlog::debug("child {} exited after {:.3f} s; its process group is gone", pid, result.seconds);
  if (result.orphans_reaped > 0) {
    spdlog::debug("reaped {} orphaned process(es)", result.orphans_reaped);
  }
  return result;
}

std::vector<ChildResult>
Supervisor::run_all(const std::vector<ChildSpec>& specs)
{
  struct Running
  {
    pid_t pid = -1;
    std::unique_ptr<OutputRelay> relay;
    bool exited = false;
    int status = 0;
  };
  const auto start = Clock::now();
  std::vector<Running> running(specs.size());
  std::vector<ChildResult> results(specs.size());
  const int dev_null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    int out_pipe[2];
    make_pipe(out_pipe);
    int exec_error_pipe[2];
    if (::pipe2(exec_error_pipe, O_CLOEXEC) != 0) {
      throw base::SystemError("pipe2", "exec status pipe", errno);
    }
    running[i].pid = spawn(specs[i], out_pipe[1], dev_null, exec_error_pipe[1], false);
    ::close(out_pipe[1]);
    ::close(exec_error_pipe[1]);
    results[i].exec_errno = read_exec_errno(exec_error_pipe[0]);
    running[i].relay = std::make_unique<OutputRelay>(out_pipe[0], -1, 1024 * 1024);
    running[i].relay->start();
  }
  if (dev_null >= 0) {
    ::close(dev_null);
  }
  const auto claim = [&](pid_t pid, int st) {
    for (auto& r : running) {
      if (r.pid == pid) {
        r.exited = true;
        r.status = st;
        return true;
      }
    }
    return false;
  };
  int orphans = 0;
  while (true) {
    reap(claim, orphans);
    bool all = true;
    const auto now = Clock::now();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (running[i].exited) {
        continue;
      }
      all = false;
      if (specs[i].timeout.count() > 0 && now - start >= specs[i].timeout && !results[i].timed_out) {
        kill(-running[i].pid, SIGKILL);
        results[i].timed_out = true;
      }
    }
    if (all) {
      break;
    }
    const int sig = wait_signal(std::chrono::milliseconds(20));
    if (sig != 0 && sig != SIGCHLD) {
      forward_to_running(sig, running, results);
      if (is_stop_signal(sig)) {
        m_pending_stop = sig;
      }
    }
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    running[i].relay->finish(std::chrono::milliseconds(200));
    results[i].captured = running[i].relay->tail();
    const ExitStatus decoded = decode_wait_status(running[i].status);
    results[i].exit_code = decoded.code;
    results[i].term_signal = decoded.term_signal;
    results[i].seconds = seconds_since(start);
  }
  return results;
}

std::vector<ChildResult>
Supervisor::run_together(const std::vector<ChildSpec>& specs)
{
  struct Running
  {
    pid_t pid = -1;
    bool exited = false;
    Clock::time_point start;
  };
  std::vector<Running> running(specs.size());
  std::vector<ChildResult> results(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    ChildSpec spec = specs[i];
    spec.stdin_null = true;
    int exec_error_pipe[2];
    if (::pipe2(exec_error_pipe, O_CLOEXEC) != 0) {
      throw base::SystemError("pipe2", "exec status pipe", errno);
    }
    running[i].start = Clock::now();
    const int out = spec.output_fd >= 0 ? spec.output_fd : STDOUT_FILENO;
    running[i].pid = spawn(spec, out, out, exec_error_pipe[1], true);
    ::close(exec_error_pipe[1]);
    results[i].exec_errno = read_exec_errno(exec_error_pipe[0]);
    if (spec.on_start) {
      spec.on_start(running[i].pid);
    }
  }
  Shutdown shutdown = Shutdown::running;
  Clock::time_point kill_at;
  const auto claim = [&](pid_t pid, int st) {
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (running[i].pid == pid) {
        running[i].exited = true;
        results[i].seconds = seconds_since(running[i].start);
        const ExitStatus decoded = decode_wait_status(st);
        results[i].exit_code = decoded.code;
        results[i].term_signal = decoded.term_signal;
        return true;
      }
    }
    return false;
  };
  int orphans = 0;
  while (true) {
    reap(claim, orphans);
    const bool all = std::all_of(running.begin(), running.end(), [](const Running& r) { return r.exited; });
    if (all) {
      break;
    }
    if (shutdown == Shutdown::grace && Clock::now() >= kill_at) {
      for (std::size_t i = 0; i < specs.size(); ++i) {
        if (!running[i].exited) {
          kill(-running[i].pid, SIGKILL);
          results[i].killed_after_grace = true;
        }
      }
      shutdown = Shutdown::killed;
    }
    const int sig = wait_signal(std::chrono::milliseconds(50));
    if (sig == 0 || sig == SIGCHLD) {
      continue;
    }
    forward_to_running(sig, running, results);
    if (is_stop_signal(sig)) {
      m_pending_stop = sig;
      if (shutdown == Shutdown::running) {
        shutdown = Shutdown::grace;
        kill_at = Clock::now() + m_options.grace_period;
      }
    }
  }
  return results;
}

int
Supervisor::sleep_for(std::chrono::milliseconds duration)
{
  const auto deadline = Clock::now() + duration;
  int orphans = 0;
  while (true) {
    reap({}, orphans);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return 0;
    }
    const int sig = wait_signal(left);
    if (is_stop_signal(sig)) {
      m_pending_stop = sig;
      return sig;
    }
  }
}

int
Supervisor::poll_stop_signal()
{
  if (m_pending_stop == 0) {
    int sig;
    while ((sig = wait_signal(std::chrono::milliseconds(0))) != 0) {
      if (is_stop_signal(sig)) {
        m_pending_stop = sig;
        break;
      }
    }
  }
  return m_pending_stop;
}

} // namespace process
