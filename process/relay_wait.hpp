// The wait of a relay thread (OutputRelay, PrefixedOutput): for its pipe, or for the wake
// that finish() sends, after which it drains what is left until a deadline.
#pragma once

#include <chrono>

namespace launcher {

enum class RelayWait {
  pipe_ready, // data, end of file or an error on the pipe: read it
  again,      // woken (now draining) or interrupted: wait again
  stop,       // the drain window is over, or poll failed
};

// `draining` turns true when `wake_fd` fires; from then on only the pipe is watched, until
// `drain_deadline`.
RelayWait wait_for_relay(int pipe_fd, int wake_fd, bool& draining,
                         std::chrono::steady_clock::time_point drain_deadline);

} // namespace launcher
