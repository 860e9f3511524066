#include "process/rank_relay.hpp"

#include "base/logging.hpp"

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <unistd.h>

namespace process {

namespace {

using Clock = std::chrono::steady_clock;

// A partial line is written after this pause, or once it is this long.
constexpr auto k_partial_pause = std::chrono::milliseconds(50);
constexpr std::size_t k_max_partial = 64 * 1024;

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
    base::write_all(s.out, rest.data(), rest.size());
    return;
  }
  const std::string whole = s.lines.feed(buffer, static_cast<std::size_t>(n));
  base::write_all(s.out, whole.data(), whole.size());
  if (s.lines.partial_size() >= k_max_partial) {
    const std::string rest = s.lines.take_partial();
    base::write_all(s.out, rest.data(), rest.size());
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

LineRelay::LineRelay(int stdout_fd, int stderr_fd) : m_stdout_fd(stdout_fd), m_stderr_fd(stderr_fd)
{
  if (::pipe2(m_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    m_wake[0] = m_wake[1] = -1;
  }
}

LineRelay::~LineRelay()
{
  if (m_thread.joinable()) {
    finish(std::chrono::milliseconds(0));
  }
  for (int fd : {m_wake[0], m_wake[1], m_stdout_fd, m_stderr_fd}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
}

void
LineRelay::start()
{
  m_thread = std::thread([this] { loop(); });
}

void
LineRelay::finish(std::chrono::milliseconds drain_window)
{
  m_drain_window_ms.store(drain_window.count());
  const char byte = 1;
  [[maybe_unused]] const auto n = ::write(m_wake[1], &byte, 1);
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void
LineRelay::loop()
{
  Stream streams[2];
  streams[0].in = m_stdout_fd;
  streams[0].out = STDOUT_FILENO;
  streams[1].in = m_stderr_fd;
  streams[1].out = STDERR_FILENO;
  std::optional<Clock::time_point> drain_deadline;
  while (true) {
    const bool any_open = streams[0].open || streams[1].open;
    // After the program's end, a process it left behind may keep a pipe open: the drain
    // window, then no more.
    if (!any_open || (drain_deadline && Clock::now() >= *drain_deadline)) {
      break;
    }
    pollfd fds[3] = {{m_wake[0], POLLIN, 0},
                     {streams[0].open ? streams[0].in : -1, POLLIN, 0},
                     {streams[1].open ? streams[1].in : -1, POLLIN, 0}};
    const bool partial = streams[0].lines.holds_partial() || streams[1].lines.holds_partial();
    const int ready = ::poll(fds, 3, partial || drain_deadline ? 20 : -1);
    if (ready < 0 && errno != EINTR) {
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (streams[i].open && (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        read_into(streams[i]);
      }
      if (streams[i].lines.holds_partial() && Clock::now() - streams[i].last_data >= k_partial_pause) {
        const std::string rest = streams[i].lines.take_partial();
        base::write_all(streams[i].out, rest.data(), rest.size());
      }
    }
    if (!drain_deadline && (fds[0].revents & POLLIN) != 0) {
      drain_deadline = Clock::now() + std::chrono::milliseconds(m_drain_window_ms.load());
    }
  }
  for (auto& stream : streams) {
    const std::string rest = stream.lines.take_partial();
    base::write_all(stream.out, rest.data(), rest.size());
  }
}

} // namespace process
