#include "launcher/failure_report.hpp"

#include "launcher/logging.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace launcher {

namespace {

constexpr std::size_t k_message_bytes = 2048;

std::vector<std::string>
split_lines(const std::string& text)
{
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

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

} // namespace

std::string
join_command(const std::vector<std::string>& argv)
{
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) {
      out += ' ';
    }
    out += a;
  }
  return out;
}

std::string
format_failure(const std::string& error_class, int exit_code, const std::string& message, const std::string& command)
{
  return error_class + ":\nExitCode " + std::to_string(exit_code) + "\nErrorMessage \"" + message + "\"\nCommand \"" +
         command + "\"\n";
}

std::string
last_lines(const std::string& output, std::size_t max_bytes)
{
  auto lines = split_lines(output);
  while (!lines.empty() && lines.back().find_first_not_of(" \t") == std::string::npos) {
    lines.pop_back();
  }
  std::string out;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (out.size() + it->size() + 1 > max_bytes) {
      if (out.empty()) {
        out = it->substr(it->size() - std::min(it->size(), max_bytes)); // one huge line: its end
      }
      break;
    }
    out = out.empty() ? *it : *it + "\n" + out;
  }
  return out;
}

std::string
python_error_summary(const std::string& output, std::size_t max_bytes)
{
  const auto pos = output.rfind("Traceback (most recent call last):");
  if (pos == std::string::npos) {
    return "";
  }
  const auto lines = split_lines(output.substr(pos));
  // Frames and source lines are indented; the exception starts at the first line after
  // them that is not.
  std::size_t last_indented = 0;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (!lines[i].empty() && (lines[i][0] == ' ' || lines[i][0] == '\t')) {
      last_indented = i;
    }
  }
  std::string exception;
  for (std::size_t i = last_indented + 1; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      break;
    }
    exception += (exception.empty() ? "" : "\n") + lines[i];
  }
  if (exception.empty()) {
    return "";
  }
  if (exception.size() >= max_bytes) {
    return exception.substr(0, max_bytes);
  }
  std::string traceback;
  for (std::size_t i = 0; i <= last_indented && i < lines.size(); ++i) {
    traceback += lines[i] + "\n";
  }
  traceback += exception;
  // The exception first: it is what the first 1024 bytes must show.
  return exception + "\n" + last_lines(traceback, max_bytes - exception.size() - 1);
}

std::string
describe_script_failure(const ChildResult& r, const std::string& program, double grace_seconds)
{
  std::string cause;
  if (r.exec_errno != 0) {
    cause = program + ": " + (r.exec_errno == ENOENT ? "not found" : std::strerror(r.exec_errno));
  } else if (r.term_signal != 0) {
    cause = "killed by " + signal_name(r.term_signal) + " (signal " + std::to_string(r.term_signal) + ")";
    if (r.killed_after_grace) {
      cause += " after it did not exit within the " + std::to_string(static_cast<long long>(grace_seconds)) +
               " s grace period that followed " + signal_name(r.stop_signal);
    } else if (r.term_signal == SIGKILL) {
      cause += ": the likely cause is running out of memory (the kernel's OOM killer); check the instance's "
               "memory or reduce the batch size";
    }
  } else if (r.stop_signal != 0) {
    cause = "exited with code " + std::to_string(r.exit_code) + " after smlaunch forwarded " + signal_name(r.stop_signal);
  }
  const std::string output = from_first_whole_line(r.output_tail, r.relayed_bytes > r.output_tail.size());
  std::string details = python_error_summary(output, k_message_bytes);
  if (details.empty()) {
    details = last_lines(output, k_message_bytes);
  }
  if (cause.empty()) {
    return details.empty() ? "exited with code " + std::to_string(r.exit_code) + " and wrote nothing to stderr" : details;
  }
  return details.empty() ? cause : cause + "\n" + details;
}

std::string
describe_install_failure(const ChildResult& r)
{
  const std::string output = from_first_whole_line(r.output_tail, r.relayed_bytes > r.output_tail.size());
  std::string errors;
  for (const auto& line : split_lines(output)) {
    if (line.rfind("ERROR:", 0) == 0 && errors.size() + line.size() < k_message_bytes / 2) {
      errors += line + "\n";
    }
  }
  std::string message = "pip exited with code " + std::to_string(r.exit_code);
  if (r.exec_errno != 0) {
    message = "cannot run pip: " + std::string(std::strerror(r.exec_errno));
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

bool
write_failure_file(const std::string& path, const std::string& text)
{
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) {
      spdlog::info("keeping the failure file the script wrote: {}", path);
    } else {
      spdlog::error("cannot write {}: {}", path, std::strerror(errno));
    }
    return false;
  }
  const bool ok = write_all(fd, text.data(), text.size());
  ::close(fd);
  return ok;
}

} // namespace launcher
