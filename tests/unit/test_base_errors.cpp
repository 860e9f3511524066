// The error hierarchy: one type per failure class, each with its documented exit code.
#include "base/errors.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <string>

namespace {

TEST(BaseErrors, EachTypeHasItsClassAndExitCode)
{
  struct Row
  {
    base::LauncherError error;
    std::string error_class;
    int exit_code;
  };
  const Row rows[] = {
    {base::UsageError("m"), "UsageError", 64},
    {base::BaseDirectoryError("m"), "ConfigError", 65},
    {base::StagingError("m"), "StagingError", 66},
    {base::InstallError("InstallRequirementsError", "m"), "InstallRequirementsError", 67},
    {base::ClusterError("m"), "ClusterError", 68},
    {base::HostResolutionError("m"), "HostResolutionError", 68},
    {base::HostUnreachableError("m"), "HostUnreachableError", 68},
    {base::SshdError("m"), "SshdError", 68},
    {base::ArchiveError("m"), "ArchiveError", 70},
  };
  for (const auto& row : rows) {
    EXPECT_EQ(row.error.error_class(), row.error_class);
    EXPECT_EQ(row.error.exit_code(), row.exit_code) << row.error_class;
  }
}

TEST(BaseErrors, StoppedNamesTheSignalAndThePhase)
{
  const base::StoppedError stop(SIGTERM, "installing with pip");
  EXPECT_EQ(stop.error_class(), "Stopped");
  EXPECT_EQ(stop.exit_code(), 128 + SIGTERM);
  EXPECT_EQ(stop.signal(), SIGTERM);
  EXPECT_STREQ(stop.what(), "stopped by SIGTERM while installing with pip");
  EXPECT_EQ(base::signal_name(SIGINT), "SIGINT");
}

} // namespace
