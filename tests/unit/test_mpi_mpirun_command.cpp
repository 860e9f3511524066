#include "mpi/mpirun_command.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

namespace {

using Strings = std::vector<std::string>;

mpi::MpirunInputs
two_hosts(int slots)
{
  mpi::MpirunInputs in;
  in.settings.enabled = true;
  in.settings.hosts = {"algo-1", "algo-2"};
  in.settings.processes_per_host = slots;
  in.settings.num_processes = 2 * slots;
  in.network_interface = "eth0";
  in.instance_type = "ml.c5.xlarge";
  in.present = {"PATH", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"};
  in.rank_wrapper = "/usr/bin/smlaunch";
  in.program = {"/usr/bin/python3", "-m", "mpi4py", "train.py", "--lr", "0.1"};
  return in;
}

// The reference's order (training-toolkit.md, section 8.2) with smlaunch's differences:
// no LD_PRELOAD (the rank step preloads), no -x SM_* (the rank step computes them per host),
// ofi and uct excluded from the BTLs, SIGURG forwarded (the rank steps' stop request).
TEST(MpirunCommand, GoldenTwoHostsTwoSlots)
{
  const auto c = mpi::build_mpirun_command(two_hosts(2));
  const Strings expected = {
    "mpirun", "--host", "algo-1:2,algo-2:2", "-np", "4", "--allow-run-as-root", "--display-map", "--tag-output",
    "-mca", "btl_tcp_if_include", "eth0", "-mca", "oob_tcp_if_include", "eth0", "-mca", "plm_rsh_no_tree_spawn", "1",
    "-bind-to", "none", "-map-by", "slot", "-mca", "pml", "ob1", "-mca", "btl", "^openib,ofi,uct", "-mca",
    "orte_abort_on_non_zero_status", "1", "-mca", "btl_vader_single_copy_mechanism", "none",
    "-mca", "ess_base_forward_signals", "SIGURG",
    "-x", "NCCL_MIN_NRINGS=4", "-x", "NCCL_SOCKET_IFNAME=eth0", "-x", "NCCL_DEBUG=INFO", "-x", "PATH",
    "-x", "AWS_ACCESS_KEY_ID", "-x", "AWS_SECRET_ACCESS_KEY",
    "/usr/bin/smlaunch", "rank", "--keep", "NCCL_MIN_NRINGS,NCCL_SOCKET_IFNAME,NCCL_DEBUG,PATH,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY", "--",
    "/usr/bin/python3", "-m", "mpi4py", "train.py", "--lr", "0.1"};
  EXPECT_EQ(c.argv, expected);
  EXPECT_EQ(c.exported, (Strings{"NCCL_MIN_NRINGS", "NCCL_SOCKET_IFNAME", "NCCL_DEBUG", "PATH", "AWS_ACCESS_KEY_ID",
                                 "AWS_SECRET_ACCESS_KEY"}));
}

// Under Slurm: no ssh agent, no tree-spawn flag, plm slurm (daemons through srun), the
// interface flags only when one is given, and the rank step told the cluster and its tree.
TEST(MpirunCommand, GoldenSlurmTwoHostsTwoSlots)
{
  mpi::MpirunInputs in = two_hosts(2);
  in.starter = mpi::Starter::slurm;
  in.network_interface = "";
  in.ssh_command = "ssh -F /etc/smlaunch/ssh_config";
  in.rank_options = {"--cluster", "slurm", "--base-dir", "/shared/job/%n"};
  const auto c = mpi::build_mpirun_command(in);
  const Strings expected = {
    "mpirun", "--host", "algo-1:2,algo-2:2", "-np", "4", "--allow-run-as-root", "--display-map", "--tag-output",
    "-mca", "plm", "slurm",
    "-bind-to", "none", "-map-by", "slot", "-mca", "pml", "ob1", "-mca", "btl", "^openib,ofi,uct", "-mca",
    "orte_abort_on_non_zero_status", "1", "-mca", "btl_vader_single_copy_mechanism", "none",
    "-mca", "ess_base_forward_signals", "SIGURG",
    "-x", "NCCL_MIN_NRINGS=4", "-x", "NCCL_DEBUG=INFO", "-x", "PATH",
    "-x", "AWS_ACCESS_KEY_ID", "-x", "AWS_SECRET_ACCESS_KEY",
    "/usr/bin/smlaunch", "rank", "--cluster", "slurm", "--base-dir", "/shared/job/%n",
    "--keep", "NCCL_MIN_NRINGS,NCCL_DEBUG,PATH,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY", "--",
    "/usr/bin/python3", "-m", "mpi4py", "train.py", "--lr", "0.1"};
  EXPECT_EQ(c.argv, expected);

  in.network_interface = "veth0";
  const auto with_interface = mpi::build_mpirun_command(in);
  const Strings flags(with_interface.argv.begin() + 8, with_interface.argv.begin() + 19);
  EXPECT_EQ(flags, (Strings{"-mca", "plm", "slurm", "-mca", "btl_tcp_if_include", "veth0", "-mca",
                            "oob_tcp_if_include", "veth0", "-bind-to", "none"}));
  EXPECT_NE(std::find(with_interface.argv.begin(), with_interface.argv.end(), "NCCL_SOCKET_IFNAME=veth0"),
            with_interface.argv.end());
}

TEST(MpirunCommand, OneSlotPerHostListsBareNames)
{
  const auto c = mpi::build_mpirun_command(two_hosts(1));
  EXPECT_EQ(c.argv[2], "algo-1,algo-2");
  EXPECT_EQ(c.argv[4], "2");
}

TEST(MpirunCommand, UserOptionsComeAfterTheFixedFlagsAndNcclDebugIsTaken)
{
  auto in = two_hosts(1);
  in.settings.custom_options = {"--NCCL_DEBUG", "WARN", "-x", "A=b c", "--mca", "btl_tcp_if_exclude", "lo"};
  const auto c = mpi::build_mpirun_command(in);
  const auto at = [&](const std::string& s) { return std::find(c.argv.begin(), c.argv.end(), s) - c.argv.begin(); };
  EXPECT_NE(std::find(c.argv.begin(), c.argv.end(), "NCCL_DEBUG=WARN"), c.argv.end());
  EXPECT_EQ(std::find(c.argv.begin(), c.argv.end(), "--NCCL_DEBUG"), c.argv.end());
  EXPECT_GT(at("A=b c"), at("PATH"));          // after -x PATH, as in the reference
  EXPECT_LT(at("A=b c"), at("/usr/bin/python3"));
}

TEST(MpirunCommand, TheUsersOwnExportsAreKeptByTheRankStep)
{
  auto in = two_hosts(1);
  in.settings.custom_options = {"-x", "OMP_NUM_THREADS=3", "-x", "MKL_NUM_THREADS", "-x", "PATH",
                                "--mca", "x", "y", "-x"};
  const auto c = mpi::build_mpirun_command(in);
  const auto count = [&](const std::string& name) { return std::count(c.exported.begin(), c.exported.end(), name); };
  EXPECT_EQ(count("OMP_NUM_THREADS"), 1);
  EXPECT_EQ(count("MKL_NUM_THREADS"), 1);
  EXPECT_EQ(count("PATH"), 1); // once, though both smlaunch and the user export it
  EXPECT_EQ(count("x"), 0);    // an --mca value, not an export
  EXPECT_EQ(count("y"), 0);
}

TEST(MpirunCommand, EfaInstancesExportFabricSettings)
{
  auto in = two_hosts(8);
  in.instance_type = "ml.p4d.24xlarge";
  const auto c = mpi::build_mpirun_command(in);
  for (const char* v : {"FI_PROVIDER=efa", "NCCL_PROTO=simple", "FI_EFA_USE_DEVICE_RDMA=1"}) {
    EXPECT_NE(std::find(c.argv.begin(), c.argv.end(), v), c.argv.end()) << v;
  }
  in.instance_type = "ml.g5.48xlarge"; // EFA for NCCL, no RDMA
  const auto g5 = mpi::build_mpirun_command(in);
  EXPECT_NE(std::find(g5.argv.begin(), g5.argv.end(), "FI_PROVIDER=efa"), g5.argv.end());
  EXPECT_EQ(std::find(g5.argv.begin(), g5.argv.end(), "FI_EFA_USE_DEVICE_RDMA=1"), g5.argv.end());
}

TEST(MpirunCommand, SingleHostRunsLocallyWithoutInterfaceFlags)
{
  auto in = two_hosts(3);
  in.settings.hosts = {"algo-1"};
  in.settings.num_processes = 3;
  in.single_host = true;
  const auto c = mpi::build_mpirun_command(in);
  EXPECT_EQ(c.argv[2], "localhost:3");
  EXPECT_EQ(std::find(c.argv.begin(), c.argv.end(), "btl_tcp_if_include"), c.argv.end());
  EXPECT_EQ(std::find(c.argv.begin(), c.argv.end(), "plm_rsh_agent"), c.argv.end());
}

TEST(MpirunCommand, SshAgentOnlyWhenNotPlainSsh)
{
  auto in = two_hosts(1);
  in.ssh_command = "ssh";
  auto c = mpi::build_mpirun_command(in);
  EXPECT_EQ(std::find(c.argv.begin(), c.argv.end(), "plm_rsh_agent"), c.argv.end());
  in.ssh_command = "ssh -F /etc/ssh_config";
  c = mpi::build_mpirun_command(in);
  const auto it = std::find(c.argv.begin(), c.argv.end(), "plm_rsh_agent");
  ASSERT_NE(it, c.argv.end());
  EXPECT_EQ(*(it + 1), "ssh -F /etc/ssh_config");
}

TEST(MpirunCommand, OpenMpiVersions)
{
  EXPECT_EQ(mpi::parse_open_mpi_major("mpirun (Open MPI) 4.1.4\n\nReport bugs to http://www.open-mpi.org/"), 4);
  EXPECT_EQ(mpi::parse_open_mpi_major("mpirun (Open MPI) 5.0.3\n"), 5);
  EXPECT_EQ(mpi::parse_open_mpi_major("garbage"), 4);
  EXPECT_STREQ(mpi::open_mpi_names(5).abort_on_non_zero_status, "prte_abort_on_non_zero_status");
  EXPECT_STREQ(mpi::open_mpi_names(4).abort_on_non_zero_status, "orte_abort_on_non_zero_status");
  EXPECT_STREQ(mpi::open_mpi_names(5).forward_signals, "prte_ess_base_forward_signals");
  EXPECT_STREQ(mpi::open_mpi_names(4).forward_signals, "ess_base_forward_signals");
}

// Without the rank step, nothing would turn the forwarded SIGURG into a SIGTERM.
TEST(MpirunCommand, TheRankStopSignalIsForwardedOnlyToRankSteps)
{
  auto in = two_hosts(1);
  const auto c = mpi::build_mpirun_command(in);
  EXPECT_NE(std::find(c.argv.begin(), c.argv.end(), "ess_base_forward_signals"), c.argv.end());
  in.rank_wrapper = "";
  const auto bare = mpi::build_mpirun_command(in);
  EXPECT_EQ(std::find(bare.argv.begin(), bare.argv.end(), "ess_base_forward_signals"), bare.argv.end());
}

std::size_t
count_of(const Strings& argv, const std::string& word)
{
  return static_cast<std::size_t>(std::count(argv.begin(), argv.end(), word));
}

// mpirun refuses an MCA parameter given twice; the user's setting replaces ours.
TEST(MpirunCommand, TheUsersMcaParameterReplacesOurs)
{
  auto in = two_hosts(1);
  in.settings.custom_options = {"-mca", "btl", "^openib", "--mca", "btl_tcp_if_include", "eth1", "-mca", "pml", "ucx"};
  const auto c = mpi::build_mpirun_command(in);
  EXPECT_EQ(count_of(c.argv, "btl"), 1U);
  EXPECT_EQ(count_of(c.argv, "btl_tcp_if_include"), 1U);
  EXPECT_EQ(count_of(c.argv, "pml"), 1U);
  EXPECT_EQ(count_of(c.argv, "ob1"), 0U);
  EXPECT_EQ(count_of(c.argv, "^openib,ofi,uct"), 0U);
  EXPECT_EQ(count_of(c.argv, "oob_tcp_if_include"), 1U); // ours, the user did not set it
  const auto at = [&](const std::string& w) { return std::find(c.argv.begin(), c.argv.end(), w) - c.argv.begin(); };
  EXPECT_EQ(c.argv[static_cast<std::size_t>(at("btl_tcp_if_include")) + 1], "eth1");
}

// The user's own signals to forward keep the rank steps' stop request.
TEST(MpirunCommand, TheUsersForwardedSignalsKeepTheRankStopSignal)
{
  auto in = two_hosts(1);
  const std::pair<std::string, std::string> cases[] = {
      {"SIGUSR1", "SIGUSR1,SIGURG"}, {"SIGUSR1,SIGURG", "SIGUSR1,SIGURG"}, {"23,SIGUSR2", "23,SIGUSR2"}};
  for (const auto& [given, expected] : cases) {
    in.settings.custom_options = {"-x", "A=1", "-mca", "ess_base_forward_signals", given};
    const auto c = mpi::build_mpirun_command(in);
    EXPECT_EQ(count_of(c.argv, "ess_base_forward_signals"), 1U) << given;
    EXPECT_EQ(count_of(c.argv, expected), 1U) << given;
  }
  in.rank_wrapper = ""; // no rank steps: nothing of ours to add
  in.settings.custom_options = {"-mca", "ess_base_forward_signals", "SIGUSR1"};
  EXPECT_EQ(count_of(mpi::build_mpirun_command(in).argv, "SIGUSR1"), 1U);
}

TEST(MpirunCommand, OptionValueCounts)
{
  const std::pair<const char*, int> cases[] = {
      {"-x", 1},         {"-mca", 2},     {"--mca", 2},         {"-gmca", 2},       {"--prtemca", 2},
      {"-np", 1},        {"--np", 1},     {"-n", 1},            {"-H", 1},          {"--host", 1},
      {"--map-by", 1},   {"-bind-to", 1}, {"--NCCL_DEBUG", 1},  {"--tag-output", 0}, {"-v", 0},
      {"--x", 0},        {"--c", 0},      {"---mca", 0},        {"-", 0},           {"", 0},
      {"mca", 0},        {"-am app", 0},  {"--report-bindings", 0},
  };
  for (const auto& [word, count] : cases) {
    EXPECT_EQ(mpi::option_value_count(word), count) << word;
  }
}

} // namespace
