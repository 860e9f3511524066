#include "serve/heap_trim.hpp"

#include <malloc.h>

namespace serve {

void
HeapTrim::large_released()
{
  if (m_pending) {
    return;
  }
  m_pending = true;
  m_timer.expires_after(k_delay);
  m_timer.async_wait([this](const boost::system::error_code& ec) {
    m_pending = false;
    if (!ec) {
      ::malloc_trim(k_heap_kept);
    }
  });
}

} // namespace serve
