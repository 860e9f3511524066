#include "process/output_relay.hpp"

#include "base/logging.hpp"
#include "process/relay_wait.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace process {

namespace {

// The tail pipe holds at most this much before old data is dropped into /dev/null.
constexpr int k_tail_pipe_size = 1024 * 1024;
constexpr std::size_t k_read_size = 256 * 1024;

} // namespace

OutputRelay::OutputRelay(int pipe_fd, int out_fd, std::size_t tail_capacity)
    : m_pipe_fd(pipe_fd), m_out_fd(out_fd), m_capacity(tail_capacity)
{
}

void
OutputRelay::prepare()
{
  if (m_buffer) {
    return;
  }
  m_wake_fd = eventfd(0, EFD_CLOEXEC);
  m_buffer = std::make_unique_for_overwrite<char[]>(k_read_size);
  // Relaying to a descriptor with splice() moves pages instead of copying them; the
  // tail is kept as page references in a second pipe (tee), so a chatty script's output
  // costs the launcher almost no CPU.
  struct stat st
  {
  };
  if (m_out_fd >= 0 && ::fstat(m_out_fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
    // A larger output pipe (best effort) lets each splice move more at a time.
    ::fcntl(m_out_fd, F_SETPIPE_SZ, k_tail_pipe_size);
  }
  if (m_out_fd >= 0 && ::pipe2(m_tail_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
    ::fcntl(m_tail_pipe[1], F_SETPIPE_SZ, k_tail_pipe_size);
    m_dev_null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
}

OutputRelay::~OutputRelay()
{
  if (m_thread.joinable()) {
    finish(std::chrono::milliseconds(0));
  }
  for (int fd : {m_wake_fd, m_tail_pipe[0], m_tail_pipe[1], m_dev_null, m_pipe_fd}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
}

void
OutputRelay::start()
{
  prepare();
  m_thread = std::thread([this] { loop(); });
}

void
OutputRelay::finish(std::chrono::milliseconds drain_window)
{
  if (!m_thread.joinable() && !m_buffer) {
    pollfd pipe{m_pipe_fd, POLLIN, 0};
    if (::poll(&pipe, 1, 0) == 1 && hung_up_without_data(pipe.revents)) {
      return; // never written to, and no writer is left: a silent script costs no relay at all
    }
  }
  prepare();
  m_drain_deadline = std::chrono::steady_clock::now() + drain_window;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(m_wake_fd, &one, sizeof(one));
  if (m_thread.joinable()) {
    m_thread.join();
  } else {
    loop(); // never started (the child wrote nothing until it exited): drain here
  }
}

std::string
OutputRelay::tail() const
{
  std::lock_guard<std::mutex> guard(m_tail_lock);
  return m_tail.size() > m_capacity ? m_tail.substr(m_tail.size() - m_capacity) : m_tail;
}

unsigned long long
OutputRelay::bytes() const
{
  std::lock_guard<std::mutex> guard(m_tail_lock);
  return m_bytes;
}

void
OutputRelay::keep(const char* data, std::size_t size)
{
  std::lock_guard<std::mutex> guard(m_tail_lock);
  m_bytes += size;
  if (m_capacity == 0) {
    return;
  }
  if (size >= m_capacity) {
    m_tail.assign(data + size - m_capacity, m_capacity);
    return;
  }
  m_tail.append(data, size);
  // Trim in batches so that appending stays amortised O(1).
  if (m_tail.size() > 2 * m_capacity) {
    m_tail.erase(0, m_tail.size() - m_capacity);
  }
}

void
OutputRelay::collect_tail_pipe()
{
  if (m_tail_pipe_bytes == 0) {
    return;
  }
  while (m_tail_pipe_bytes > 0) {
    const ssize_t n = ::read(m_tail_pipe[0], m_buffer.get(), k_read_size);
    if (n <= 0) {
      break;
    }
    m_tail_pipe_bytes -= std::min(m_tail_pipe_bytes, static_cast<std::size_t>(n));
    std::lock_guard<std::mutex> guard(m_tail_lock);
    m_tail.append(m_buffer.get(), static_cast<std::size_t>(n));
  }
  std::lock_guard<std::mutex> guard(m_tail_lock);
  if (m_tail.size() > m_capacity) {
    m_tail.erase(0, m_tail.size() - m_capacity);
  }
}

bool
OutputRelay::splice_available_bytes(bool& out_broken)
{
  int available = 0;
  if (::ioctl(m_pipe_fd, FIONREAD, &available) != 0 || available <= 0) {
    available = 64 * 1024;
  }
  auto size = static_cast<std::size_t>(available);
  // Make room in the tail pipe, dropping its oldest bytes (zero-copy into /dev/null).
  const std::size_t room = static_cast<std::size_t>(k_tail_pipe_size) / 2;
  if (m_tail_pipe_bytes + size > room && m_tail_pipe_bytes > m_capacity) {
    const std::size_t drop = m_tail_pipe_bytes - m_capacity;
    const ssize_t dropped = ::splice(m_tail_pipe[0], nullptr, m_dev_null, nullptr, drop, SPLICE_F_NONBLOCK);
    if (dropped > 0) {
      m_tail_pipe_bytes -= static_cast<std::size_t>(dropped);
    }
  }
  ssize_t copied = ::tee(m_pipe_fd, m_tail_pipe[1], size, SPLICE_F_NONBLOCK);
  if (copied <= 0) {
    return false; // the tail pipe is full or tee is refused: copy this chunk instead
  }
  m_tail_pipe_bytes += static_cast<std::size_t>(copied);
  size = static_cast<std::size_t>(copied);
  {
    std::lock_guard<std::mutex> guard(m_tail_lock);
    m_bytes += size;
  }
  std::lock_guard<std::mutex> guard(base::output_lock());
  while (size > 0) {
    const int target = out_broken ? m_dev_null : m_out_fd;
    const ssize_t moved = ::splice(m_pipe_fd, nullptr, target, nullptr, size, SPLICE_F_MOVE);
    if (moved > 0) {
      size -= static_cast<std::size_t>(moved);
    } else if (moved < 0 && (errno == EINTR || (!out_broken && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                                                base::wait_writable(target)))) {
      // An output in non-blocking mode that is full waits for room, as a blocking one does
      // (before, the first EAGAIN marked it broken and the rest of the output was dropped).
      continue;
    } else if (!out_broken && moved < 0 && errno != EINVAL) {
      out_broken = true; // the reader went away: keep draining so the child never stalls
    } else {
      // The output cannot take splice (EINVAL): copy what tee already counted.
      std::vector<char> buffer(size);
      const ssize_t n = ::read(m_pipe_fd, buffer.data(), size);
      if (n > 0 && !out_broken) {
        out_broken = !base::write_all(m_out_fd, buffer.data(), static_cast<std::size_t>(n));
      }
      m_splice_ok = false;
      return true;
    }
  }
  return true;
}

void
OutputRelay::loop()
{
  bool out_broken = m_out_fd < 0;
  bool draining = false;
  while (true) {
    const RelayWait wait = wait_for_relay(m_pipe_fd, m_wake_fd, draining, m_drain_deadline);
    if (wait == RelayWait::stop) {
      break;
    }
    if (wait == RelayWait::again) {
      continue;
    }
    if (m_splice_ok && m_dev_null >= 0 && splice_available_bytes(out_broken)) {
      continue;
    }
    collect_tail_pipe(); // keep the order of the tail when falling back to copying
    const ssize_t n = ::read(m_pipe_fd, m_buffer.get(), k_read_size);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      break;
    }
    if (n == 0) {
      break; // EOF: every writer is gone
    }
    const auto size = static_cast<std::size_t>(n);
    if (!out_broken) {
      std::lock_guard<std::mutex> guard(base::output_lock());
      // A reader that went away must not stall the child: keep reading, stop writing.
      out_broken = !base::write_all(m_out_fd, m_buffer.get(), size);
    }
    keep(m_buffer.get(), size);
  }
  collect_tail_pipe();
}

} // namespace process
