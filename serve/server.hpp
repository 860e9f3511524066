// The model server: an HTTP front (Boost.Beast, one thread) that answers /ping and
// /invocations, and a pool of Python worker processes, each with the user's model loaded,
// that it talks to over a Unix socket per worker (serve/framing.hpp). Knows nothing of
// the launcher: how a worker process is started is the caller's (WorkerProcesses).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace serve {

// How worker processes are started, watched and stopped (the launcher's supervisor).
class WorkerProcesses
{
public:
  virtual ~WorkerProcesses() = default;
  // Start worker `slot` with `channel_fd` (one end of a socket pair, not close-on-exec)
  // as its channel to the front; returns its pid, which is also its process group.
  // Throws std::exception when it cannot be started.
  virtual int start(int slot, int channel_fd) = 0;
  // Whether it is still running; reaps it (and any orphan) when it has exited.
  virtual bool running(int pid) = 0;
  // Send `signo` to its process group.
  virtual void signal(int pid, int signo) = 0;
  // Reap whatever exited meanwhile (orphans of the workers' own children, as PID 1 or a
  // subreaper); called now and then.
  virtual void
  reap()
  {
  }
};

struct ServerConfig
{
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 8080; // 0: any free port (logged)
  int workers = 1;
  std::chrono::milliseconds timeout{60000};             // per request, once a worker has it
  std::chrono::milliseconds model_load_timeout{600000}; // module import + model_fn, per worker
  std::chrono::milliseconds idle_connection_timeout{60000};
  std::string default_accept = "application/json";
  std::uint64_t max_body_size = 1ULL << 30;     // request bodies (413 beyond)
  std::uint64_t max_response_size = 4ULL << 30; // what a worker may answer
  // Request body bytes held across all connections (received, not yet handed to a
  // worker): beyond it the front stops reading bodies until some drain (back-pressure).
  std::uint64_t max_buffered_bytes = 512ULL << 20;
  std::function<void(std::uint16_t port)> on_listening;
};

enum class ServeFailure {
  bind,       // the port could not be bound
  model_load, // a worker could not import the module or run model_fn at start
  system,     // a system call failed
};

class ServeError : public std::runtime_error
{
public:
  ServeError(ServeFailure failure, const std::string& message) : std::runtime_error(message), m_failure(failure) {}
  ServeFailure
  failure() const
  {
    return m_failure;
  }

private:
  ServeFailure m_failure;
};

struct ServeOutcome
{
  int stop_signal = 0;          // the signal that stopped the server (after draining)
  bool stopped_at_once = false; // a second stop signal: nothing more was waited for
  std::uint64_t requests = 0;
  std::uint64_t worker_restarts = 0;
};

// Serve until SIGTERM, SIGINT or SIGQUIT (blocked in the calling thread and collected
// with a signalfd): stop accepting, finish the requests in flight, stop the workers,
// return. A second such signal stops at once. Throws ServeError.
ServeOutcome run_server(const ServerConfig& config, WorkerProcesses& processes);

} // namespace serve
