#include "process/prefixed_output.hpp"

#include "base/logging.hpp"
#include "process/relay_wait.hpp"

#include <cerrno>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

namespace process {

namespace {

// A line longer than this is written in pieces, each with the prefix (memory stays bounded).
constexpr std::size_t k_max_line = 64 * 1024;

} // namespace

PrefixedOutput::PrefixedOutput(int pipe_fd, int out_fd, std::string prefix)
    : m_pipe_fd(pipe_fd), m_out_fd(out_fd), m_wake_fd(eventfd(0, EFD_CLOEXEC)), m_prefix(std::move(prefix))
{
  m_thread = std::thread([this] { loop(); });
}

PrefixedOutput::~PrefixedOutput()
{
  if (m_thread.joinable()) {
    finish(std::chrono::milliseconds(0));
  }
  for (int fd : {m_wake_fd, m_pipe_fd}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
}

void
PrefixedOutput::finish(std::chrono::milliseconds drain_window)
{
  m_drain_deadline = std::chrono::steady_clock::now() + drain_window;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(m_wake_fd, &one, sizeof(one));
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void
PrefixedOutput::emit(const char* data, std::size_t size)
{
  std::string text;
  const std::string whole = m_lines.feed(data, size);
  for (std::size_t start = 0; start < whole.size();) {
    const std::size_t end = whole.find('\n', start) + 1; // feed() returns whole lines only
    text += m_prefix;
    text.append(whole, start, end - start);
    start = end;
  }
  if (m_lines.partial_size() >= k_max_line) {
    text += m_prefix + m_lines.take_partial() + "\n";
  }
  if (!text.empty()) {
    std::lock_guard<std::mutex> guard(base::output_lock());
    base::write_all(m_out_fd, text.data(), text.size());
  }
}

void
PrefixedOutput::loop()
{
  std::vector<char> buffer(64 * 1024);
  bool draining = false;
  while (true) {
    const RelayWait wait = wait_for_relay(m_pipe_fd, m_wake_fd, draining, m_drain_deadline);
    if (wait == RelayWait::stop) {
      break;
    }
    if (wait == RelayWait::again) {
      continue;
    }
    const ssize_t n = ::read(m_pipe_fd, buffer.data(), buffer.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    emit(buffer.data(), static_cast<std::size_t>(n));
  }
  if (m_lines.holds_partial()) {
    // The last line had no newline: end it, so the next host's line starts on its own.
    const std::string text = m_prefix + m_lines.take_partial() + "\n";
    std::lock_guard<std::mutex> guard(base::output_lock());
    base::write_all(m_out_fd, text.data(), text.size());
  }
}

} // namespace process
