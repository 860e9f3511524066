// The HTTP front: Boost.Beast on one thread, keep-alive, 100-continue, bounded bodies.
#include "serve/heap_trim.hpp"
#include "serve/routing.hpp"
#include "serve/server.hpp"
#include "serve/worker_pool.hpp"

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
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

// A request's header, and what of the connection's bytes waits unparsed (a chunk line, a
// trailer): their memory follows this, not what a client sends. A header costs about 20
// times its size in Beast's fields, hence also a limit on their number.
constexpr std::uint32_t k_header_limit = 16 * 1024;
constexpr std::size_t k_max_header_fields = 100;
constexpr std::size_t k_max_unparsed = 64 * 1024;

// Descriptors that workers (user code) must not inherit: the port and client connections.
void
close_on_exec(int fd)
{
  if (fd >= 0) {
    ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
  }
}

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

// The request body bytes the front holds, across all connections (--max-buffered-bytes).
// Shared: a hold may outlive the front (a job in a destroyed pool).
struct BufferBudget
{
  std::uint64_t used = 0;
};

// Bytes of one body counted in the budget until the hold is released.
class BufferHold
{
public:
  explicit BufferHold(std::shared_ptr<BufferBudget> budget) : m_budget(std::move(budget)) {}
  ~BufferHold() { m_budget->used -= m_bytes; }
  BufferHold(const BufferHold&) = delete;
  BufferHold& operator=(const BufferHold&) = delete;
  void
  add(std::uint64_t n)
  {
    m_bytes += n;
    m_budget->used += n;
  }
  std::uint64_t
  bytes() const
  {
    return m_bytes;
  }

private:
  std::shared_ptr<BufferBudget> m_budget;
  std::uint64_t m_bytes = 0;
};

// What RFC 9112 section 6.3 allows of Transfer-Encoding: exactly "chunked" (all fields
// together). 0 when acceptable or absent; else the status to answer (and close).
unsigned
transfer_encoding_refusal(const http::request_header<>& req)
{
  std::vector<std::string> codings;
  for (auto range = req.equal_range(http::field::transfer_encoding); range.first != range.second; ++range.first) {
    const beast::string_view value = range.first->value();
    std::string current;
    for (const char c : value) {
      if (c == ',') {
        codings.push_back(current);
        current.clear();
      } else if (c != ' ' && c != '\t') {
        current += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    codings.push_back(current);
  }
  std::erase_if(codings, [](const std::string& c) { return c.empty(); });
  if (req.count(http::field::transfer_encoding) == 0) {
    return 0;
  }
  if (codings.empty() || codings.back() != "chunked") {
    return 400; // the body's end cannot be known: its bytes would run as the next request
  }
  if (codings.size() == 1) {
    return 0;
  }
  const bool chunked_twice = std::count(codings.begin(), codings.end(), "chunked") > 1;
  return chunked_twice ? 400U : 501U; // gzip, chunked: a coding this server does not decode
}

// A content type from user code goes on the wire only without control characters.
bool
is_clean_field_value(std::string_view value)
{
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

class Session : public std::enable_shared_from_this<Session>
{
public:
  Session(tcp::socket socket, Front& front)
      : m_stream(std::move(socket)), m_front(front), m_buffer(k_max_unparsed), m_wait(m_stream.get_executor())
  {
  }
  void
  start()
  {
    read_header();
  }
  // Between requests (waiting for the next one): may be closed when draining.
  bool
  idle() const
  {
    return m_idle;
  }
  void
  close()
  {
    beast::error_code ignored;
    m_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    m_stream.close();
  }

private:
  void read_header();
  void scan_header();
  void on_header(beast::error_code ec);
  void read_body();
  void read_body_direct(std::uint64_t size);
  void read_direct_more();
  void read_chunked_more();
  void when_room(void (Session::*then)());
  void on_body_error(beast::error_code ec);
  bool gone();
  void dispatch(const http::request_header<>& req, bool keep_alive, std::string body);
  void respond(Reply&& reply, std::string_view allow = {});
  void write_response(Reply&& reply, std::string_view allow, bool keep_alive);
  void on_written(beast::error_code ec, bool keep_alive);

  beast::tcp_stream m_stream;
  Front& m_front;
  beast::flat_buffer m_buffer;
  std::optional<http::request_parser<http::string_body>> m_parser;
  std::optional<http::request_header<>> m_header; // a chunked request's, as it was before its trailer
  bool m_header_keep_alive = true;
  std::optional<http::response<http::string_body>> m_response;
  std::string m_body;
  std::uint64_t m_body_filled = 0;     // bytes of m_body received (its size is what was allocated)
  std::uint64_t m_expected = 0;        // a body of known length: its size
  std::shared_ptr<BufferHold> m_hold;  // this request's body bytes in the budget
  Clock::time_point m_body_deadline{}; // an upload, pauses included, is bounded by --timeout
  asio::steady_timer m_wait;           // paused for room in the budget
  bool m_idle = true;
  bool m_keep_alive = true;
  bool m_head = false;
  bool m_must_close = false; // whatever the request says (HTTP/1.0 with Transfer-Encoding)
  std::size_t m_scanned = 0; // bytes of the next header looked at for its end
  std::size_t m_lines = 0;   // line ends among them
  unsigned m_version = 11;
};

class Front
{
public:
  Front(asio::io_context& io, const ServerConfig& config, WorkerPool& pool, HeapTrim& heap_trim)
      : m_io(io), m_config(config), m_pool(pool), m_heap_trim(heap_trim), m_acceptor(io), m_accept_pause(io)
  {
    m_spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  ~Front()
  {
    if (m_spare_fd >= 0) {
      ::close(m_spare_fd);
    }
  }
  Front(const Front&) = delete;
  Front& operator=(const Front&) = delete;

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
    close_on_exec(m_acceptor.native_handle()); // Asio opens it without SOCK_CLOEXEC
    m_acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (m_acceptor.bind(endpoint, ec); ec) {
      throw ServeError(ServeFailure::bind,
                       "cannot listen on " + where + ": " + ec.message() + " (SAGEMAKER_BIND_TO_PORT / --port)");
    }
    if (m_acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
      throw ServeError(ServeFailure::bind, "cannot listen on " + where + ": " + ec.message());
    }
    m_acceptor.native_non_blocking(true, ec);
    accept();
    return m_acceptor.local_endpoint().port();
  }

  void
  drain()
  {
    m_draining = true;
    beast::error_code ignored;
    m_acceptor.close(ignored);
    m_accept_pause.cancel();
    for (const auto& weak : m_sessions) {
      if (auto s = weak.lock(); s && s->idle()) {
        s->close();
      }
    }
  }

  bool
  draining() const
  {
    return m_draining;
  }
  bool
  drained() const
  {
    return m_busy_sessions == 0 && m_pool.outstanding() == 0;
  }
  const ServerConfig&
  config() const
  {
    return m_config;
  }
  WorkerPool&
  pool()
  {
    return m_pool;
  }
  HeapTrim&
  heap_trim()
  {
    return m_heap_trim;
  }
  std::uint64_t
  next_id()
  {
    return ++m_requests;
  }
  std::uint64_t
  requests() const
  {
    return m_requests;
  }
  void
  busy(int delta)
  {
    m_busy_sessions += delta;
  }
  const std::shared_ptr<BufferBudget>&
  budget() const
  {
    return m_budget;
  }
  bool
  room_to_buffer() const
  {
    return m_budget->used < m_config.max_buffered_bytes;
  }
  // Whether the body of `hold` may be read now: while under the ceiling, or as the one
  // body allowed beyond it (the first to wait), so a body larger than the ceiling, or
  // bodies that filled it together, still complete one at a time.
  bool
  may_buffer(const std::shared_ptr<BufferHold>& hold)
  {
    if (room_to_buffer()) {
      return true;
    }
    const auto current = m_overdraft.lock();
    if (!current) {
      m_overdraft = hold;
      return true;
    }
    return current == hold;
  }
  void
  end_overdraft(const std::shared_ptr<BufferHold>& hold)
  {
    if (hold && m_overdraft.lock() == hold) {
      m_overdraft.reset();
    }
  }
  std::uint64_t
  room_left() const
  {
    return room_to_buffer() ? m_config.max_buffered_bytes - m_budget->used : 0;
  }

private:
  void
  accept()
  {
    m_acceptor.async_accept(m_io, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !m_acceptor.is_open()) {
        return;
      }
      if (!ec) {
        close_on_exec(socket.native_handle()); // Asio accepts without SOCK_CLOEXEC
        socket.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(std::move(socket), *this);
        if (m_sessions.size() > 1024) {
          std::erase_if(m_sessions, [](const auto& w) { return w.expired(); });
        }
        m_sessions.push_back(session);
        session->start();
      } else {
        refused(ec);
        return;
      }
      accept();
    });
  }

  // EMFILE and the like: the connection stays queued, so accepting again at once would
  // spin. Shed one connection with the spare descriptor (it learns at once, rather than
  // waiting), log once per interval, try again a little later.
  void
  refused(const beast::error_code& ec)
  {
    const bool out_of_descriptors = ec == asio::error::no_descriptors || ec.value() == ENFILE;
    if (out_of_descriptors && m_spare_fd >= 0) {
      ::close(m_spare_fd);
      const int shed = ::accept4(m_acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (shed >= 0) {
        ::close(shed);
        ++m_shed;
      }
      m_spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    ++m_refusals;
    const auto now = Clock::now();
    if (now - m_last_refusal_log >= 10s) {
      m_last_refusal_log = now;
      spdlog::warn("accept failed {} time(s) ({}){}; backing off (RLIMIT_NOFILE, --workers)", m_refusals, ec.message(),
                   m_shed > 0 ? ", " + std::to_string(m_shed) + " connection(s) closed unanswered" : std::string());
      m_refusals = 0;
      m_shed = 0;
    }
    m_accept_pause.expires_after(50ms);
    m_accept_pause.async_wait([this](beast::error_code e) {
      if (!e && m_acceptor.is_open()) {
        accept();
      }
    });
  }

  asio::io_context& m_io;
  const ServerConfig& m_config;
  WorkerPool& m_pool;
  HeapTrim& m_heap_trim;
  tcp::acceptor m_acceptor;
  asio::steady_timer m_accept_pause;
  int m_spare_fd = -1;
  std::uint64_t m_refusals = 0;
  std::uint64_t m_shed = 0;
  Clock::time_point m_last_refusal_log{};
  std::shared_ptr<BufferBudget> m_budget = std::make_shared<BufferBudget>();
  std::weak_ptr<BufferHold> m_overdraft;
  std::vector<std::weak_ptr<Session>> m_sessions;
  int m_busy_sessions = 0;
  bool m_draining = false;
  std::uint64_t m_requests = 0;
};

void
Session::read_header()
{
  m_idle = true;
  m_head = false;
  m_must_close = false;
  m_hold.reset();
  m_header.reset();
  m_parser.emplace();
  m_parser->header_limit(k_header_limit);
  m_parser->body_limit(m_front.config().max_body_size);
  m_stream.expires_after(m_front.config().idle_connection_timeout);
  m_scanned = 0;
  m_lines = 0;
  scan_header();
}

// Beast keeps every field as it parses (about 20 times its size for short ones), and has no
// limit on their number: the header's lines are counted before it parses them.
void
Session::scan_header()
{
  const auto bytes = [this] {
    const auto data = m_buffer.data();
    return std::string_view(static_cast<const char*>(data.data()), data.size());
  };
  // RFC 9112 section 2.2: empty lines before a request-line are ignored.
  std::size_t empty = 0;
  while (m_scanned == 0 && empty < bytes().size() && (bytes()[empty] == '\r' || bytes()[empty] == '\n')) {
    ++empty;
  }
  m_buffer.consume(empty);
  const std::string_view text = bytes();
  bool complete = false;
  for (; m_scanned < text.size() && !complete; ++m_scanned) {
    if (text[m_scanned] == '\n') {
      ++m_lines;
      complete = m_scanned > 0 && (text[m_scanned - 1] == '\n' ||
                                   (text[m_scanned - 1] == '\r' && m_scanned > 1 && text[m_scanned - 2] == '\n'));
    }
  }
  if (m_lines > k_max_header_fields + 2) { // the request-line, the fields, the empty line
    m_front.busy(1);
    m_idle = false;
    m_keep_alive = false;
    respond(Reply{431, "application/json",
                  error_body("BadRequest",
                             "the request has more than " + std::to_string(k_max_header_fields) + " header fields")});
    return;
  }
  if (!complete && text.size() < k_header_limit) {
    m_stream.async_read_some(m_buffer.prepare(k_header_limit - text.size()),
                             [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                               if (ec) {
                                 self->on_header(ec);
                                 return;
                               }
                               self->m_buffer.commit(n);
                               self->scan_header();
                             });
    return;
  }
  // Complete, or too long (the parser says so): it parses what is buffered.
  http::async_read_header(
      m_stream, m_buffer, *m_parser,
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
    const bool too_large = ec == http::error::header_limit || ec == http::error::buffer_overflow;
    respond(Reply{too_large ? 431U : 400U, "application/json",
                  error_body("BadRequest", "the request could not be parsed: " + ec.message())});
    return;
  }
  m_idle = false;
  m_front.busy(1);
  const auto& req = m_parser->get();
  m_version = req.version();
  // RFC 9112 section 6.1: a Transfer-Encoding in HTTP/1.0 may be a relic of a proxy.
  m_must_close = req.version() < 11 && req.count(http::field::transfer_encoding) != 0;
  if (const unsigned refusal = transfer_encoding_refusal(req); refusal != 0) {
    m_keep_alive = false;
    respond(Reply{refusal, "application/json",
                  error_body(refusal == 501 ? "NotImplemented" : "BadRequest",
                             R"(Transfer-Encoding must be exactly "chunked" (RFC 9112 section 6.3); it is ")" +
                                 std::string(header(req, "Transfer-Encoding").value_or("")) + "\"")});
    return;
  }
  if (req.version() >= 11 && req.count(http::field::host) != 1) {
    m_keep_alive = false;
    respond(Reply{400, "application/json",
                  error_body("BadRequest", req.count(http::field::host) == 0
                                               ? "an HTTP/1.1 request needs a Host header"
                                               : "the request has more than one Host header")});
    return;
  }
  // A list ("N, N") or a repeated field (RFC 9112 section 6.3 allows refusing either):
  // its length must never reach a reserve().
  if (const auto lengths = req.count(http::field::content_length);
      lengths > 1 || (lengths == 1 && !declared_length(req))) {
    m_keep_alive = false;
    respond(Reply{400, "application/json",
                  error_body("BadRequest", "Content-Length must be one decimal number; it is \"" +
                                               std::string(header(req, "Content-Length").value_or("")) + "\"")});
    return;
  }
  // A body we will refuse is not waited for.
  if (const auto length = declared_length(req); length && *length > m_front.config().max_body_size) {
    m_keep_alive = false;
    respond(Reply{413, "application/json",
                  error_body("PayloadTooLarge",
                             "the body has " + std::to_string(*length) + " bytes; this server accepts at most " +
                                 std::to_string(m_front.config().max_body_size) + " (SMLAUNCH_MAX_BODY_SIZE)")});
    return;
  }
  const auto expect = header(req, "Expect");
  if (expect && req.version() >= 11 &&
      beast::iequals(beast::string_view(expect->data(), expect->size()), "100-continue")) {
    auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
    m_stream.expires_after(m_front.config().timeout);
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
  // Chunked: Beast's parser decodes it, a read at a time, so the budget is looked at
  // between reads. A slow upload is bounded like a slow model. The request is the header
  // as it is now: a trailer's fields (merged by the parser) must not change it.
  m_header = m_parser->get().base();
  m_header_keep_alive = m_parser->keep_alive();
  m_hold = std::make_shared<BufferHold>(m_front.budget());
  m_body_deadline = Clock::now() + m_front.config().timeout;
  when_room(&Session::read_chunked_more);
}

// Reading a body resumes when the buffered bytes of all connections are under
// --max-buffered-bytes (never allocate for what has not been received).
void
Session::when_room(void (Session::*then)())
{
  if (m_front.may_buffer(m_hold)) {
    (this->*then)();
    return;
  }
  if (Clock::now() >= m_body_deadline || gone()) {
    m_hold.reset(); // its bytes no longer count
    m_front.busy(-1);
    close();
    return;
  }
  m_wait.expires_after(10ms);
  m_wait.async_wait([self = shared_from_this(), then](beast::error_code ec) {
    if (!ec) {
      self->when_room(then);
    }
  });
}

void
Session::read_chunked_more()
{
  const auto left = m_body_deadline - Clock::now();
  m_stream.expires_after(left > 0s ? std::chrono::duration_cast<Clock::duration>(left) : Clock::duration(1ms));
  http::async_read_some(m_stream, m_buffer, *m_parser,
                        [self = shared_from_this()](beast::error_code ec, std::size_t /*n*/) {
                          if (ec) {
                            self->on_body_error(ec);
                            return;
                          }
                          const std::uint64_t size = self->m_parser->get().body().size();
                          if (size > self->m_hold->bytes()) {
                            self->m_hold->add(size - self->m_hold->bytes());
                          }
                          if (!self->m_parser->is_done()) {
                            self->when_room(&Session::read_chunked_more);
                            return;
                          }
                          self->m_stream.expires_never();
                          http::request<http::string_body> req = self->m_parser->release();
                          self->dispatch(*self->m_header, self->m_header_keep_alive, std::move(req.body()));
                        });
}

// A body that could not be read: too large (413), malformed (400), or the client went.
void
Session::on_body_error(beast::error_code ec)
{
  m_keep_alive = false;
  if (ec == http::error::body_limit) {
    respond(Reply{413, "application/json",
                  error_body("PayloadTooLarge", "the body is larger than " +
                                                    std::to_string(m_front.config().max_body_size) +
                                                    " bytes (SMLAUNCH_MAX_BODY_SIZE)")});
    return;
  }
  if (ec.category() == http::make_error_code(http::error::bad_chunk).category() && ec != http::error::end_of_stream &&
      ec != http::error::partial_message) {
    respond(Reply{400, "application/json", error_body("BadRequest", "the body could not be parsed: " + ec.message())});
    return;
  }
  m_front.busy(-1);
  close();
}

// A body of known length goes into the string sent to the worker as it arrives: memory
// follows the bytes received, never the Content-Length promised.
void
Session::read_body_direct(std::uint64_t size)
{
  m_expected = size;
  m_body = std::string();
  m_hold = std::make_shared<BufferHold>(m_front.budget());
  const std::size_t buffered = std::min<std::size_t>(m_buffer.size(), size);
  m_body.resize(buffered);
  m_body_filled = buffered;
  asio::buffer_copy(asio::buffer(m_body.data(), buffered), m_buffer.data());
  m_buffer.consume(buffered);
  m_hold->add(buffered);
  m_body_deadline = Clock::now() + m_front.config().timeout;
  read_direct_more();
}

void
Session::read_direct_more()
{
  const std::uint64_t have = m_body_filled;
  if (have == m_expected) {
    m_body.resize(have);
    m_stream.expires_never();
    dispatch(m_parser->get().base(), m_parser->keep_alive(), std::move(m_body));
    return;
  }
  if (!m_front.may_buffer(m_hold)) {
    when_room(&Session::read_direct_more);
    return;
  }
  // Grow geometrically (at most about twice what was received), in one read each.
  std::uint64_t step = std::min<std::uint64_t>(m_expected - have, std::clamp<std::uint64_t>(have, 256 << 10, 64 << 20));
  step = std::min<std::uint64_t>(step, std::max<std::uint64_t>(m_front.room_left(), 64 << 10));
  try {
    // Growing a string zero-fills the new part: grow only past what is allocated, so that
    // a body is filled with zeros once, not once per read.
    if (m_body.size() < have + step) {
      m_body.resize(have + step);
    }
  } catch (const std::bad_alloc&) {
    m_keep_alive = false;
    respond(Reply{
        413, "application/json",
        error_body("PayloadTooLarge", "a body of " + std::to_string(m_expected) + " bytes does not fit in memory")});
    return;
  }
  const auto left = m_body_deadline - Clock::now();
  m_stream.expires_after(left > 0s ? std::chrono::duration_cast<Clock::duration>(left) : Clock::duration(1ms));
  m_stream.async_read_some(asio::buffer(m_body.data() + have, step),
                           [self = shared_from_this(), have](beast::error_code ec, std::size_t n) {
                             self->m_body_filled = have + n;
                             self->m_hold->add(n);
                             if (ec) {
                               self->m_front.busy(-1);
                               self->close();
                               return;
                             }
                             self->read_direct_more();
                           });
}

// Whether the client closed its connection (a request queued for it is then dropped).
bool
Session::gone()
{
  // POLLRDHUP: the client closed its side, even with bytes of it still unread here.
  pollfd p{m_stream.socket().native_handle(), POLLRDHUP, 0};
  return p.fd < 0 || (::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0);
}

void
Session::dispatch(const http::request_header<>& req, bool keep_alive, std::string body)
{
  m_stream.expires_never();
  m_keep_alive = keep_alive && !m_must_close;
  m_head = req.method() == http::verb::head;
  auto hold = std::move(m_hold);
  m_front.end_overdraft(hold);
  const std::string_view method(req.method_string().data(), req.method_string().size());
  const std::string_view target(req.target().data(), req.target().size());
  switch (route_for(method, target)) {
  case Route::ping:
    if (m_front.pool().any_ready() && !m_front.draining()) {
      respond(Reply{200, "", ""});
    } else {
      respond(Reply{
          503, "application/json",
          error_body("ServiceUnavailable", m_front.draining() ? "the server is stopping" : "the model is loading")});
    }
    return;
  case Route::method_not_allowed:
    respond(Reply{405, "application/json",
                  error_body("MethodNotAllowed", std::string(method) + " is not allowed on " + std::string(target))},
            allowed_methods(target));
    return;
  case Route::not_found:
    respond(Reply{404, "application/json",
                  error_body("NotFound", "no such path: " + std::string(target) +
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
  job.hold = std::move(hold);
  job.arrived = Clock::now();
  job.done = [self = shared_from_this()](Reply&& reply) { self->respond(std::move(reply)); };
  job.gone = [weak = weak_from_this()] {
    const auto self = weak.lock();
    return !self || self->gone();
  };
  m_front.pool().submit(std::move(job));
}

void
Session::respond(Reply&& reply, std::string_view allow)
{
  const bool keep_alive = m_keep_alive && !m_front.draining();
  if (!is_clean_field_value(reply.content_type)) {
    // User code's content type: a CR LF in it would put its own headers on the wire.
    reply = Reply{500, "application/json",
                  error_body("InvalidContentType", "output_fn returned a content type with control characters")};
  }
  // A worker's status and content type are checked where its frame is read (framing.cpp,
  // WorkerPool::on_frame). Whatever Beast still cannot write: this connection gets a 500, or
  // is closed; the server (and every other connection) lives on.
  try {
    write_response(std::move(reply), allow, keep_alive);
    return;
  } catch (const std::exception& e) {
    spdlog::error("could not write an answer: {}", e.what());
  }
  try {
    write_response(Reply{500, "application/json", error_body("InternalError", "the answer could not be written")}, {},
                   false);
  } catch (const std::exception& e) {
    spdlog::error("could not write a 500: {}", e.what());
    m_response.reset();
    m_front.busy(-1);
    close();
  }
}

void
Session::write_response(Reply&& reply, std::string_view allow, bool keep_alive)
{
  m_response.emplace(static_cast<http::status>(reply.status), 11);
  m_response->set(http::field::server, "smlaunch");
  if (!reply.content_type.empty()) {
    m_response->set(http::field::content_type, reply.content_type);
  }
  if (!allow.empty()) {
    m_response->set(http::field::allow, beast::string_view(allow.data(), allow.size()));
  }
  m_response->keep_alive(keep_alive);
  if (keep_alive && m_version < 11) {
    m_response->set(http::field::connection, "keep-alive"); // HTTP/1.0 keeps only when told
  }
  m_response->body() = std::move(reply.body);
  m_response->prepare_payload();
  if (m_head) {
    m_response->body().clear(); // HEAD: Content-Length as for GET, no body
  }
  // A client that does not read its answer does not keep it (and the connection) for ever.
  m_stream.expires_after(m_front.config().timeout);
  http::async_write(m_stream, *m_response,
                    [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t /*n*/) {
                      self->on_written(ec, keep_alive);
                    });
}

void
Session::on_written(beast::error_code ec, bool keep_alive)
{
  m_stream.expires_never();
  const bool large = m_response && m_response->body().size() >= (std::size_t{1} << 20);
  m_response.reset();
  if (large) {
    m_front.heap_trim().large_released(); // the heap would otherwise keep the largest answer's pages
  }
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

  // A connection is a descriptor: as many as the hard limit allows (Docker's soft limit
  // is 1024).
  if (rlimit limit{}; ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  asio::io_context io(1);
  asio::posix::stream_descriptor signals(io, sfd);
  std::optional<std::string> fatal;
  ServeOutcome outcome;
  HeapTrim heap_trim(io);
  WorkerPool pool(io, processes, config, heap_trim, [&](const std::string& message) {
    fatal = message;
    io.stop();
  });
  Front front(io, config, pool, heap_trim);
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
  bool at_once = false; // a second stop signal: busy workers are not waited for
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
        at_once = true;
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
  // Each handler keeps its exceptions (respond() answers 500): this is the last guard, so
  // that one connection's bad_alloc never stops the server.
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("a request failed: {}", e.what());
    }
  }
  outcome.requests = front.requests();
  outcome.stopped_at_once = at_once;
  outcome.worker_restarts = pool.restarts();
  pool.stop_workers(at_once ? 0s : 5s);
  if (fatal) {
    throw ServeError(ServeFailure::model_load, *fatal);
  }
  spdlog::info("stopped after {} request(s)", outcome.requests);
  return outcome;
}

} // namespace serve
