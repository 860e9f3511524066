// The one seconds parser and the one log-level parser of every option table.
#include "base/errors.hpp"
#include "base/option_values.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

namespace {

using base::LogLevelNumbers;
using base::Verbosity;

std::string
usage_message(const std::function<void()>& call)
{
  try {
    call();
  } catch (const base::UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(BaseOptionValues, Seconds)
{
  using std::chrono::milliseconds;
  EXPECT_EQ(base::parse_seconds("--grace-period", "2.5"), milliseconds(2500));
  EXPECT_EQ(base::parse_seconds("--grace-period", "0"), milliseconds(0));
  EXPECT_EQ(base::parse_seconds("--grace-period", "604800"), milliseconds(604800000));
  // Rounded up to whole milliseconds, never down to a shorter wait (or to none).
  EXPECT_EQ(base::parse_seconds("--grace-period", "0.0001"), milliseconds(1));
  EXPECT_EQ(base::parse_seconds("--grace-period", "0.0011"), milliseconds(2));
  EXPECT_EQ(base::parse_seconds("--grace-period", "2.0000001"), milliseconds(2001));
  EXPECT_EQ(base::parse_seconds("--timeout", "0.001", 0.001), milliseconds(1));
  for (const char* bad : {"", "-1", "1s", "nan", "inf", "604801"}) {
    EXPECT_THROW(base::parse_seconds("--grace-period", bad), base::UsageError) << bad;
  }
  EXPECT_EQ(usage_message([] { base::parse_seconds("--grace-period (command line)", "x"); }),
            "--grace-period (command line) is \"x\"; expected a number of seconds from 0 to 604800");
  EXPECT_EQ(usage_message([] { base::parse_seconds("--timeout (default)", "0", 0.001); }),
            "--timeout (default) is \"0\"; expected a number of seconds from 0.001 to 604800");
}

TEST(BaseOptionValues, LogLevel)
{
  EXPECT_EQ(base::parse_log_level("--log-level", "debug"), Verbosity::verbose);
  EXPECT_EQ(base::parse_log_level("--log-level", "info"), Verbosity::normal);
  for (const char* quiet : {"warning", "warn", "error"}) {
    EXPECT_EQ(base::parse_log_level("--log-level", quiet), Verbosity::quiet) << quiet;
  }
  EXPECT_EQ(usage_message([] { base::parse_log_level("--log-level", "20"); }),
            "--log-level is \"20\"; expected warning, info or debug");
  EXPECT_EQ(base::parse_log_level("--log-level", "10", LogLevelNumbers::accepted), Verbosity::verbose);
  EXPECT_EQ(base::parse_log_level("--log-level", "20", LogLevelNumbers::accepted), Verbosity::normal);
  EXPECT_EQ(base::parse_log_level("--log-level", "30", LogLevelNumbers::accepted), Verbosity::quiet);
  EXPECT_EQ(usage_message([] { base::parse_log_level("--log-level (default)", "loud", LogLevelNumbers::accepted); }),
            "--log-level (default) is \"loud\"; expected warning, info, debug or a number");
}

} // namespace
