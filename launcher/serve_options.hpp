// `smlaunch serve`'s command line: one table of options, each with an SMLAUNCH_* twin and,
// where the reference has one, the platform's SAGEMAKER_* variable after it (README:
// "Serving"). Pure: reads argv and the environment map only.
#pragma once

#include "base/logging.hpp"
#include "env/env_map.hpp"
#include "launcher/cli.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace launcher {

struct ServeOptions
{
  bool help = false;
  std::string base_dir = "/opt/ml";
  std::string python = "python3";
  base::Verbosity verbosity = base::Verbosity::normal;
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 8080;
  std::optional<int> workers; // unset: one per CPU
  std::chrono::milliseconds timeout{60000};
  std::chrono::milliseconds model_load_timeout{600000};
  std::string default_accept = "application/json";
  std::string program;          // SAGEMAKER_PROGRAM: the module with model_fn
  std::string submit_directory; // "": <base>/code
  std::string model_data;       // "": <base>/model as it is
  std::uint64_t max_body_size = 1ULL << 30;
  std::uint64_t max_buffered_bytes = 512ULL << 20;
  std::vector<base::Setting> settings;
};

// Whether argv asks for `serve`: `smlaunch serve ...`, or the program named `serve`.
bool serve_command_requested(int argc, const char* const* argv);

// Parse `serve`'s argv; throws UsageError naming the option, its origin and the value.
ServeOptions parse_serve_command_line(int argc, const char* const* argv, const env::EnvMap& environment);

std::string serve_help_text();

} // namespace launcher
