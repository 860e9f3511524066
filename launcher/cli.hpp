// The command line: one table of options, each with an SMLAUNCH_* environment twin
// (an ENTRYPOINT's argv is fixed in the image); the command line wins.
#pragma once

#include "env/env_map.hpp"
#include "launcher/logging.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace launcher {

enum class Command { train, plan, help, version };

// One resolved setting and where its value came from (shown by `smlaunch plan`).
struct Setting
{
  std::string name;
  std::string value;
  std::string origin; // "command line", "environment SMLAUNCH_X", "default", ...
};

struct Options
{
  Command command = Command::help;
  std::string base_dir;
  std::string python;              // as given; resolved against PATH when planning
  std::optional<int> num_gpus;     // unset: detect
  std::chrono::milliseconds grace_period{60000};
  std::chrono::milliseconds dns_timeout{900000};
  Verbosity verbosity = Verbosity::normal;
  std::vector<Setting> settings;
};

// Parse argv (argv[0] "train" dispatches like "smlaunch train"); throws UsageError.
Options parse_command_line(int argc, const char* const* argv, const env::EnvMap& environment);

std::string help_text();

} // namespace launcher
