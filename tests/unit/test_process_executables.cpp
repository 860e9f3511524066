#include "process/executables.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// Two folders on a PATH, `tool` executable in the second only, `plain` not executable.
class ExecutablesDirs : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    root = fs::temp_directory_path() / ("smlaunch-exec-" + std::to_string(::getpid()));
    fs::create_directories(root / "a");
    fs::create_directories(root / "b");
    for (const char* name : {"b/tool", "a/plain"}) {
      std::ofstream(root / name) << "#!/bin/sh\n";
    }
    fs::permissions(root / "b/tool", fs::perms::owner_all);
    fs::permissions(root / "a/plain", fs::perms::owner_read | fs::perms::owner_write);
    path = (root / "a").string() + ":" + (root / "b").string();
  }
  void
  TearDown() override
  {
    fs::remove_all(root);
  }
  fs::path root;
  std::string path;
};

} // namespace

TEST_F(ExecutablesDirs, FindsTheFirstExecutableAlongThePath)
{
  EXPECT_EQ(process::find_executable("tool", path), (root / "b/tool").string());
  EXPECT_EQ(process::find_executable("plain", path), std::nullopt);
  EXPECT_EQ(process::find_executable("", path), std::nullopt);
  EXPECT_EQ(process::find_executable("./relative/name", path), "./relative/name");
}

TEST_F(ExecutablesDirs, AVariableMapIsSearchedAlongItsOwnPath)
{
  env::EnvMap environment;
  environment.set("PATH", path);
  EXPECT_EQ(process::search_path(environment), path);
  EXPECT_EQ(process::find_executable("tool", environment), (root / "b/tool").string());
}

TEST(Executables, AMapWithoutPathUsesExecvpsDefault)
{
  const env::EnvMap environment;
  EXPECT_EQ(process::search_path(environment), process::k_default_path);
  std::string expected; // the first sh along /usr/local/bin:/usr/bin:/bin
  for (const char* candidate : {"/usr/local/bin/sh", "/usr/bin/sh", "/bin/sh"}) {
    if (expected.empty() && ::access(candidate, X_OK) == 0) {
      expected = candidate;
    }
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(process::find_executable("sh", environment), expected);
}
