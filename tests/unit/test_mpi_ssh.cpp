// The ssh and sshd argv of a several-host job (golden), and connection sharing.
#include "mpi/ssh.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using Strings = std::vector<std::string>;

TEST(MpiSsh, GoldenSshArgvWithConnectionSharing)
{
  const Strings sharing = mpi::ssh_connection_sharing("/opt/ml/.smlaunch");
  EXPECT_EQ(sharing, (Strings{"-o", "ControlMaster=auto", "-o", "ControlPersist=60", "-o",
                              "ControlPath=/opt/ml/.smlaunch/%C"}));
  EXPECT_EQ(mpi::ssh_argv({"ssh", "-p", "2222"}, sharing, "algo-2", {"true"}),
            (Strings{"ssh", "-p", "2222", "-o", "ControlMaster=auto", "-o", "ControlPersist=60", "-o",
                     "ControlPath=/opt/ml/.smlaunch/%C", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "algo-2",
                     "true"}));
  EXPECT_EQ(mpi::ssh_argv({"ssh"}, {}, "algo-3", {}),
            (Strings{"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "algo-3"}));
}

TEST(MpiSsh, NoSharingWhenTheSocketPathWouldNotFit)
{
  // 107 bytes of sun_path: the folder, "/", 40 of %C's hash and 17 of ssh's suffix.
  const std::string fits(107 - 1 - 40 - 17, 'd');
  EXPECT_FALSE(mpi::ssh_connection_sharing(fits).empty());
  EXPECT_TRUE(mpi::ssh_connection_sharing(fits + "d").empty());
}

// Open MPI 4 splits plm_rsh_agent on spaces and colons and ignores quotes: a ControlPath
// with either would break mpirun's ssh, so sharing is off for such a base directory.
TEST(MpiSsh, NoSharingWhenThePathHasASpaceOrAColon)
{
  EXPECT_TRUE(mpi::ssh_connection_sharing("/tmp/my job/.smlaunch").empty());
  EXPECT_TRUE(mpi::ssh_connection_sharing("/tmp/a:b/.smlaunch").empty());
  EXPECT_FALSE(mpi::ssh_connection_sharing("/tmp/a_b/.smlaunch").empty());
}

TEST(MpiSsh, GoldenSshdArgv)
{
  mpi::SshdInputs in;
  in.base_dir = "/opt/ml";
  EXPECT_EQ(mpi::sshd_argv(in),
            (Strings{"sshd", "-D", "-e", "-o", "SetEnv=SMLAUNCH_BASE_DIR=/opt/ml", "-o", "LogLevel=ERROR", "-o",
                     "PidFile=none"}));
  in.sshd = "/usr/sbin/sshd";
  in.config = "/etc/smlaunch/sshd_config";
  in.port = 2222;
  EXPECT_EQ(mpi::sshd_argv(in), (Strings{"/usr/sbin/sshd", "-D", "-e", "-f", "/etc/smlaunch/sshd_config", "-p", "2222",
                                         "-o", "SetEnv=SMLAUNCH_BASE_DIR=/opt/ml", "-o", "LogLevel=ERROR", "-o",
                                         "PidFile=none"}));
}

TEST(SshdArgv, ABaseDirWithASpaceOrAQuoteIsOneQuotedValueForSshd)
{
  // sshd reads `-o` like a config line: unquoted, "/a b" would be two values and refused.
  mpi::SshdInputs in;
  in.base_dir = "/tmp/a job/algo-1";
  EXPECT_EQ(mpi::sshd_argv(in)[4], "SetEnv=\"SMLAUNCH_BASE_DIR=/tmp/a job/algo-1\"");
  in.base_dir = "/tmp/a \"b\\c";
  EXPECT_EQ(mpi::sshd_argv(in)[4], "SetEnv=\"SMLAUNCH_BASE_DIR=/tmp/a \\\"b\\\\c\"");
  in.base_dir = "/tmp/a:job/algo-1"; // a colon means nothing to sshd
  EXPECT_EQ(mpi::sshd_argv(in)[4], "SetEnv=SMLAUNCH_BASE_DIR=/tmp/a:job/algo-1");
}

} // namespace
