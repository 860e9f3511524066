// spdlog set-up: every launcher line goes to stderr; the output relay shares the lock
// so a log line never lands inside a chunk of the script's output.
#pragma once

#include <mutex>
#include <spdlog/spdlog.h>
#include <string_view>

namespace base {

enum class Verbosity { quiet, normal, verbose };

// Install the "smlaunch" logger as the default spdlog logger.
void setup_logging(Verbosity verbosity);

// Held while writing to the launcher's stdout or stderr.
std::mutex& output_lock();

// Write all of `data` to `fd`, retrying on EINTR and short writes; false on error. A
// descriptor in non-blocking mode (a file description shared with a parent that set
// O_NONBLOCK) is waited on until it takes the data, as a blocking one would be.
bool write_all(int fd, const char* data, std::size_t size);

// Wait until `fd` can take more data (after EAGAIN on a non-blocking descriptor); false
// when poll() fails.
bool wait_writable(int fd);

// Help, version, plan and usage errors on the launcher's stdout (1) or stderr (2), whole,
// under the output lock. Not std::cout: no file includes <iostream>, so the standard
// streams and the C++ locale are never set up (5% of every start, before main).
void print_to(int fd, std::string_view text);

} // namespace base
