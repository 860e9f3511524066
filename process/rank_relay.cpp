#include "process/rank_relay.hpp"

#include "base/logging.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace launcher {

namespace {

using Clock = std::chrono::steady_clock;

// A partial line is written after this pause, or once it is this long.
constexpr auto k_partial_pause = std::chrono::milliseconds(50);
constexpr std::size_t k_max_partial = 64 * 1024;

constexpr int k_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

struct Stream
{
  int in = -1;  // the child's end, read here
  int out = -1; // ours
  LineAssembler lines;
  Clock::time_point last_data{};
  bool open = true;
};

void
read_into(Stream& s)
{
  char buffer[64 * 1024];
  const ssize_t n = ::read(s.in, buffer, sizeof(buffer));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
    return;
  }
  if (n <= 0) {
    s.open = false;
    const std::string rest = s.lines.take_partial();
    write_all(s.out, rest.data(), rest.size());
    return;
  }
  const std::string whole = s.lines.feed(buffer, static_cast<std::size_t>(n));
  write_all(s.out, whole.data(), whole.size());
  if (s.lines.partial_size() >= k_max_partial) {
    const std::string rest = s.lines.take_partial();
    write_all(s.out, rest.data(), rest.size());
  }
  s.last_data = Clock::now();
}

} // namespace

std::string
LineAssembler::feed(const char* data, std::size_t size)
{
  std::size_t last = size;
  for (std::size_t i = size; i-- > 0;) {
    if (data[i] == '\n') {
      last = i;
      break;
    }
  }
  if (last == size) {
    m_partial.append(data, size);
    return "";
  }
  std::string out = std::move(m_partial);
  out.append(data, last + 1);
  m_partial.assign(data + last + 1, size - last - 1);
  return out;
}

std::string
LineAssembler::take_partial()
{
  std::string out = std::move(m_partial);
  m_partial.clear();
  return out;
}

int
run_with_line_output(const std::string& path, std::vector<char*>& argv, std::vector<char*>& envp)
{
  int out_pipe[2];
  int err_pipe[2];
  int exec_status[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 || ::pipe2(exec_status, O_CLOEXEC) != 0) {
    std::cerr << "smlaunch rank: pipe: " << std::system_category().message(errno) << "\n";
    return 126;
  }
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (const int sig : k_forwarded) {
    sigaddset(&forwarded, sig);
  }
  sigaddset(&forwarded, SIGCHLD);
  sigset_t original;
  sigprocmask(SIG_BLOCK, &forwarded, &original); // NOLINT(concurrency-mt-unsafe): one thread here
  const int signals = ::signalfd(-1, &forwarded, SFD_CLOEXEC | SFD_NONBLOCK);
  const pid_t parent = ::getpid();

  const pid_t child = ::fork();
  if (child < 0) {
    std::cerr << "smlaunch rank: fork: " << std::system_category().message(errno) << "\n";
    return 126;
  }
  if (child == 0) {
    // If this relay is SIGKILLed, the program must not run on unseen.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(1);
    }
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    sigprocmask(SIG_SETMASK, &original, nullptr); // NOLINT(concurrency-mt-unsafe): forked child: one thread
    ::execve(path.c_str(), argv.data(), envp.data());
    const int err = errno;
    [[maybe_unused]] const auto n = ::write(exec_status[1], &err, sizeof(err));
    ::_exit(err == ENOENT ? 127 : 126);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_status[1]);
  int exec_errno = 0;
  if (::read(exec_status[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno) && exec_errno != 0) {
    std::cerr << "smlaunch rank: cannot run " << path << ": " << std::system_category().message(exec_errno) << "\n";
  }
  ::close(exec_status[0]);

  Stream streams[2];
  streams[0].in = out_pipe[0];
  streams[0].out = STDOUT_FILENO;
  streams[1].in = err_pipe[0];
  streams[1].out = STDERR_FILENO;
  bool exited = false;
  int status = 0;
  Clock::time_point exited_at{};
  while (true) {
    const bool any_open = streams[0].open || streams[1].open;
    // After the program's end, a process it left behind may keep a pipe open: 1 s more.
    if (exited && (!any_open || Clock::now() - exited_at > std::chrono::seconds(1))) {
      break;
    }
    pollfd fds[3] = {{signals, POLLIN, 0},
                     {streams[0].open ? streams[0].in : -1, POLLIN, 0},
                     {streams[1].open ? streams[1].in : -1, POLLIN, 0}};
    const bool partial = streams[0].lines.holds_partial() || streams[1].lines.holds_partial();
    const int ready = ::poll(fds, 3, partial || exited ? 20 : -1);
    if (ready < 0 && errno != EINTR) {
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (streams[i].open && (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        read_into(streams[i]);
      }
      if (streams[i].lines.holds_partial() && Clock::now() - streams[i].last_data >= k_partial_pause) {
        const std::string rest = streams[i].lines.take_partial();
        write_all(streams[i].out, rest.data(), rest.size());
      }
    }
    if ((fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      while (::read(signals, &info, sizeof(info)) == sizeof(info)) {
        const int sig = static_cast<int>(info.ssi_signo);
        if (sig != SIGCHLD) {
          ::kill(child, sig);
        }
      }
    }
    if (!exited && ::waitpid(child, &status, WNOHANG) == child) {
      exited = true;
      exited_at = Clock::now();
    }
  }
  for (auto& s : streams) {
    const std::string rest = s.lines.take_partial();
    write_all(s.out, rest.data(), rest.size());
  }
  if (!exited) {
    ::waitpid(child, &status, 0);
  }
  if (WIFSIGNALED(status)) {
    // End as the program ended, so mpirun reports its signal.
    const int sig = WTERMSIG(status);
    static_cast<void>(std::signal(sig, SIG_DFL));
    sigprocmask(SIG_SETMASK, &original, nullptr); // NOLINT(concurrency-mt-unsafe): one thread here
    static_cast<void>(::raise(sig));
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

} // namespace launcher
