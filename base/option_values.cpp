#include "base/option_values.hpp"

#include "base/errors.hpp"

#include <cmath>
#include <stdexcept>

namespace base {

namespace {

// Without std::ceil, the one function smlaunch would take from libm: the binary loads libc
// alone (start-up, issue 13).
std::chrono::milliseconds
whole_milliseconds_up(double seconds)
{
  const double ms = seconds * 1000;
  auto whole = static_cast<long long>(ms);
  if (static_cast<double>(whole) < ms) {
    ++whole;
  }
  return std::chrono::milliseconds(whole);
}

} // namespace

std::chrono::milliseconds
parse_seconds(const std::string& label, const std::string& value, double min)
{
  try {
    std::size_t used = 0;
    const double v = std::stod(value, &used);
    if (used == value.size() && std::isfinite(v) && v >= min && v <= 7 * 24 * 3600) {
      return whole_milliseconds_up(v);
    }
  } catch (const std::exception&) {
  }
  throw UsageError(label + " is \"" + value + "\"; expected a number of seconds from " + (min > 0 ? "0.001" : "0") +
                   " to 604800");
}

std::chrono::milliseconds
parse_seconds(const Setting& setting, double min)
{
  return parse_seconds(setting_label(setting), setting.value, min);
}

Verbosity
parse_log_level(const std::string& label, const std::string& value, LogLevelNumbers numbers)
{
  if (value == "debug") {
    return Verbosity::verbose;
  }
  if (value == "info") {
    return Verbosity::normal;
  }
  if (value == "warning" || value == "warn" || value == "error") {
    return Verbosity::quiet;
  }
  if (numbers == LogLevelNumbers::accepted) {
    // A Python logging level: 10 debug, 20 info, 30 warning.
    const bool digits =
        !value.empty() && value.size() <= 3 && value.find_first_not_of("0123456789") == std::string::npos;
    if (digits) {
      const int level = std::stoi(value);
      return level <= 10 ? Verbosity::verbose : level <= 20 ? Verbosity::normal : Verbosity::quiet;
    }
    throw UsageError(label + " is \"" + value + "\"; expected warning, info, debug or a number");
  }
  throw UsageError(label + " is \"" + value + "\"; expected warning, info or debug");
}

Verbosity
parse_log_level(const Setting& setting, LogLevelNumbers numbers)
{
  return parse_log_level(setting_label(setting), setting.value, numbers);
}

} // namespace base
