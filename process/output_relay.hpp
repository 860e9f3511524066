// Copies a child's output pipe to one of the launcher's descriptors as it arrives (no
// buffering beyond one read), keeping the last bytes to explain a failure.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace process {

class OutputRelay
{
public:
  // `out_fd` < 0 discards the data (capture only). `tail_capacity` bytes are kept.
  OutputRelay(int pipe_fd, int out_fd, std::size_t tail_capacity);
  ~OutputRelay();
  OutputRelay(const OutputRelay&) = delete;
  OutputRelay& operator=(const OutputRelay&) = delete;

  // Relay from a thread of its own from now on. Started only once the child has written
  // (Supervisor::run): a silent child costs no thread, no buffer and no tail pipe.
  void start();
  bool
  started() const
  {
    return m_thread.joinable();
  }
  int
  pipe_fd() const
  {
    return m_pipe_fd;
  }
  // The child is gone: read what is left until EOF, but stop after `drain_window` when a
  // grandchild in another process group still holds the pipe open. Without a thread the
  // caller does it itself.
  void finish(std::chrono::milliseconds drain_window);

  std::string tail() const;
  unsigned long long bytes() const;

private:
  // The wake-up descriptor, the tail pipe and the read buffer, made on first use.
  void prepare();
  void loop();
  // Zero-copy path: splice() to the output, tee() into m_tail_pipe for the tail.
  // Returns false when the output does not support splice (then loop() copies).
  bool splice_available_bytes(bool& out_broken);
  void keep(const char* data, std::size_t size);
  void collect_tail_pipe();

  int m_pipe_fd;
  int m_out_fd;
  int m_wake_fd = -1;
  int m_tail_pipe[2] = {-1, -1};
  int m_dev_null = -1;
  std::size_t m_tail_pipe_bytes = 0;
  bool m_splice_ok = true;
  std::size_t m_capacity;
  // One read buffer, allocated here and never zero-filled: a job that writes little
  // touches few of its pages, and the relay thread never calls malloc (no arena of its own).
  std::unique_ptr<char[]> m_buffer;
  std::thread m_thread;
  mutable std::mutex m_tail_lock;
  std::string m_tail;
  unsigned long long m_bytes = 0;
  std::chrono::steady_clock::time_point m_drain_deadline{};
};

} // namespace process
