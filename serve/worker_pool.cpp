#include "serve/worker_pool.hpp"

#include "serve/routing.hpp"

#include <algorithm>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace serve {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int k_channel_buffer = 4 * 1024 * 1024; // fewer wake-ups for MiB-sized payloads

// Large transfers in one system call where the socket allows (Asio's composed operations
// otherwise split them into 64 KiB pieces).
std::size_t
transfer_all_at_once(const boost::system::error_code& ec, std::size_t /*transferred*/)
{
  return ec ? 0 : std::size_t{64} << 20;
}

std::string
seconds_text(std::chrono::milliseconds ms)
{
  const auto count = ms.count();
  return count % 1000 == 0 ? std::to_string(count / 1000) + " s" : std::to_string(count) + " ms";
}

// Answer a job, once.
void
finish(Job& job, Reply&& reply)
{
  if (job.done) {
    auto done = std::move(job.done);
    job.done = nullptr;
    done(std::move(reply));
  }
}

} // namespace

WorkerPool::WorkerPool(asio::io_context& io, WorkerProcesses& processes, const ServerConfig& config,
                       HeapTrim& heap_trim, std::function<void(const std::string&)> on_fatal)
    : m_io(io), m_processes(processes), m_config(config), m_heap_trim(heap_trim), m_on_fatal(std::move(on_fatal)),
      m_queue_timer(io)
{
  for (int i = 0; i < config.workers; ++i) {
    auto slot = std::make_unique<Slot>(io);
    slot->index = i;
    m_slots.push_back(std::move(slot));
  }
}

WorkerPool::~WorkerPool() = default;

void
WorkerPool::start()
{
  for (auto& slot : m_slots) {
    spawn(*slot);
  }
  expire_queue();
}

bool
WorkerPool::all_loaded_once() const
{
  return std::all_of(m_slots.begin(), m_slots.end(), [](const auto& s) { return s->loaded_once; });
}

bool
WorkerPool::any_ready() const
{
  return std::any_of(m_slots.begin(), m_slots.end(),
                     [](const auto& s) { return s->state == State::idle || s->state == State::busy; });
}

std::size_t
WorkerPool::outstanding() const
{
  return m_queue.size() + static_cast<std::size_t>(std::count_if(m_slots.begin(), m_slots.end(),
                                                                 [](const auto& s) { return s->job.has_value(); }));
}

void
WorkerPool::fatal(const std::string& message)
{
  if (!m_fatal) {
    m_fatal = true;
    m_on_fatal(message);
  }
}

void
WorkerPool::spawn(Slot& slot)
{
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    fatal(std::string("socketpair for a worker channel: ") + std::system_category().message(errno));
    return;
  }
  for (int fd : fds) {
    // Beyond net.core.wmem_max/rmem_max only with CAP_NET_ADMIN (the *FORCE options);
    // otherwise as large as the system allows.
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &k_channel_buffer, sizeof(k_channel_buffer)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &k_channel_buffer, sizeof(k_channel_buffer));
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &k_channel_buffer, sizeof(k_channel_buffer)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &k_channel_buffer, sizeof(k_channel_buffer));
    }
  }
  // The child's end must survive exec; this thread is the only one that forks, so no
  // other child can inherit it meanwhile.
  ::fcntl(fds[1], F_SETFD, 0);
  try {
    slot.pid = m_processes.start(slot.index, fds[1]);
  } catch (const std::exception& e) {
    ::close(fds[0]);
    ::close(fds[1]);
    fatal(std::string("could not start a worker: ") + e.what());
    return;
  }
  ::close(fds[1]);
  ++slot.generation;
  slot.socket = asio::local::stream_protocol::socket(m_io);
  boost::system::error_code ec;
  slot.socket.assign(asio::local::stream_protocol(), fds[0], ec);
  if (ec) {
    ::close(fds[0]);
    fatal("worker channel: " + ec.message());
    return;
  }
  slot.state = State::starting;
  slot.loaded_this_life = false;
  slot.fatal_message.clear();
  watch_exit(slot);
  spdlog::debug("worker {} started (pid {})", slot.index, slot.pid);
  read_header(slot);
  // Loading is bounded too, at start (the server stops) and for a replacement (replaced
  // again).
  const auto generation = slot.generation;
  slot.timer.expires_after(m_config.model_load_timeout);
  slot.timer.async_wait([this, &slot, generation](const boost::system::error_code& error) {
    if (!error && generation == slot.generation && slot.state == State::starting) {
      lost(slot,
           "it did not load the model within " + seconds_text(m_config.model_load_timeout) + " (--model-load-timeout)");
    }
  });
}

void
WorkerPool::read_header(Slot& slot)
{
  const auto generation = slot.generation;
  asio::async_read(slot.socket, asio::buffer(slot.rx_header),
                   [this, &slot, generation](const boost::system::error_code& ec, std::size_t /*n*/) {
                     if (generation != slot.generation) {
                       return;
                     }
                     if (ec) {
                       lost(slot, ec == asio::error::eof ? "it exited" : "its channel failed: " + ec.message());
                       return;
                     }
                     try {
                       slot.frame = decode_header(slot.rx_header, m_config.max_response_size);
                     } catch (const FramingError& e) {
                       lost(slot, e.what());
                       return;
                     }
                     read_payload(slot);
                   });
}

void
WorkerPool::read_payload(Slot& slot)
{
  slot.rx_meta.resize(slot.frame.meta_size);
  try {
    slot.rx_body = std::string(); // a reply moved the last one out; never keep a huge one
    slot.rx_body.resize(slot.frame.body_size);
  } catch (const std::bad_alloc&) {
    lost(slot, "its answer of " + std::to_string(slot.frame.body_size) + " bytes does not fit in memory");
    return;
  }
  const auto generation = slot.generation;
  const std::array<asio::mutable_buffer, 2> buffers{asio::buffer(slot.rx_meta), asio::buffer(slot.rx_body)};
  slot.reading_payload = true;
  asio::async_read(slot.socket, buffers, transfer_all_at_once,
                   [this, &slot, generation](const boost::system::error_code& ec, std::size_t /*n*/) {
                     if (generation != slot.generation) {
                       return;
                     }
                     slot.reading_payload = false;
                     if (ec) {
                       lost(slot, ec == asio::error::eof ? "it exited" : "its channel failed: " + ec.message());
                       return;
                     }
                     on_frame(slot);
                   });
}

void
WorkerPool::on_frame(Slot& slot)
{
  switch (slot.frame.kind) {
  case FrameKind::ready:
    if (slot.state != State::starting) {
      lost(slot, "it sent a second ready frame");
      return;
    }
    slot.timer.cancel();
    spdlog::info("worker {} (pid {}) loaded the model", slot.index, slot.pid);
    slot.loaded_once = true;
    slot.loaded_this_life = true;
    slot.failures = 0;
    slot.state = State::idle;
    m_idle.push_back(&slot);
    pump();
    break;
  case FrameKind::fatal:
    // The worker exits right after; `lost` reports the message.
    slot.fatal_message = slot.rx_meta;
    break;
  case FrameKind::response: {
    if (slot.state != State::busy || !slot.job || slot.job->id != slot.frame.id) {
      lost(slot, "it answered request " + std::to_string(slot.frame.id) + ", which it was not handling");
      return;
    }
    if (slot.writing) {
      // Answered before reading all of its request: the body is still being written from
      // the job's buffer. Held (the channel is not read meanwhile) until the write ends.
      slot.answer_held = true;
      return;
    }
    slot.timer.cancel();
    Job job = std::move(*slot.job);
    slot.job.reset();
    slot.state = State::idle;
    m_idle.push_back(&slot);
    Reply reply{slot.frame.status, std::move(slot.rx_meta), std::move(slot.rx_body)};
    if (!response_status_allowed(reply.status)) {
      // User code's status (a ServingError subclass): 1xx, 204 and 304 cannot carry the
      // body every answer has.
      reply = Reply{500, "application/json",
                    error_body("InvalidStatus", "the handler answered status " + std::to_string(reply.status) +
                                                    " (a worker may answer 200-599, except 204 and 304)")};
    }
    finish(job, std::move(reply));
    pump();
    break;
  }
  case FrameKind::request:
    lost(slot, "it sent a request frame");
    return;
  }
  read_header(slot);
}

void
WorkerPool::submit(Job job)
{
  m_queue.push_back(std::move(job));
  pump();
}

void
WorkerPool::pump()
{
  while (!m_queue.empty() && !m_idle.empty()) {
    Slot* slot = m_idle.back(); // the most recently used worker: warm caches
    if (!m_processes.running(slot->pid)) {
      lost(*slot, "it exited"); // its channel may live on in a child it forked
      continue;
    }
    m_idle.pop_back();
    Job job = std::move(m_queue.front());
    m_queue.pop_front();
    if (job.gone && job.gone()) {
      // Its client closed the connection: nobody would read the answer.
      spdlog::debug("request {} dropped: its client has gone", job.id);
      m_idle.push_back(slot);
      finish(job, Reply{503, "application/json", error_body("ServiceUnavailable", "the client has gone")});
      continue;
    }
    send(*slot, std::move(job));
  }
}

void
WorkerPool::send(Slot& slot, Job job)
{
  slot.state = State::busy;
  slot.writing = true;
  slot.job = std::move(job);
  slot.job_timed_out = false;
  Job& j = *slot.job;
  slot.tx_meta = request_meta(j.content_type, j.accept);
  slot.tx_header =
      encode_header(FrameHeader{FrameKind::request, 0, j.id, static_cast<std::uint32_t>(slot.tx_meta.size()),
                                static_cast<std::uint64_t>(j.body.size())});
  const auto generation = slot.generation;
  const std::array<asio::const_buffer, 3> buffers{asio::buffer(slot.tx_header), asio::buffer(slot.tx_meta),
                                                  asio::buffer(j.body)};
  asio::async_write(slot.socket, buffers, transfer_all_at_once,
                    [this, &slot, generation](const boost::system::error_code& ec, std::size_t /*n*/) {
                      if (generation != slot.generation) {
                        return;
                      }
                      slot.writing = false;
                      if (ec) {
                        lost(slot, "writing the request to it failed: " + ec.message());
                        return;
                      }
                      // The body is not needed any more: free it while the worker computes.
                      if (slot.job) {
                        const bool large = slot.job->body.size() >= (std::size_t{1} << 20);
                        std::string().swap(slot.job->body);
                        slot.job->hold.reset();
                        if (large) {
                          m_heap_trim.large_released(); // memory follows the bodies held, a moment later
                        }
                      }
                      if (slot.answer_held) {
                        slot.answer_held = false;
                        on_frame(slot);
                      }
                    });
  slot.timer.expires_after(m_config.timeout);
  slot.timer.async_wait([this, &slot, generation](const boost::system::error_code& ec) {
    if (ec || generation != slot.generation || !slot.job) {
      return;
    }
    slot.job_timed_out = true;
    finish(*slot.job, Reply{504, "application/json",
                            error_body("Timeout", "the request took longer than the model server timeout (" +
                                                      seconds_text(m_config.timeout) +
                                                      ", SAGEMAKER_MODEL_SERVER_TIMEOUT); worker " +
                                                      std::to_string(slot.index) + " was replaced")});
    // lost() closes the channel (a pending write of the body stops) before the job goes.
    lost(slot, "it was still working on a request after " + seconds_text(m_config.timeout));
  });
}

void
WorkerPool::lost(Slot& slot, const std::string& why)
{
  if (slot.state == State::restarting || slot.state == State::stopped) {
    return;
  }
  const bool was_loading = slot.state == State::starting;
  ++slot.generation;
  boost::system::error_code ignored;
  slot.socket.close(ignored);
  slot.exit_watch.close(ignored);
  slot.timer.cancel();
  std::erase(m_idle, &slot);
  slot.state = State::restarting;
  slot.writing = false;
  slot.answer_held = false;
  slot.reading_payload = false;
  slot.exit_checks_deferred = 0;
  if (slot.job) {
    finish(*slot.job,
           Reply{500, "application/json",
                 error_body("WorkerDied", "worker " + std::to_string(slot.index) + " (pid " + std::to_string(slot.pid) +
                                              ") stopped while handling this request: " + why)});
    slot.job.reset();
  }
  // Whatever it is doing, it is done: a worker never outlives its channel.
  m_processes.signal(slot.pid, SIGKILL);
  if (was_loading) {
    ++slot.failures;
    const std::string message = slot.fatal_message.empty()
                                    ? "worker " + std::to_string(slot.index) + " (pid " + std::to_string(slot.pid) +
                                          ") stopped while loading the model: " + why + " (its output is above)"
                                    : slot.fatal_message;
    if (!all_loaded_once()) {
      fatal(message);
      return;
    }
    spdlog::error("{}", message);
  } else {
    spdlog::warn("worker {} (pid {}) is replaced: {}", slot.index, slot.pid, why);
  }
  ++m_restarts;
  await_exit(slot, Clock::now() + 5s);
}

void
WorkerPool::await_exit(Slot& slot, Clock::time_point give_up)
{
  if (m_processes.running(slot.pid) && Clock::now() < give_up) {
    const auto generation = slot.generation;
    slot.timer.expires_after(5ms);
    slot.timer.async_wait([this, &slot, generation, give_up](const boost::system::error_code& ec) {
      if (!ec && generation == slot.generation) {
        await_exit(slot, give_up);
      }
    });
    return;
  }
  // Back off when it keeps failing to load (a model_fn that fails now and then).
  const auto delay =
      slot.failures == 0 ? 0ms : std::min<std::chrono::milliseconds>(100ms * (1 << std::min(slot.failures, 9)), 30s);
  const auto generation = slot.generation;
  slot.timer.expires_after(delay);
  slot.timer.async_wait([this, &slot, generation](const boost::system::error_code& ec) {
    if (!ec && generation == slot.generation && !m_fatal) {
      spawn(slot);
    }
  });
}

// The process's exit, as the supervisor reaps it. A frame it wrote before exiting (fatal)
// is read first: the channel's reader then reports it. That includes a frame already out of
// the socket whose handler has not run yet (the fatal frame's traceback was once lost so):
// expire_queue() looks again within 250 ms, four times at most.
void
WorkerPool::check_alive(Slot& slot)
{
  const bool alive_state = slot.state == State::starting || slot.state == State::idle || slot.state == State::busy;
  boost::system::error_code ec;
  if (!alive_state || slot.pid <= 0 || slot.socket.available(ec) != 0 || m_processes.running(slot.pid)) {
    return;
  }
  // Bounded: a frame cut short, its channel held open by a child the worker forked, never ends.
  constexpr int k_max_deferred_checks = 4;
  if (slot.reading_payload && ++slot.exit_checks_deferred <= k_max_deferred_checks) {
    return;
  }
  lost(slot, "it exited");
}

// A pidfd only wakes the loop at the worker's exit (the supervisor reaps it); where
// pidfd_open is missing (Linux < 5.3), expire_queue's look every 250 ms at most does.
void
WorkerPool::watch_exit(Slot& slot)
{
  boost::system::error_code ec;
  slot.exit_watch.close(ec);
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, slot.pid, 0));
  if (fd < 0) {
    return;
  }
  slot.exit_watch.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  const auto generation = slot.generation;
  slot.exit_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                             [this, &slot, generation](const boost::system::error_code& error) {
                               if (!error && generation == slot.generation) {
                                 check_alive(slot);
                               }
                             });
}

void
WorkerPool::expire_queue()
{
  m_processes.reap();
  // A worker's death is learnt from the process (the supervisor reaps it), not only from
  // its channel: a child forked by user code keeps the channel open after the worker died.
  for (auto& slot : m_slots) {
    check_alive(*slot);
  }
  const auto now = Clock::now();
  while (!m_queue.empty() && now - m_queue.front().arrived >= m_config.timeout) {
    Job job = std::move(m_queue.front());
    m_queue.pop_front();
    finish(job, Reply{503, "application/json",
                      error_body("ServiceUnavailable", "no worker became free within the model server timeout (" +
                                                           seconds_text(m_config.timeout) + ")")});
  }
  m_queue_timer.expires_after(std::clamp<std::chrono::milliseconds>(m_config.timeout / 10, 10ms, 250ms));
  m_queue_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      expire_queue();
    }
  });
}

void
WorkerPool::stop_workers(std::chrono::milliseconds grace)
{
  m_queue_timer.cancel();
  for (auto& slot : m_slots) {
    ++slot->generation;
    boost::system::error_code ignored;
    slot->socket.close(ignored); // EOF: the worker leaves its loop and exits
    slot->exit_watch.close(ignored);
    slot->timer.cancel();
    slot->state = State::stopped;
  }
  const auto wait_all = [&](Clock::time_point deadline) {
    while (Clock::now() < deadline) {
      const bool any = std::any_of(m_slots.begin(), m_slots.end(),
                                   [&](const auto& s) { return s->pid > 0 && m_processes.running(s->pid); });
      if (!any) {
        return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return false;
  };
  if (!wait_all(Clock::now() + grace)) {
    for (auto& slot : m_slots) {
      if (slot->pid > 0 && m_processes.running(slot->pid)) {
        spdlog::warn("worker {} (pid {}) did not exit: sending SIGKILL", slot->index, slot->pid);
        m_processes.signal(slot->pid, SIGKILL);
      }
    }
    wait_all(Clock::now() + 2s);
  }
  // Requests still waiting are answered (only when stopping at once).
  for (auto& slot : m_slots) {
    if (slot->job) {
      finish(*slot->job, Reply{503, "application/json", error_body("ServiceUnavailable", "the server is stopping")});
      slot->job.reset();
    }
  }
  while (!m_queue.empty()) {
    finish(m_queue.front(), Reply{503, "application/json", error_body("ServiceUnavailable", "the server is stopping")});
    m_queue.pop_front();
  }
}

} // namespace serve
