#include "launcher/machine.hpp"

#include "base/shell.hpp"
#include "env/json_value.hpp"
#include "process/executables.hpp"
#include "process/failure_report.hpp"

#include <cstdlib>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <filesystem>
#include <fstream>
#include <spdlog/spdlog.h>
#include <string_view>
#include <unistd.h>

namespace launcher {

namespace {

// AWS Neuron's driver makes /dev/neuron0 (passed to Neuron containers); without it
// `neuron-ls` finds no device, so it is not looked for along PATH.
bool
neuron_driver_present()
{
  return ::access("/dev/neuron0", F_OK) == 0;
}

// Without NVIDIA's kernel driver (no /proc/driver/nvidia, no /dev/nvidiactl; GPU
// containers get both) nvidia-smi cannot find a GPU: then no PATH search for it is made.
bool
nvidia_driver_present()
{
  std::error_code ec;
  return std::filesystem::exists("/proc/driver/nvidia", ec) || std::filesystem::exists("/dev/nvidiactl", ec);
}

// "Device Minor:\t 2" of a GPU's `information` file: the N of its /dev/nvidiaN.
std::optional<int>
device_minor(const std::filesystem::path& information)
{
  std::ifstream in(information);
  std::string line;
  constexpr std::string_view k_key = "Device Minor:";
  while (std::getline(in, line)) {
    if (line.compare(0, k_key.size(), k_key) != 0) {
      continue;
    }
    const char* text = line.c_str() + k_key.size();
    char* end = nullptr;
    const long minor = std::strtol(text, &end, 10);
    if (end != text && minor >= 0 && minor < 4096) {
      return static_cast<int>(minor);
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::string>
run_probe(process::Supervisor& supervisor, const env::EnvMap& environment, const std::string& program,
          std::vector<std::string> args, std::vector<std::string>& processes_run)
{
  const auto exe = process::find_executable(program, environment);
  if (!exe) {
    return std::nullopt;
  }
  process::ChildSpec spec;
  spec.argv = {*exe};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.envp = environment.to_envp();
  spec.output = process::OutputMode::capture;
  spec.timeout = std::chrono::seconds(20);
  processes_run.push_back(base::join_command(spec.argv));
  const process::ChildResult r = supervisor.run(spec);
  if (r.exit_code != 0) {
    spdlog::debug("{} exited with {}", program, r.exit_code);
    return std::nullopt;
  }
  return r.captured;
}

} // namespace

int
count_gpu_lines(const std::string& output)
{
  int n = 0;
  std::size_t start = 0;
  while (start < output.size()) {
    auto end = output.find('\n', start);
    if (end == std::string::npos) {
      end = output.size();
    }
    if (output.compare(start, 4, "GPU ") == 0) {
      ++n;
    }
    start = end + 1;
  }
  return n;
}

int
count_neuron_cores(const std::string& json)
{
  try {
    const env::Value devices = env::parse_json(json);
    long long total = 0;
    for (const auto& d : devices.items()) {
      const env::Value* nc = d.is_object() ? d.find("nc_count") : nullptr;
      if (nc != nullptr && nc->kind() == env::Value::Kind::integer && nc->text().size() < 6) {
        total += std::stoll(nc->text());
      }
    }
    return static_cast<int>(total);
  } catch (const std::exception&) {
    return 0;
  }
}

std::optional<int>
count_proc_gpus(const std::string& proc_gpus_dir, const std::string& dev_dir)
{
  std::error_code ec;
  std::filesystem::directory_iterator it(proc_gpus_dir, ec);
  if (ec) {
    return std::nullopt;
  }
  int n = 0;
  for (const auto& entry : it) {
    if (!entry.is_directory(ec)) {
      continue;
    }
    // The driver's /proc is the host's, also in a container that was given no GPU or some
    // of them: a GPU counts only where its device node is here.
    const auto minor = device_minor(entry.path() / "information");
    if (!minor || std::filesystem::exists(std::filesystem::path(dev_dir) / ("nvidia" + std::to_string(*minor)), ec)) {
      ++n;
    }
  }
  return n;
}

std::optional<int>
open_mpi_major_from_files(const std::string& mpirun_path)
{
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(mpirun_path, ec);
  if (ec) {
    return std::nullopt;
  }
  if (real.filename() == "orterun") {
    return 4;
  }
  if (real.filename() == "prterun" || std::filesystem::exists(real.parent_path() / "prterun", ec)) {
    return 5;
  }
  if (std::filesystem::exists(real.parent_path() / "orterun", ec)) {
    return 4;
  }
  return std::nullopt;
}

env::VectorIsa
probe_vector_isa()
{
#if defined(__x86_64__)
  // Two cpuid leaves and XCR0, read only here: __builtin_cpu_supports would link libgcc's
  // constructor, which reads its many leaves at every start (even `--version`), and cpuid
  // traps to the hypervisor in a VM (1.2 us each on this project's VM).
  unsigned eax = 0;
  unsigned ebx = 0;
  unsigned ecx = 0;
  unsigned edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & bit_OSXSAVE) == 0 || (ecx & bit_AVX) == 0) {
    return env::VectorIsa::other;
  }
  const bool fma = (ecx & bit_FMA) != 0;
  unsigned xcr0 = 0;
  unsigned xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
  if ((xcr0 & 0x6U) != 0x6U || __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) {
    return env::VectorIsa::other; // the kernel does not save the AVX registers
  }
  constexpr unsigned k_avx512 = bit_AVX512F | bit_AVX512CD | bit_AVX512BW | bit_AVX512DQ | bit_AVX512VL;
  if ((ebx & k_avx512) == k_avx512 && (xcr0 & 0xe6U) == 0xe6U) { // and the AVX-512 registers
    return env::VectorIsa::avx512;
  }
  if ((ebx & bit_AVX2) != 0 && fma) {
    return env::VectorIsa::avx2;
  }
#endif
  return env::VectorIsa::other;
}

MachineProbe
probe_machine(process::Supervisor& supervisor, const env::EnvMap& environment, const std::string& instance_type,
              std::optional<int> num_gpus)
{
  MachineProbe probe;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN); // what multiprocessing.cpu_count() reads
  probe.facts.num_cpus = cpus > 0 ? static_cast<int>(cpus) : 1;
  probe.facts.vector_isa = probe_vector_isa();

  const bool nvidia = !num_gpus && nvidia_driver_present(); // else neither of the two below can find a GPU
  if (num_gpus) {
    probe.facts.num_gpus = *num_gpus;
    probe.gpu_source = "option";
  } else if (const auto listed = nvidia ? count_proc_gpus() : std::nullopt) {
    // Files, not NVML: its init took 12-25 ms on an H200 host with persistence mode on
    // (bench/README.md), and a static binary cannot safely dlopen it (it would load a
    // second libc). Where /dev/nvidiactl is but that folder is not, nvidia-smi counts them.
    probe.facts.num_gpus = *listed;
    probe.gpu_source = "proc";
  } else if (const auto out =
                 nvidia ? run_probe(supervisor, environment, "nvidia-smi", {"--list-gpus"}, probe.processes_run)
                        : std::nullopt) {
    probe.facts.num_gpus = count_gpu_lines(*out);
    probe.gpu_source = "nvidia-smi";
  } else {
    probe.gpu_source = "none";
  }

  if (instance_type.find("trn2.48xlarge") != std::string::npos) {
    probe.facts.num_neurons = 64;
  } else if (neuron_driver_present()) {
    if (const auto out = run_probe(supervisor, environment, "neuron-ls", {"-j"}, probe.processes_run)) {
      probe.facts.num_neurons = count_neuron_cores(*out);
    }
  }

  const std::string path_value = process::search_path(environment);
  probe.facts.smddprun_installed = process::find_executable("smddprun", path_value).has_value();
  probe.facts.smddpmprun_installed = process::find_executable("smddpmprun", path_value).has_value();
  spdlog::debug("machine: {} CPUs, {} GPUs (from {}), {} Neuron cores", probe.facts.num_cpus, probe.facts.num_gpus,
                probe.gpu_source, probe.facts.num_neurons);
  return probe;
}

} // namespace launcher
