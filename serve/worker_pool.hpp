// The Python workers as seen from the front: one slot per worker, each with one request
// in flight at most; requests wait in one FIFO queue for the next idle worker. A worker
// that times out is killed and replaced; one that dies is restarted and its request
// answered 500; none is ever left waiting. Single-threaded: everything runs on the
// io_context's one thread.
#pragma once

#include "serve/framing.hpp"
#include "serve/heap_trim.hpp"
#include "serve/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace serve {

struct Reply
{
  unsigned status = 200;
  std::string content_type;
  std::string body;
};

struct Job
{
  std::uint64_t id = 0;
  std::string content_type;
  std::string accept;
  std::string body;
  std::function<void(Reply&&)> done; // called exactly once
  // Whether the client has gone (its request is then dropped before it reaches a worker).
  std::function<bool()> gone;
  // Keeps the body counted in the front's buffered bytes until it is written to a worker.
  std::shared_ptr<void> hold;
  std::chrono::steady_clock::time_point arrived;
};

class WorkerPool
{
public:
  // `on_fatal` is called (once) when the pool cannot come up: a worker failed to load the
  // model before every worker had loaded it once, or loading took too long.
  WorkerPool(boost::asio::io_context& io, WorkerProcesses& processes, const ServerConfig& config, HeapTrim& heap_trim,
             std::function<void(const std::string&)> on_fatal);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void start();
  void submit(Job job);
  // A worker has the model loaded (what /ping reports).
  bool any_ready() const;
  // Requests queued or in flight.
  std::size_t outstanding() const;
  std::uint64_t
  restarts() const
  {
    return m_restarts;
  }
  // Close every channel (a worker exits at EOF) and wait, bounded, for the processes;
  // SIGKILL what is left. Blocking: called once the io_context has stopped.
  void stop_workers(std::chrono::milliseconds grace);

private:
  enum class State { starting, idle, busy, restarting, stopped };
  struct Slot
  {
    explicit Slot(boost::asio::io_context& io) : socket(io), timer(io), exit_watch(io) {}
    int index = 0;
    int pid = -1;
    State state = State::stopped;
    bool loaded_once = false; // this slot's worker has sent ready at least once
    bool loaded_this_life = false;
    int failures = 0;             // consecutive deaths before ready
    std::uint64_t generation = 0; // bumped when the worker is replaced: stale handlers stop
    boost::asio::local::stream_protocol::socket socket;
    boost::asio::steady_timer timer;
    boost::asio::posix::stream_descriptor exit_watch; // a pidfd: wakes the loop when it exits
    std::array<char, k_frame_header_size> rx_header{};
    FrameHeader frame;
    std::string rx_meta;
    std::string rx_body;
    std::optional<Job> job;
    bool job_timed_out = false;
    bool writing = false;     // the request (its body, from the job) is being written
    bool answer_held = false; // its answer came while writing: handled when the write ends
    // A frame's meta and body are being read: already out of the socket, not yet handled.
    bool reading_payload = false;
    int exit_checks_deferred = 0; // check_alive() found it exited while reading_payload
    std::array<char, k_frame_header_size> tx_header{};
    std::string tx_meta;
    std::string fatal_message;
  };

  void spawn(Slot& slot);
  void read_header(Slot& slot);
  void read_payload(Slot& slot);
  void on_frame(Slot& slot);
  void send(Slot& slot, Job job);
  void lost(Slot& slot, const std::string& why);
  void watch_exit(Slot& slot);
  void check_alive(Slot& slot);
  void await_exit(Slot& slot, std::chrono::steady_clock::time_point give_up);
  void pump();
  void expire_queue();
  void fatal(const std::string& message);
  bool all_loaded_once() const;

  boost::asio::io_context& m_io;
  WorkerProcesses& m_processes;
  ServerConfig m_config;
  HeapTrim& m_heap_trim;
  std::function<void(const std::string&)> m_on_fatal;
  std::vector<std::unique_ptr<Slot>> m_slots;
  std::vector<Slot*> m_idle;
  std::deque<Job> m_queue;
  boost::asio::steady_timer m_queue_timer;
  bool m_fatal = false;
  std::uint64_t m_restarts = 0;
};

} // namespace serve
