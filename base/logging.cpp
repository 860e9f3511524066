#include "base/logging.hpp"

#include <cerrno>
#include <poll.h>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

namespace base {

std::mutex&
output_lock()
{
  static std::mutex lock;
  return lock;
}

bool
wait_writable(int fd)
{
  pollfd out{fd, POLLOUT, 0};
  int ready = 0;
  do {
    ready = ::poll(&out, 1, -1);
  } while (ready < 0 && errno == EINTR);
  return ready > 0;
}

bool
write_all(int fd, const char* data, std::size_t size)
{
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      // A full non-blocking pipe or terminal is not a broken one: a script's output
      // relayed there was silently dropped from the first EAGAIN on.
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable(fd)) {
        continue;
      }
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void
print_to(int fd, std::string_view text)
{
  const std::lock_guard<std::mutex> guard(output_lock());
  write_all(fd, text.data(), text.size());
}

namespace {

class StderrSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex>
{
protected:
  void
  sink_it_(const spdlog::details::log_msg& msg) override
  {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::lock_guard<std::mutex> guard(output_lock());
    write_all(STDERR_FILENO, formatted.data(), formatted.size());
  }
  void
  flush_() override
  {
  }
};

} // namespace

void
setup_logging(Verbosity verbosity)
{
  auto logger = std::make_shared<spdlog::logger>("smlaunch", std::make_shared<StderrSink>());
  // The reference's format ("%(asctime)s %(name)-12s %(levelname)-8s"), so log parsers
  // written for it keep working.
  logger->set_pattern("%Y-%m-%d %H:%M:%S,%e smlaunch %-8l %v");
  switch (verbosity) {
  case Verbosity::quiet:
    logger->set_level(spdlog::level::warn);
    break;
  case Verbosity::normal:
    logger->set_level(spdlog::level::info);
    break;
  case Verbosity::verbose:
    logger->set_level(spdlog::level::debug);
    break;
  }
  spdlog::set_default_logger(logger);
}

} // namespace base
