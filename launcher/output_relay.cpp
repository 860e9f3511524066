#include "launcher/output_relay.hpp"

#include "launcher/logging.hpp"

#include <atomic>
#include <cerrno>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

namespace launcher {

OutputRelay::OutputRelay(int pipe_fd, int out_fd, std::size_t tail_capacity)
  : m_pipe_fd(pipe_fd), m_out_fd(out_fd), m_wake_fd(eventfd(0, EFD_CLOEXEC)), m_capacity(tail_capacity)
{
}

OutputRelay::~OutputRelay()
{
  if (m_thread.joinable()) {
    finish(std::chrono::milliseconds(0));
  }
  if (m_wake_fd >= 0) {
    ::close(m_wake_fd);
  }
  ::close(m_pipe_fd);
}

void
OutputRelay::start()
{
  m_thread = std::thread([this] { loop(); });
}

void
OutputRelay::finish(std::chrono::milliseconds drain_window)
{
  m_drain_deadline = std::chrono::steady_clock::now() + drain_window;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(m_wake_fd, &one, sizeof(one));
  if (m_thread.joinable()) {
    m_thread.join();
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
OutputRelay::loop()
{
  std::vector<char> buffer(256 * 1024);
  bool out_broken = m_out_fd < 0;
  bool draining = false;
  while (true) {
    pollfd fds[2] = {{m_pipe_fd, POLLIN, 0}, {m_wake_fd, POLLIN, 0}};
    int timeout_ms = -1;
    if (draining) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(m_drain_deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return;
      }
      timeout_ms = static_cast<int>(left.count());
    }
    const int ready = ::poll(fds, draining ? 1 : 2, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (ready == 0) {
      return; // drain window over
    }
    if (!draining && (fds[1].revents & POLLIN) != 0) {
      draining = true;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      continue;
    }
    const ssize_t n = ::read(m_pipe_fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return;
    }
    if (n == 0) {
      return; // EOF: every writer is gone
    }
    const auto size = static_cast<std::size_t>(n);
    if (!out_broken) {
      std::lock_guard<std::mutex> guard(output_lock());
      // A reader that went away must not stall the child: keep reading, stop writing.
      out_broken = !write_all(m_out_fd, buffer.data(), size);
    }
    keep(buffer.data(), size);
  }
}

} // namespace launcher
