// The HTTP front: Boost.Beast on one thread, keep-alive, 100-continue, bounded bodies.
#include "serve/routing.hpp"
#include "serve/server.hpp"
#include "serve/worker_pool.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <cstdint>
#include <optional>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unordered_set>

namespace serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

class Front;

std::optional<std::string_view>
header(const http::request_header<>& req, std::string_view name)
{
  const auto it = req.find(beast::string_view(name.data(), name.size()));
  if (it == req.end()) {
    return std::nullopt;
  }
  return std::string_view(it->value().data(), it->value().size());
}

// The Content-Length a request declares (the parser has checked it), or nullopt.
// (Beast's own accessors return boost::optional, which GCC 12 flags as maybe
// uninitialized in sanitizer builds.)
std::optional<std::uint64_t>
declared_length(const http::request_header<>& req)
{
  const auto it = req.find(http::field::content_length);
  if (it == req.end()) {
    return std::nullopt;
  }
  const beast::string_view text = it->value();
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9' || value > (UINT64_MAX - 9) / 10) {
      return std::nullopt;
    }
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return text.empty() ? std::nullopt : std::optional<std::uint64_t>(value);
}

class Session : public std::enable_shared_from_this<Session>
{
public:
  Session(tcp::socket socket, Front& front) : m_stream(std::move(socket)), m_front(front) {}
  void start() { read_header(); }
  // Between requests (waiting for the next one): may be closed when draining.
  bool idle() const { return m_idle; }
  void close()
  {
    beast::error_code ignored;
    m_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    m_stream.close();
  }

private:
  void read_header();
  void on_header(beast::error_code ec);
  void read_body();
  void read_body_direct(std::uint64_t size);
  void on_request(beast::error_code ec);
  void dispatch(const http::request_header<>& req, bool keep_alive, std::string body);
  void respond(Reply&& reply, std::string_view allow = {});
  void on_written(beast::error_code ec, bool keep_alive);

  beast::tcp_stream m_stream;
  Front& m_front;
  beast::flat_buffer m_buffer;
  std::optional<http::request_parser<http::string_body>> m_parser;
  std::optional<http::response<http::string_body>> m_response;
  std::string m_body;
  bool m_idle = true;
  bool m_keep_alive = true;
  bool m_head = false;
};

class Front
{
public:
  Front(asio::io_context& io, const ServerConfig& config, WorkerPool& pool)
    : m_io(io), m_config(config), m_pool(pool), m_acceptor(io)
  {
  }

  std::uint16_t
  listen()
  {
    beast::error_code ec;
    const auto address = asio::ip::make_address(m_config.bind_address, ec);
    if (ec) {
      throw ServeError(ServeFailure::bind, "bad bind address \"" + m_config.bind_address + "\": " + ec.message());
    }
    const tcp::endpoint endpoint(address, m_config.port);
    const std::string where = m_config.bind_address + ":" + std::to_string(m_config.port);
    if (m_acceptor.open(endpoint.protocol(), ec); ec) {
      throw ServeError(ServeFailure::bind, "cannot open a socket for " + where + ": " + ec.message());
    }
    m_acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (m_acceptor.bind(endpoint, ec); ec) {
      throw ServeError(ServeFailure::bind, "cannot listen on " + where + ": " + ec.message() +
                                             " (SAGEMAKER_BIND_TO_PORT / --port)");
    }
    if (m_acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
      throw ServeError(ServeFailure::bind, "cannot listen on " + where + ": " + ec.message());
    }
    accept();
    return m_acceptor.local_endpoint().port();
  }

  void
  drain()
  {
    m_draining = true;
    beast::error_code ignored;
    m_acceptor.close(ignored);
    for (const auto& weak : m_sessions) {
      if (auto s = weak.lock(); s && s->idle()) {
        s->close();
      }
    }
  }

  bool draining() const { return m_draining; }
  bool drained() const { return m_busy_sessions == 0 && m_pool.outstanding() == 0; }
  const ServerConfig& config() const { return m_config; }
  WorkerPool& pool() { return m_pool; }
  std::uint64_t next_id() { return ++m_requests; }
  std::uint64_t requests() const { return m_requests; }
  void busy(int delta) { m_busy_sessions += delta; }

private:
  void
  accept()
  {
    m_acceptor.async_accept(m_io, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !m_acceptor.is_open()) {
        return;
      }
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(std::move(socket), *this);
        if (m_sessions.size() > 1024) {
          std::erase_if(m_sessions, [](const auto& w) { return w.expired(); });
        }
        m_sessions.push_back(session);
        session->start();
      } else {
        spdlog::warn("accept: {}", ec.message()); // EMFILE and the like: keep serving
      }
      accept();
    });
  }

  asio::io_context& m_io;
  const ServerConfig& m_config;
  WorkerPool& m_pool;
  tcp::acceptor m_acceptor;
  std::vector<std::weak_ptr<Session>> m_sessions;
  int m_busy_sessions = 0;
  bool m_draining = false;
  std::uint64_t m_requests = 0;
};

void
Session::read_header()
{
  m_idle = true;
  m_parser.emplace();
  m_parser->header_limit(64 * 1024);
  m_parser->body_limit(m_front.config().max_body_size);
  m_stream.expires_after(m_front.config().idle_connection_timeout);
  http::async_read_header(m_stream, m_buffer, *m_parser,
                          [self = shared_from_this()](beast::error_code ec, std::size_t /*n*/) { self->on_header(ec); });
}

void
Session::on_header(beast::error_code ec)
{
  if (ec) {
    // Closed, timed out or not HTTP: nothing to answer (a bad request gets a 400 below).
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      close();
      return;
    }
    m_idle = false;
    m_front.busy(1);
    m_keep_alive = false;
    if (ec == http::error::body_limit) {
      // Content-Length over the limit: refused before a byte of the body is read.
      respond(Reply{413, "application/json",
                    error_body("PayloadTooLarge", "the body is larger than " +
                                                    std::to_string(m_front.config().max_body_size) +
                                                    " bytes (SMLAUNCH_MAX_BODY_SIZE)")});
      return;
    }
    respond(Reply{ec == http::error::header_limit ? 431U : 400U, "application/json",
                  error_body("BadRequest", "the request could not be parsed: " + ec.message())});
    return;
  }
  m_idle = false;
  m_front.busy(1);
  const auto& req = m_parser->get();
  // A body we will refuse is not waited for.
  if (const auto length = declared_length(req); length && *length > m_front.config().max_body_size) {
    m_keep_alive = false;
    respond(Reply{413, "application/json",
                  error_body("PayloadTooLarge", "the body has " + std::to_string(*length) +
                                                  " bytes; this server accepts at most " +
                                                  std::to_string(m_front.config().max_body_size) +
                                                  " (SMLAUNCH_MAX_BODY_SIZE)")});
    return;
  }
  const auto expect = header(req, "Expect");
  if (expect && beast::iequals(beast::string_view(expect->data(), expect->size()), "100-continue")) {
    auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
    http::async_write(m_stream, *interim, [self = shared_from_this(), interim](beast::error_code e, std::size_t /*n*/) {
      if (e) {
        self->m_front.busy(-1);
        self->close();
        return;
      }
      self->read_body();
    });
    return;
  }
  read_body();
}

// Large transfers in one system call where the kernel allows (Asio's composed
// operations otherwise split them into 64 KiB pieces).
std::size_t
transfer_all_at_once(const boost::system::error_code& ec, std::size_t /*transferred*/)
{
  return ec ? 0 : std::size_t{64} << 20;
}

void
Session::read_body()
{
  if (m_parser->is_done()) {
    dispatch(m_parser->get().base(), m_parser->keep_alive(), std::string());
    return;
  }
  if (const auto length = declared_length(m_parser->get()); length && !m_parser->chunked()) {
    read_body_direct(*length);
    return;
  }
  // Chunked: Beast's parser decodes it. A slow upload is bounded like a slow model.
  m_stream.expires_after(m_front.config().timeout);
  http::async_read(m_stream, m_buffer, *m_parser,
                   [self = shared_from_this()](beast::error_code ec, std::size_t /*n*/) { self->on_request(ec); });
}

// A body of known length goes straight into the string sent to the worker: what the
// header read already buffered, then the rest from the socket in as few reads as the
// kernel allows.
void
Session::read_body_direct(std::uint64_t size)
{
  try {
    m_body = std::string();
    m_body.resize(size);
  } catch (const std::bad_alloc&) {
    m_keep_alive = false;
    respond(Reply{413, "application/json",
                  error_body("PayloadTooLarge", "a body of " + std::to_string(size) + " bytes does not fit in memory")});
    return;
  }
  const std::size_t buffered = std::min<std::size_t>(m_buffer.size(), size);
  asio::buffer_copy(asio::buffer(m_body.data(), buffered), m_buffer.data());
  m_buffer.consume(buffered);
  if (buffered == size) {
    dispatch(m_parser->get().base(), m_parser->keep_alive(), std::move(m_body));
    return;
  }
  m_stream.expires_after(m_front.config().timeout);
  asio::async_read(m_stream, asio::buffer(m_body.data() + buffered, size - buffered), transfer_all_at_once,
                   [self = shared_from_this()](beast::error_code ec, std::size_t /*n*/) {
                     if (ec) {
                       self->m_front.busy(-1);
                       self->close();
                       return;
                     }
                     self->m_stream.expires_never();
                     self->dispatch(self->m_parser->get().base(), self->m_parser->keep_alive(), std::move(self->m_body));
                   });
}

void
Session::on_request(beast::error_code ec)
{
  if (ec == http::error::body_limit) {
    m_keep_alive = false;
    respond(Reply{413, "application/json",
                  error_body("PayloadTooLarge", "the body is larger than " + std::to_string(m_front.config().max_body_size) +
                                                  " bytes (SMLAUNCH_MAX_BODY_SIZE)")});
    return;
  }
  if (ec) {
    m_front.busy(-1);
    close();
    return;
  }
  m_stream.expires_never();
  const bool keep_alive = m_parser->keep_alive();
  http::request<http::string_body> req = m_parser->release();
  dispatch(req.base(), keep_alive, std::move(req.body()));
}

void
Session::dispatch(const http::request_header<>& req, bool keep_alive, std::string body)
{
  m_stream.expires_never();
  m_keep_alive = keep_alive;
  m_head = req.method() == http::verb::head;
  const std::string_view method(req.method_string().data(), req.method_string().size());
  const std::string_view target(req.target().data(), req.target().size());
  switch (route_for(method, target)) {
  case Route::ping:
    if (m_front.pool().any_ready() && !m_front.draining()) {
      respond(Reply{200, "", ""});
    } else {
      respond(Reply{503, "application/json",
                    error_body("ServiceUnavailable", m_front.draining() ? "the server is stopping" : "the model is loading")});
    }
    return;
  case Route::method_not_allowed:
    respond(Reply{405, "application/json",
                  error_body("MethodNotAllowed", std::string(method) + " is not allowed on " + std::string(target))},
            allowed_methods(target));
    return;
  case Route::not_found:
    respond(Reply{404, "application/json", error_body("NotFound", "no such path: " + std::string(target) +
                                                                    " (this server answers /ping and /invocations)")});
    return;
  case Route::invocations:
    break;
  }
  Job job;
  job.id = m_front.next_id();
  job.content_type = resolve_content_type(header(req, "ContentType"), header(req, "Content-Type"));
  job.accept = resolve_accept(header(req, "Accept"), m_front.config().default_accept);
  job.body = std::move(body);
  job.arrived = Clock::now();
  job.done = [self = shared_from_this()](Reply&& reply) { self->respond(std::move(reply)); };
  m_front.pool().submit(std::move(job));
}

void
Session::respond(Reply&& reply, std::string_view allow)
{
  const bool keep_alive = m_keep_alive && !m_front.draining();
  m_response.emplace(static_cast<http::status>(reply.status), 11);
  m_response->set(http::field::server, "smlaunch");
  if (!reply.content_type.empty()) {
    m_response->set(http::field::content_type, reply.content_type);
  }
  if (!allow.empty()) {
    m_response->set(http::field::allow, beast::string_view(allow.data(), allow.size()));
  }
  m_response->keep_alive(keep_alive);
  m_response->body() = std::move(reply.body);
  m_response->prepare_payload();
  if (m_head) {
    m_response->body().clear(); // HEAD: Content-Length as for GET, no body
  }
  http::async_write(m_stream, *m_response, [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t /*n*/) {
    self->on_written(ec, keep_alive);
  });
}

void
Session::on_written(beast::error_code ec, bool keep_alive)
{
  m_response.reset();
  m_front.busy(-1);
  if (ec || !keep_alive) {
    close();
  } else {
    read_header();
  }
}

} // namespace

ServeOutcome
run_server(const ServerConfig& config, WorkerProcesses& processes)
{
  // Collected through a signalfd on the loop, never by an async handler (tini's rule).
  sigset_t stop_set;
  sigemptyset(&stop_set);
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) {
    sigaddset(&stop_set, sig);
  }
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  const int sfd = ::signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    throw ServeError(ServeFailure::system, "signalfd: " + std::system_category().message(errno));
  }

  asio::io_context io(1);
  asio::posix::stream_descriptor signals(io, sfd);
  std::optional<std::string> fatal;
  ServeOutcome outcome;
  WorkerPool pool(io, processes, config, [&](const std::string& message) {
    fatal = message;
    io.stop();
  });
  Front front(io, config, pool);
  const std::uint16_t port = front.listen();
  spdlog::info("listening on http://{}:{} with {} worker(s), timeout {} ms", config.bind_address, port, config.workers,
               config.timeout.count());
  if (config.on_listening) {
    config.on_listening(port);
  }

  asio::steady_timer drain_deadline(io);
  const auto finish_drain = [&] {
    if (front.draining() && front.drained()) {
      io.stop();
    }
  };
  signalfd_siginfo info{};
  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_read_some(asio::buffer(&info, sizeof(info)), [&](beast::error_code ec, std::size_t n) {
      if (ec || n != sizeof(info)) {
        return;
      }
      const int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGHUP) {
        spdlog::info("SIGHUP ignored");
      } else if (front.draining()) {
        spdlog::warn("second stop signal ({}): stopping now", sig);
        io.stop();
        return;
      } else {
        outcome.stop_signal = sig;
        spdlog::info("signal {}: no new connections; finishing {} request(s) in flight", sig, pool.outstanding());
        front.drain();
        drain_deadline.expires_after(config.timeout + 5s);
        drain_deadline.async_wait([&](beast::error_code e) {
          if (!e) {
            spdlog::warn("requests still in flight after {} ms: stopping now", (config.timeout + 5s).count());
            io.stop();
          }
        });
        asio::post(io, finish_drain);
      }
      wait_signal();
    });
  };
  wait_signal();
  // Drained also means no session is reading a body: look again now and then.
  asio::steady_timer drain_poll(io);
  std::function<void()> poll;
  poll = [&] {
    drain_poll.expires_after(50ms);
    drain_poll.async_wait([&](beast::error_code ec) {
      if (!ec) {
        finish_drain();
        poll();
      }
    });
  };
  poll();

  pool.start();
  io.run();
  outcome.requests = front.requests();
  outcome.worker_restarts = pool.restarts();
  pool.stop_workers(5s);
  if (fatal) {
    throw ServeError(ServeFailure::model_load, *fatal);
  }
  spdlog::info("stopped after {} request(s)", outcome.requests);
  return outcome;
}

} // namespace serve
