#include "process/failure_report.hpp"

#include "base/logging.hpp"
#include "base/text.hpp"
#include "env/json_value.hpp"
#include "env/py_format.hpp"

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace process {

namespace {

constexpr std::size_t k_message_bytes = 2048;
constexpr std::size_t k_command_bytes = 1024;

// The tail of a ring buffer may start inside a line (or a UTF-8 sequence): drop it.
std::string
from_first_whole_line(const std::string& output, bool truncated)
{
  if (!truncated) {
    return output;
  }
  const auto nl = output.find('\n');
  return nl == std::string::npos ? output : output.substr(nl + 1);
}

// Length of the UTF-8 sequence starting at text[i] (a valid, shortest form), or 0.
std::size_t
utf8_length(const std::string& text, std::size_t i)
{
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  unsigned min = 0;
  unsigned code = 0;
  if (c < 0x80) {
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, code = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, code = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, code = c & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > text.size()) {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80) {
      return 0;
    }
    code = (code << 6) | (byte(i + k) & 0x3Fu);
  }
  const bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  return code >= min && code <= 0x10FFFF && !surrogate ? n : 0;
}

// SageMaker's FailureReason is UTF-8 text: bytes that are not UTF-8, and control characters
// other than newline and tab (NUL, ESC, CR), become \xNN; at most `max_bytes`, cut between
// characters (an escape is never split either).
std::string
printable_utf8(const std::string& text, std::size_t max_bytes)
{
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_length(text, i);
    const auto c = static_cast<unsigned char>(text[i]);
    std::string piece;
    if (n == 0 || (n == 1 && ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F))) {
      char escaped[5];
      (void)std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      piece = escaped;
      i += 1;
    } else {
      piece = text.substr(i, n);
      i += n;
    }
    if (out.size() + piece.size() > max_bytes) {
      break;
    }
    out += piece;
  }
  return out;
}

// A command line over `max_bytes` (a million hyperparameters) keeps its start and says so.
std::string
shortened_command(const std::string& command, std::size_t max_bytes)
{
  std::string text = printable_utf8(command, max_bytes);
  if (text.size() >= command.size()) {
    return text;
  }
  return text + " ... (" + std::to_string(command.size()) + " bytes in all)";
}

} // namespace

std::string
format_failure(const std::string& error_class, int exit_code, const std::string& message, const std::string& command)
{
  // The reference's classes keep its exact first line; smlaunch's own (ConfigError,
  // StagingError, ...) also say on it what is wrong: the file, the key, the problem.
  const std::string text = printable_utf8(message, k_message_bytes);
  std::string first_line = error_class + ":";
  if (!is_reference_error_class(error_class) && !text.empty()) {
    first_line += " " + printable_utf8(text.substr(0, text.find('\n')), 300);
  }
  return first_line + "\nExitCode " + std::to_string(exit_code) + "\nErrorMessage \"" + text + "\"\nCommand \"" +
         shortened_command(command, k_command_bytes) + "\"\n";
}

bool
is_reference_error_class(const std::string& error_class)
{
  return error_class == "ExecuteUserScriptError" || error_class == "InstallRequirementsError" ||
         error_class == "InstallModuleError";
}

std::string
last_lines(const std::string& output, std::size_t max_bytes)
{
  auto lines = base::split_lines(output);
  while (!lines.empty() && lines.back().find_first_not_of(" \t") == std::string::npos) {
    lines.pop_back();
  }
  std::string out;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (out.size() + it->size() + 1 > max_bytes) {
      if (out.empty()) {
        // One huge line: its end, from a character's first byte.
        std::size_t start = it->size() - std::min(it->size(), max_bytes);
        while (start < it->size() && (static_cast<unsigned char>((*it)[start]) & 0xC0u) == 0x80) {
          ++start;
        }
        out = it->substr(start);
      }
      break;
    }
    out = out.empty() ? *it : *it + "\n" + out;
  }
  return out;
}

namespace {

bool
is_indented(const std::string& line)
{
  return !line.empty() && (line[0] == ' ' || line[0] == '\t');
}

// Lines that start another part of a chained traceback.
bool
starts_new_section(const std::string& line)
{
  return line.rfind("Traceback (most recent call last):", 0) == 0 ||
         line.rfind("During handling of the above exception", 0) == 0 ||
         line.rfind("The above exception was the direct cause", 0) == 0;
}

} // namespace

std::string
python_error_summary(const std::string& output, std::size_t max_bytes)
{
  const auto lines = base::split_lines(output);
  // The last traceback wins (chained exceptions print the final one last).
  std::size_t header = lines.size();
  for (std::size_t i = lines.size(); i-- > 0;) {
    if (lines[i].rfind("Traceback (most recent call last):", 0) == 0) {
      header = i;
      break;
    }
  }
  std::size_t first_frame = header;
  std::size_t exception_at = lines.size();
  if (header < lines.size()) {
    // Frames and their source lines are indented; the exception is the first line after
    // them that is not.
    for (std::size_t i = header + 1; i < lines.size(); ++i) {
      if (!is_indented(lines[i])) {
        exception_at = i;
        break;
      }
    }
  } else {
    // A SyntaxError in the script itself has no "Traceback" header: '  File ...' lines,
    // then the error.
    for (std::size_t i = lines.size(); i-- > 0;) {
      const std::string& l = lines[i];
      if (l.rfind("SyntaxError", 0) == 0 || l.rfind("IndentationError", 0) == 0 || l.rfind("TabError", 0) == 0) {
        exception_at = i;
        break;
      }
    }
    if (exception_at == lines.size()) {
      return "";
    }
    first_frame = exception_at;
    while (first_frame > 0 && is_indented(lines[first_frame - 1])) {
      --first_frame;
    }
  }
  if (exception_at >= lines.size() || lines[exception_at].empty()) {
    return "";
  }
  std::string exception;
  for (std::size_t i = exception_at; i < lines.size() && !starts_new_section(lines[i]); ++i) {
    exception += (exception.empty() ? "" : "\n") + lines[i];
  }
  while (!exception.empty() && (exception.back() == '\n' || exception.back() == ' ')) {
    exception.pop_back();
  }
  if (exception.size() >= max_bytes) {
    return exception.substr(0, max_bytes);
  }
  std::string traceback;
  for (std::size_t i = first_frame; i < exception_at; ++i) {
    traceback += lines[i] + "\n";
  }
  traceback += exception;
  // The exception first: it is what the first 1024 bytes must show.
  return exception + "\n" + last_lines(traceback, max_bytes - exception.size() - 1);
}

namespace {

// "[1,3]<stderr>:" at `pos` (mpirun --tag-output): its length, or 0.
std::size_t
mpi_tag_length(const std::string& line, std::size_t pos)
{
  if (pos >= line.size() || line[pos] != '[') {
    return 0;
  }
  std::size_t i = pos + 1;
  bool comma = false;
  while (i < line.size() && (std::isdigit(static_cast<unsigned char>(line[i])) != 0 || (line[i] == ',' && !comma))) {
    comma = comma || line[i] == ',';
    ++i;
  }
  for (const char* stream : {"]<stdout>:", "]<stderr>:", "]<stddiag>:"}) {
    if (comma && line.compare(i, std::strlen(stream), stream) == 0) {
      return i + std::strlen(stream) - pos;
    }
  }
  return 0;
}

} // namespace

std::string
untag_mpi_output(const std::string& output)
{
  struct Tagged
  {
    std::string tag;
    std::string text;
  };
  std::vector<Tagged> tagged;
  bool any = false;
  for (const auto& line : base::split_lines(output)) {
    const std::size_t n = mpi_tag_length(line, 0);
    Tagged t{line.substr(0, n), ""};
    any = any || n > 0;
    // A rank's unbuffered writes are tagged one by one, also inside a line.
    for (std::size_t i = n; i < line.size();) {
      if (n > 0 && line.compare(i, n, t.tag) == 0) {
        i += n;
        continue;
      }
      t.text += line[i++];
    }
    tagged.push_back(std::move(t));
  }
  if (!any) {
    return output;
  }
  // The rank whose traceback came last: its stderr alone, so ranks do not interleave.
  std::string rank_tag;
  for (std::size_t i = tagged.size(); i-- > 0;) {
    if (tagged[i].text.rfind("Traceback (most recent call last):", 0) == 0 && !tagged[i].tag.empty()) {
      rank_tag = tagged[i].tag;
      break;
    }
  }
  std::string out;
  for (const auto& t : tagged) {
    if (rank_tag.empty() ? !t.tag.empty() : t.tag == rank_tag) {
      out += t.text + "\n";
    }
  }
  return out;
}

namespace {

// ENOENT from execve also means "the #! interpreter does not exist": name it, and the
// usual cause, a script saved with Windows line endings ("/bin/sh\r").
std::string
missing_file_cause(const std::string& program)
{
  std::string first_line;
  if (const int fd = ::open(program.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK); fd >= 0) {
    struct stat st
    {
    };
    std::array<char, 256> buffer{};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      first_line.assign(buffer.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
    }
    ::close(fd);
  }
  if (!first_line.starts_with("#!")) {
    return "not found";
  }
  first_line =
      first_line.substr(2, first_line.find('\n') == std::string::npos ? std::string::npos : first_line.find('\n') - 2);
  const auto start = first_line.find_first_not_of(" \t");
  if (start == std::string::npos) {
    return "not found";
  }
  const std::string interpreter = first_line.substr(start, first_line.find_first_of(" \t", start) - start);
  std::string cause =
      "its interpreter " + env::py_repr(env::Value::string(interpreter)) + " (from the #! line) was not found";
  if (interpreter.ends_with('\r')) {
    cause += "; the line ends with a carriage return: the file has Windows (CRLF) line endings";
  }
  return cause;
}

// "killed by SIGSEGV (signal 11)".
std::string
killed_by(int term_signal)
{
  return "killed by " + base::signal_name(term_signal) + " (signal " + std::to_string(term_signal) + ")";
}

// The usual cause of a SIGKILL that smlaunch did not send.
constexpr const char* k_out_of_memory =
    ": the likely cause is running out of memory (the kernel's OOM killer); check the instance's memory";

} // namespace

std::string
describe_script_failure(const ChildResult& r, const std::string& program, double grace_seconds)
{
  std::string cause;
  if (r.exec_errno != 0) {
    cause = program + ": " +
            (r.exec_errno == ENOENT    ? missing_file_cause(program)
             : r.exec_errno == ENOEXEC ? "cannot execute binary file: " + std::system_category().message(ENOEXEC)
                                       : std::system_category().message(r.exec_errno));
  } else if (r.term_signal != 0) {
    cause = killed_by(r.term_signal);
    if (r.killed_after_grace || r.terminated_after_grace) {
      cause += fmt::format(" after it did not exit within the {:g} s grace period that followed {}", grace_seconds,
                           base::signal_name(r.stop_signal));
    } else if (r.term_signal == SIGKILL) {
      cause += std::string(k_out_of_memory) + " or reduce the batch size";
    }
  } else if (r.terminated_after_grace) {
    // mpirun: the ranks were asked to stop (term_as) and did not end within the grace period.
    cause = fmt::format("exited with code {} after it did not end within the {:g} s grace period that followed {} "
                        "(smlaunch then sent it SIGTERM)",
                        r.exit_code, grace_seconds, base::signal_name(r.stop_signal));
  } else if (r.stop_signal != 0) {
    cause = "exited with code " + std::to_string(r.exit_code) + " after smlaunch forwarded " +
            base::signal_name(r.stop_signal);
  }
  const std::string output = from_first_whole_line(r.output_tail, r.relayed_bytes > r.output_tail.size());
  // Under mpirun, the failing rank's traceback, without the tags that split its lines.
  std::string details = python_error_summary(untag_mpi_output(output), k_message_bytes);
  if (!details.empty() && details.size() + 1 < k_message_bytes && output != untag_mpi_output(output)) {
    details += "\n" + last_lines(output, k_message_bytes - details.size() - 1);
  }
  if (details.empty()) {
    details = last_lines(output, k_message_bytes);
  }
  if (cause.empty()) {
    return details.empty() ? "exited with code " + std::to_string(r.exit_code) + " and wrote nothing to stderr"
                           : details;
  }
  return details.empty() ? cause : cause + "\n" + details;
}

std::string
describe_install_failure(const ChildResult& r, const std::string& python)
{
  const std::string output = from_first_whole_line(r.output_tail, r.relayed_bytes > r.output_tail.size());
  std::string errors;
  for (const auto& line : base::split_lines(output)) {
    if (line.rfind("ERROR:", 0) == 0 && errors.size() + line.size() < k_message_bytes / 2) {
      errors += line + "\n";
    }
  }
  // pip killed by a signal (SIGKILL: out of memory, building a large wheel) did not exit
  // with a code: say which signal, as for the script.
  std::string message = "pip exited with code " + std::to_string(r.exit_code);
  if (r.term_signal != 0) {
    message = "pip was " + killed_by(r.term_signal) + (r.term_signal == SIGKILL ? k_out_of_memory : "");
  }
  if (r.exec_errno != 0) {
    // The usual cause is a wrong --python / SMLAUNCH_PYTHON: name the path.
    message = "cannot run pip: " + (python.empty() ? std::string() : python + ": ") +
              std::system_category().message(r.exec_errno) +
              (python.empty() ? "" : " (the Python set by --python / SMLAUNCH_PYTHON)");
  }
  if (!errors.empty()) {
    message += "\n" + errors.substr(0, errors.size() - 1);
  }
  const std::string tail = last_lines(output, k_message_bytes - std::min(message.size(), k_message_bytes / 2));
  if (!tail.empty() && errors.empty()) {
    message += "\n" + tail;
  }
  return message;
}

namespace {

// What smlaunch wrote last in this tree ("success\n", or "failure\n" + the failure
// file's text), so that a later run can tell its own stale outcome from the user's.
std::string
outcome_marker(const env::Paths& paths)
{
  return paths.base + "/.smlaunch/outcome";
}

constexpr off_t k_reserve_bytes = 64 * 1024;

// Space kept on output/'s file system so that the failure file still fits when the script
// filled the disk. When the tree's .smlaunch/ is on that file system the reserve lives
// there, kept from run to run: allocating and freeing 64 KiB at every run cost 0.16 ms
// (ext4 with online discard). On an output/ volume of its own it is in output/, removed
// at the end of the run.
std::string
reserve_path(const OutcomeFiles& outcome)
{
  return outcome.reserve_kept ? outcome.paths.base + "/.smlaunch/failure-reserve"
                              : outcome.paths.output + "/.smlaunch-failure-reserve";
}

// Opens one of smlaunch's own files in the tree for writing. Whatever else the tree's owner
// or the script left at its name is replaced, never opened: through a symbolic link,
// O_TRUNC and posix_fallocate clobbered (and O_CREAT created) a file outside the tree, and
// opening a FIFO blocked the launcher forever. O_NOFOLLOW and O_NONBLOCK keep that so
// should one reappear between the lstat and the open.
int
open_own_file(const std::string& path, mode_t mode)
{
  struct stat st
  {
  };
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    ::unlink(path.c_str());
  }
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
}

bool
read_whole(const std::string& path, std::string& out, std::size_t limit)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) {
    return false;
  }
  struct stat st
  {
  };
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) <= limit;
  if (ok) {
    out.resize(static_cast<std::size_t>(st.st_size));
    ok = ::read(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
  }
  ::close(fd);
  return ok;
}

void
write_outcome_marker(const env::Paths& paths, const std::string& text)
{
  std::error_code ec;
  std::filesystem::create_directories(paths.base + "/.smlaunch", ec);
  const int fd = open_own_file(outcome_marker(paths), 0600);
  if (fd >= 0) {
    (void)base::write_all(fd, text.data(), text.size());
    ::close(fd);
  }
}

} // namespace

OutcomeFiles
prepare_outcome(const env::Paths& paths)
{
  OutcomeFiles outcome{paths};
  std::string recorded;
  if (read_whole(outcome_marker(paths), recorded, 1024 * 1024)) {
    // A success after a success then leaves the marker alone, without reading it again.
    outcome.marker_says_success = recorded == "success\n";
    std::string current;
    if (outcome.marker_says_success) {
      // The marker stays: this run rewrites it only if it ends otherwise (a job run
      // again and again in one tree then writes no marker at all).
      ::unlink(paths.success_file.c_str());
    } else if (recorded.starts_with("failure\n") && read_whole(paths.failure_file, current, 1024 * 1024) &&
               current == recorded.substr(8)) {
      spdlog::info("removing the failure file of an earlier run: {}", paths.failure_file);
      ::unlink(paths.failure_file.c_str());
    }
    if (!outcome.marker_says_success) {
      ::unlink(outcome_marker(paths).c_str());
    }
  }
  struct stat output
  {
  };
  if (::stat(paths.output.c_str(), &output) != 0 || !S_ISDIR(output.st_mode)) {
    return outcome;
  }
  struct stat state
  {
  };
  if (::stat((paths.base + "/.smlaunch").c_str(), &state) == 0 && S_ISDIR(state.st_mode) &&
      state.st_dev == output.st_dev) {
    outcome.reserve_kept = true;
    struct stat kept
    {
    };
    if (::lstat(reserve_path(outcome).c_str(), &kept) == 0 && S_ISREG(kept.st_mode) &&
        kept.st_blocks * 512 >= k_reserve_bytes) {
      return outcome; // the previous run's reserve is still there
    }
  }
  const int fd = open_own_file(reserve_path(outcome), 0600);
  if (fd >= 0) {
    const int err = ::posix_fallocate(fd, 0, k_reserve_bytes);
    ::close(fd);
    if (err != 0) {
      ::unlink(reserve_path(outcome).c_str());
    }
  }
  return outcome;
}

void
release_failure_reserve(const OutcomeFiles& outcome)
{
  if (!outcome.reserve_kept) {
    ::unlink(reserve_path(outcome).c_str());
  }
}

bool
record_failure(OutcomeFiles& outcome, const std::string& text)
{
  ::unlink(reserve_path(outcome).c_str()); // its space is now the failure file's
  const bool written = write_failure_file(outcome.paths.failure_file, text);
  if (written) {
    write_outcome_marker(outcome.paths, "failure\n" + text);
    outcome.marker_says_success = false;
  }
  return written;
}

int
record_outcome(OutcomeFiles& outcome, int code, const std::string& error_class, const std::string& message,
               const std::string& command, const env::EnvMap& secrets)
{
  std::error_code ec;
  std::filesystem::create_directories(outcome.paths.output, ec);
  if (code == 0) {
    release_failure_reserve(outcome);
    const int fd = open_own_file(outcome.paths.success_file, 0644);
    if (fd < 0) {
      spdlog::error("cannot write {}: {}", outcome.paths.success_file, std::system_category().message(errno));
    } else {
      ::close(fd);
      if (!outcome.marker_says_success) {
        write_outcome_marker(outcome.paths, "success\n");
        outcome.marker_says_success = true;
      }
    }
    return 0;
  }
  const std::string text = env::redact_secrets(format_failure(error_class, code, message, command), secrets);
  spdlog::error("training failed: {}", text);
  record_failure(outcome, text);
  return code;
}

bool
write_failure_file(const std::string& path, const std::string& text)
{
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) {
      spdlog::info("keeping the failure file the script wrote: {}", path);
    } else {
      spdlog::error("cannot write {}: {}", path, std::system_category().message(errno));
    }
    return false;
  }
  bool ok = base::write_all(fd, text.data(), text.size());
  const int write_error = ok ? 0 : errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    // The reason is in the log line above it; say that the file lacks it.
    spdlog::error("cannot write {}: {}", path, std::system_category().message(write_error != 0 ? write_error : errno));
  }
  return ok;
}

} // namespace process
