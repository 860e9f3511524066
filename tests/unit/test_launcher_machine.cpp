// Parsing the machine probes' output: `nvidia-smi --list-gpus` and `neuron-ls -j`.
#include "launcher/machine.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

std::string
h100_lines(int n)
{
  static const char* const uuids[] = {"GPU-8e3f3a1b-5d2c-4f7e-9a61-0c2b7d4e9f10", "GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809",
                                      "GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "GPU-77aa88bb-99cc-0dd1-1ee2-2ff334455667",
                                      "GPU-deadbeef-0000-1111-2222-333344445555", "GPU-cafef00d-6666-7777-8888-9999aaaabbbb",
                                      "GPU-0badc0de-cccc-dddd-eeee-ffff00001111", "GPU-feedface-2222-3333-4444-555566667777"};
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += "GPU " + std::to_string(i) + ": NVIDIA H100 80GB HBM3 (UUID: " + uuids[i % 8] + ")\n";
  }
  return out;
}

TEST(LauncherMachine, CountGpuLines)
{
  struct Case
  {
    const char* name;
    std::string output;
    int expected;
  };
  const Case cases[] = {
    {"nothing", "", 0},
    {"one H100", "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-8e3f3a1b-5d2c-4f7e-9a61-0c2b7d4e9f10)\n", 1},
    {"eight H100s", h100_lines(8), 8},
    {"no final newline", "GPU 0: Tesla V100-SXM2-16GB (UUID: GPU-a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90)", 1},
    {"blank lines", "\n" + h100_lines(2) + "\n\n", 2},
    {"CRLF", "GPU 0: NVIDIA A10G (UUID: GPU-1)\r\nGPU 1: NVIDIA A10G (UUID: GPU-2)\r\n", 2},
    {"no devices", "No devices found\n", 0},
    {"driver not loaded",
     "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA "
     "driver is installed and running.\n\n",
     0},
    // MIG: the instances are listed, indented, under their GPU; only GPUs count.
    {"MIG instances",
     "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d4c3b2a-1908-7f6e-5d4c-3b2a19087f6e)\n"
     "  MIG 3g.20gb     Device  0: (UUID: MIG-11111111-2222-3333-4444-555555555555)\n"
     "  MIG 3g.20gb     Device  1: (UUID: MIG-66666666-7777-8888-9999-000000000000)\n"
     "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d)\n",
     2},
    {"only lines that start with \"GPU \"", "  GPU 0: indented\nGPUs: 0\ngpu 0: lower\nGPU 3: x\n", 1},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(launcher::count_gpu_lines(c.output), c.expected) << c.name;
  }
}

TEST(LauncherMachine, CountNeuronCores)
{
  // `neuron-ls -j` on a trn1.2xlarge (abridged to the fields that matter, shape kept).
  const std::string trn1_2xl = R"([
    {
        "neuron_device": 0,
        "bdf": "00:1e.0",
        "connected_to": null,
        "nc_count": 2,
        "memory_size": 34359738368,
        "neuron_processes": []
    }
])";
  std::string trn1_32xl = "[";
  for (int i = 0; i < 16; ++i) {
    trn1_32xl += std::string(i == 0 ? "" : ",") + R"({"neuron_device": )" + std::to_string(i) +
                 R"(, "bdf": "10:1c.0", "connected_to": [1, 3], "nc_count": 2, "memory_size": 34359738368, )"
                 R"("neuron_processes": [{"pid": 113, "command": "python3 train.py"}]})";
  }
  trn1_32xl += "]";
  struct Case
  {
    const char* name;
    std::string json;
    int expected;
  };
  const Case cases[] = {
    {"trn1.2xlarge", trn1_2xl, 2},
    {"trn1.32xlarge", trn1_32xl, 32},
    {"inf2, nc_count 2 each", R"([{"neuron_device": 0, "nc_count": 2}, {"neuron_device": 1, "nc_count": 2}])", 4},
    {"mixed counts", R"([{"nc_count": 4}, {"nc_count": 8}])", 12},
    {"no devices", "[]", 0},
    {"a device without nc_count", R"([{"neuron_device": 0}, {"nc_count": 2}])", 2},
    {"non-integer nc_count skipped", R"([{"nc_count": "2"}, {"nc_count": 2.0}, {"nc_count": null}, {"nc_count": 2}])", 2},
    {"entries that are not objects", R"([2, "x", null, {"nc_count": 2}])", 2},
    {"invalid JSON", "[{\"nc_count\": 2}", 0},
    {"not JSON at all", "neuron-ls: error: no neuron devices found\n", 0},
    {"empty", "", 0},
    {"an object, not a list", R"({"nc_count": 2})", 0},
    {"trailing garbage", "[{\"nc_count\": 2}] extra", 0},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(launcher::count_neuron_cores(c.json), c.expected) << c.name;
  }
}

} // namespace

namespace {

namespace fs = std::filesystem;

class MachineFiles : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    char pattern[] = "/tmp/smlaunch-machine-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    m_root = pattern;
  }
  void TearDown() override { fs::remove_all(m_root); }
  void
  touch(const fs::path& p)
  {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "#!/bin/sh\n";
  }
  fs::path m_root;
};

// /proc/driver/nvidia/gpus holds one folder per GPU (named by PCI address).
TEST_F(MachineFiles, CountProcGpus)
{
  const std::string dev = (m_root / "dev").string();
  EXPECT_EQ(launcher::count_proc_gpus((m_root / "absent").string(), dev), std::nullopt);
  fs::create_directories(m_root / "gpus");
  EXPECT_EQ(launcher::count_proc_gpus((m_root / "gpus").string(), dev), 0);
  for (const char* bus : {"0000:10:1c.0", "0000:10:1d.0", "0000:a0:1c.0"}) {
    fs::create_directories(m_root / "gpus" / bus);
  }
  touch(m_root / "gpus" / "not-a-gpu");
  // No `information` file: nothing tells the device node, so each folder counts.
  EXPECT_EQ(launcher::count_proc_gpus((m_root / "gpus").string(), dev), 3);
}

// The driver's /proc is the host's, also inside a container: a GPU counts only where its
// /dev/nvidia<minor> is (a CPU container on an 8-GPU host has none; a container given GPU 2
// has /dev/nvidia2 alone).
TEST_F(MachineFiles, CountProcGpusOnlyWithTheirDeviceNode)
{
  const std::string dev = (m_root / "dev").string();
  int minor = 0;
  for (const char* bus : {"0000:10:1c.0", "0000:10:1d.0", "0000:a0:1c.0"}) {
    fs::create_directories(m_root / "gpus" / bus);
    std::ofstream(m_root / "gpus" / bus / "information")
        << "Model: \t\t NVIDIA H200\nIRQ:   \t\t 0\nGPU UUID: \t GPU-0\nDevice Minor: \t " << minor++
        << "\nBus Location: \t " << bus << "\n";
  }
  fs::create_directories(m_root / "dev");
  EXPECT_EQ(launcher::count_proc_gpus((m_root / "gpus").string(), dev), 0);
  touch(m_root / "dev" / "nvidia2");
  touch(m_root / "dev" / "nvidiactl");
  EXPECT_EQ(launcher::count_proc_gpus((m_root / "gpus").string(), dev), 1);
  touch(m_root / "dev" / "nvidia0");
  EXPECT_EQ(launcher::count_proc_gpus((m_root / "gpus").string(), dev), 2);
}

// Open MPI's major version from its launcher's files, as Debian and upstream lay them out.
TEST_F(MachineFiles, OpenMpiMajorFromFiles)
{
  struct Case
  {
    const char* name;
    std::vector<std::string> files;              // under m_root
    std::vector<std::pair<std::string, std::string>> links; // link -> target
    const char* mpirun;
    std::optional<int> expected;
  };
  const Case cases[] = {
    {"Debian 12: mpirun -> alternatives -> mpirun.openmpi -> orterun", {"bin/orterun"},
     {{"etc/alternatives/mpirun", "../../bin/mpirun.openmpi"}, {"bin/mpirun.openmpi", "orterun"},
      {"bin/mpirun", "../etc/alternatives/mpirun"}},
     "bin/mpirun", 4},
    {"Open MPI 4 from source: mpirun -> orterun", {"v4/bin/orterun"}, {{"v4/bin/mpirun", "orterun"}}, "v4/bin/mpirun", 4},
    {"Open MPI 5: mpirun with prterun beside it", {"v5/bin/mpirun", "v5/bin/prterun"}, {}, "v5/bin/mpirun", 5},
    {"Open MPI 4, mpirun a copy with orterun beside it", {"c4/bin/mpirun", "c4/bin/orterun"}, {}, "c4/bin/mpirun", 4},
    {"MPICH or unknown: nothing tells", {"x/bin/mpirun"}, {}, "x/bin/mpirun", std::nullopt},
    {"missing", {}, {}, "none/bin/mpirun", std::nullopt},
  };
  for (const auto& c : cases) {
    for (const auto& f : c.files) {
      touch(m_root / f);
    }
    for (const auto& [link, target] : c.links) {
      fs::create_directories((m_root / link).parent_path());
      fs::create_symlink(target, m_root / link);
    }
    EXPECT_EQ(launcher::open_mpi_major_from_files((m_root / c.mpirun).string()), c.expected) << c.name;
  }
}

} // namespace
