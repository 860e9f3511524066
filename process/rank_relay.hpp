// A rank's output in whole lines. mpirun --tag-output tags every chunk a rank writes, so
// an unbuffered Python (PYTHONUNBUFFERED=1, as SageMaker images set it) that writes a
// line and its newline separately gets "text[1,0]<stdout>:" lines and torn tracebacks.
// `smlaunch rank` therefore runs the program as its child (under the supervisor, with
// OutputMode::lines) and passes its stdout and stderr on a line at a time (a partial line
// after a short pause: progress bars still move).
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace process {

// Assembles one stream: feed() what arrived, take() what may be written now.
class LineAssembler
{
public:
  // Appends `data`; returns everything up to and including its last newline (with what
  // was held before), or "" when no line is complete.
  std::string feed(const char* data, std::size_t size);
  // What is held (a partial line), emptied.
  std::string take_partial();
  bool
  holds_partial() const
  {
    return !m_partial.empty();
  }
  std::size_t
  partial_size() const
  {
    return m_partial.size();
  }

private:
  std::string m_partial;
};

// OutputMode::lines of the supervisor: relays a child's stdout and stderr pipes to ours
// through LineAssemblers, on a thread of its own. Takes ownership of both descriptors.
class LineRelay
{
public:
  LineRelay(int stdout_fd, int stderr_fd);
  ~LineRelay();
  LineRelay(const LineRelay&) = delete;
  LineRelay& operator=(const LineRelay&) = delete;

  void start();
  // The child is gone: relay what is left until both pipes close, for at most
  // `drain_window` (a process it left behind may hold them open), then stop.
  void finish(std::chrono::milliseconds drain_window);

private:
  void loop();

  int m_stdout_fd;
  int m_stderr_fd;
  int m_wake[2] = {-1, -1};
  std::atomic<long long> m_drain_window_ms{0};
  std::thread m_thread;
};

} // namespace process
