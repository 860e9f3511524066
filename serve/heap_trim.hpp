// Giving the front's freed heap back to the kernel, shared by the HTTP front and the worker
// pool (both release MiB-sized bodies).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>

namespace serve {

// Free heap kept when the front gives memory back (malloc_trim's pad).
inline constexpr std::size_t k_heap_kept = 8U << 20U;

// Gives freed heap back to the kernel a moment after large bodies were released, not
// after each one: under load the next requests reuse the same pages (trimming after every
// MiB-sized body made each one fault in ~256 fresh zeroed pages, twice, in the front), and
// once the load stops memory falls back within `k_delay`.
class HeapTrim
{
public:
  static constexpr std::chrono::milliseconds k_delay{1000};
  explicit HeapTrim(boost::asio::io_context& io) : m_timer(io) {}
  void large_released();

private:
  boost::asio::steady_timer m_timer;
  bool m_pending = false;
};

} // namespace serve
