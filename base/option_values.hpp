// Values of options shared by every command's option table (train, serve, local): one
// parser each, with one message. `label` names the option and where its value came from
// ("--grace-period (environment SMLAUNCH_GRACE_PERIOD)"). Both throw UsageError.
#pragma once

#include "base/logging.hpp"
#include "base/option_table.hpp"

#include <chrono>
#include <string>

namespace base {

// A number of seconds from `min` (0 or 0.001) to a week, as whole milliseconds rounded up
// (0.0005 waits 1 ms, not 0), the one conversion every command's timeouts go through.
std::chrono::milliseconds parse_seconds(const std::string& label, const std::string& value, double min = 0);
// The same for a setting of an option table, labelled with its name and origin.
std::chrono::milliseconds parse_seconds(const Setting& setting, double min = 0);

// Whether a Python logging level number (SAGEMAKER_CONTAINER_LOG_LEVEL: 10, 20, 30) is
// accepted besides the names.
enum class LogLevelNumbers { rejected, accepted };

// warning (warn, error), info or debug.
Verbosity parse_log_level(const std::string& label, const std::string& value,
                          LogLevelNumbers numbers = LogLevelNumbers::rejected);
Verbosity parse_log_level(const Setting& setting, LogLevelNumbers numbers = LogLevelNumbers::rejected);

} // namespace base
