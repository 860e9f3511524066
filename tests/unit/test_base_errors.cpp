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
    launcher::LauncherError error;
    std::string error_class;
    int exit_code;
  };
  const Row rows[] = {
    {launcher::UsageError("m"), "UsageError", 64},
    {launcher::BaseDirectoryError("m"), "ConfigError", 65},
    {launcher::StagingError("m"), "StagingError", 66},
    {launcher::InstallError("InstallRequirementsError", "m"), "InstallRequirementsError", 67},
    {launcher::ClusterError("m"), "ClusterError", 68},
    {launcher::HostResolutionError("m"), "HostResolutionError", 68},
    {launcher::HostUnreachableError("m"), "HostUnreachableError", 68},
    {launcher::SshdError("m"), "SshdError", 68},
    {launcher::ArchiveError("m"), "ArchiveError", 70},
  };
  for (const auto& row : rows) {
    EXPECT_EQ(row.error.error_class(), row.error_class);
    EXPECT_EQ(row.error.exit_code(), row.exit_code) << row.error_class;
  }
}

TEST(BaseErrors, StoppedNamesTheSignalAndThePhase)
{
  const launcher::StoppedError stop(SIGTERM, "installing with pip");
  EXPECT_EQ(stop.error_class(), "Stopped");
  EXPECT_EQ(stop.exit_code(), 128 + SIGTERM);
  EXPECT_EQ(stop.signal(), SIGTERM);
  EXPECT_STREQ(stop.what(), "stopped by SIGTERM while installing with pip");
  EXPECT_EQ(launcher::signal_name(SIGINT), "SIGINT");
}

} // namespace
