#include "process/relay_wait.hpp"

#include <cerrno>
#include <poll.h>

namespace process {

RelayWait
wait_for_relay(int pipe_fd, int wake_fd, bool& draining, std::chrono::steady_clock::time_point drain_deadline)
{
  pollfd fds[2] = {{pipe_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  int timeout_ms = -1;
  if (draining) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return RelayWait::stop;
    }
    timeout_ms = static_cast<int>(left.count());
  }
  const int ready = ::poll(fds, draining ? 1 : 2, timeout_ms);
  if (ready < 0) {
    return errno == EINTR ? RelayWait::again : RelayWait::stop;
  }
  if (ready == 0) {
    return RelayWait::stop; // the drain window is over
  }
  if (!draining && (fds[1].revents & POLLIN) != 0) {
    draining = true;
  }
  return (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 ? RelayWait::pipe_ready : RelayWait::again;
}

} // namespace process
