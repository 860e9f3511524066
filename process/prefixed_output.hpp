// Several hosts' output on one stream, as docker compose shows it: every line starts with
// its host's name ("algo-1  | ..."), and lines of different hosts never mix.
#pragma once

#include "process/rank_relay.hpp"

#include <chrono>
#include <string>
#include <thread>

namespace process {

class PrefixedOutput
{
public:
  // Reads `pipe_fd` (taking ownership) and writes each line to `out_fd` after `prefix`.
  PrefixedOutput(int pipe_fd, int out_fd, std::string prefix);
  ~PrefixedOutput();
  PrefixedOutput(const PrefixedOutput&) = delete;
  PrefixedOutput& operator=(const PrefixedOutput&) = delete;

  // The writers are gone (or should be): read until EOF, but at most `drain_window` more
  // when a leftover process still holds the pipe open.
  void finish(std::chrono::milliseconds drain_window);

private:
  void loop();
  void emit(const char* data, std::size_t size);

  int m_pipe_fd;
  int m_out_fd;
  int m_wake_fd;
  std::string m_prefix;
  LineAssembler m_lines;
  std::chrono::steady_clock::time_point m_drain_deadline{};
  std::thread m_thread;
};

} // namespace process
