// The wait of a relay thread (OutputRelay, PrefixedOutput): for its pipe, or for the wake
// that finish() sends, after which it drains what is left until a deadline.
#pragma once

#include <chrono>
#include <poll.h>

namespace process {

enum class RelayWait {
  pipe_ready, // data, end of file or an error on the pipe: read it
  again,      // woken (now draining) or interrupted: wait again
  stop,       // the drain window is over, or poll failed
};

// What poll() reports for a pipe at end of file with nothing left to read: every writer
// closed it, so nothing will ever come (the supervisor and a relay never started ask this).
inline bool
hung_up_without_data(short revents)
{
  return (revents & POLLHUP) != 0 && (revents & POLLIN) == 0;
}

// `draining` turns true when `wake_fd` fires; from then on only the pipe is watched, until
// `drain_deadline`.
RelayWait wait_for_relay(int pipe_fd, int wake_fd, bool& draining,
                         std::chrono::steady_clock::time_point drain_deadline);

} // namespace process
