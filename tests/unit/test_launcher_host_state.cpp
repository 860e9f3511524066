// host.json and job-outcome.json: what a host's launcher leaves for `smlaunch rank` and the
// workers, read back exactly (environment values are bytes, not necessarily UTF-8).
#include "launcher/host_state.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

class HostStateTest : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    std::string name = (std::filesystem::temp_directory_path() / "host-state-XXXXXX").string();
    ASSERT_NE(::mkdtemp(name.data()), nullptr);
    m_base = name;
  }
  void
  TearDown() override
  {
    std::filesystem::remove_all(m_base);
  }
  std::string m_base;
};

TEST_F(HostStateTest, EnvironmentAndMachineComeBackExactlyEvenBytesThatAreNotUtf8)
{
  launcher::HostState state;
  state.environment.set("PATH", "/usr/bin:/bin");
  state.environment.set("LATIN1", std::string("caf\xe9", 4)); // not UTF-8
  state.environment.set(std::string("N\xff", 2), "v");        // nor this name
  state.environment.set("UTF8", "caf\xc3\xa9 \xe2\x9c\x93");  // UTF-8 stays text
  state.environment.set("QUOTES", "a\"b\\c\n\td");
  state.machine.num_cpus = 96;
  state.machine.num_gpus = 8;
  state.machine.smddprun_installed = true;
  launcher::write_host_state(m_base, state);

  struct stat st
  {
  };
  ASSERT_EQ(::stat((m_base + "/.smlaunch/host.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U); // it holds credentials

  const launcher::HostState back = launcher::read_host_state(m_base);
  EXPECT_EQ(back.environment.entries(), state.environment.entries());
  EXPECT_EQ(back.machine.num_cpus, 96);
  EXPECT_EQ(back.machine.num_gpus, 8);
  EXPECT_TRUE(back.machine.smddprun_installed);
  EXPECT_FALSE(back.machine.smddpmprun_installed);
}

TEST_F(HostStateTest, AMissingStateFileIsAStagingErrorNamingIt)
{
  try {
    (void)launcher::read_host_state(m_base);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(m_base + "/.smlaunch/host.json"), std::string::npos) << e.what();
  }
}

TEST_F(HostStateTest, JobOutcomeRoundTripsItsMessageBytes)
{
  EXPECT_FALSE(launcher::read_job_outcome(m_base).has_value());
  launcher::write_job_outcome(m_base, {3, std::string("failed: \xff\xfe \"quoted\"\n", 19)});
  const auto back = launcher::read_job_outcome(m_base);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->exit_code, 3);
  EXPECT_EQ(back->message, std::string("failed: \xff\xfe \"quoted\"\n", 19));
}

} // namespace
