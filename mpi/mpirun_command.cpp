#include "mpi/mpirun_command.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <string_view>
#include <utility>

namespace mpi {

namespace {

// Instance types with EFA (training-toolkit __init__.py).
constexpr std::array<const char*, 9> k_efa_nccl_instances = {
    "ml.g4dn.8xlarge",  "ml.g4dn.12xlarge", "ml.g5.48xlarge",   "ml.p3dn.24xlarge",      "ml.p4d.24xlarge",
    "ml.p4de.24xlarge", "ml.p5.48xlarge",   "ml.trn1.32xlarge", "ml.p6e-gb200.36xlarge",
};
constexpr std::array<const char*, 4> k_efa_rdma_instances = {"ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.trn1.32xlarge",
                                                             "ml.p6e-gb200.36xlarge"};

template <std::size_t N>
bool
contains(const std::array<const char*, N>& list, const std::string& item)
{
  return std::any_of(list.begin(), list.end(), [&](const char* s) { return item == s; });
}

// mpirun's options that take values, without their leading dashes (Open MPI accepts one or
// two for long names; single letters count with one dash only), each between spaces.
constexpr std::string_view k_options_with_a_value =
    " am app bind-to c cartofile cf cpu-list cpu-set cpus-per-proc cpus-per-rank debugger default-hostfile H hnp"
    " host hostfile launch-agent machinefile map-by max-restarts max-vm-size n N np npernode npersocket ompi-server"
    " output-filename path personality ppr prefix preload-files rank-by rankfile report-events report-pid"
    " report-uri rf stdin timeout tune wd wdir xml-file xterm NCCL_DEBUG ";
constexpr std::string_view k_options_with_two_values = " mca gmca prtemca pmixmca ";

} // namespace

int
option_value_count(const std::string& word)
{
  if (word == "-x") {
    return 1;
  }
  const auto start = word.find_first_not_of('-');
  if (start == 0 || start == std::string::npos || start > 2 || word.find(' ') != std::string::npos) {
    return 0;
  }
  const std::string name = word.substr(start);
  if (name.size() == 1 && word.size() != 2) {
    return 0; // "--c": not an option of mpirun's
  }
  const std::string spaced = " " + name + " ";
  if (k_options_with_two_values.find(spaced) != std::string_view::npos) {
    return 2;
  }
  return k_options_with_a_value.find(spaced) != std::string_view::npos ? 1 : 0;
}

OpenMpiNames
open_mpi_names(int major)
{
  if (major >= 5) {
    return OpenMpiNames{major, "prte_abort_on_non_zero_status", "smsc", "^openib,ofi,uct",
                        "prte_ess_base_forward_signals"};
  }
  return OpenMpiNames{major, "orte_abort_on_non_zero_status", "btl_vader_single_copy_mechanism", "^openib,ofi,uct",
                      "ess_base_forward_signals"};
}

int
parse_open_mpi_major(const std::string& output)
{
  // "mpirun (Open MPI) 4.1.4": the first number after "Open MPI".
  const auto at = output.find("Open MPI");
  if (at == std::string::npos) {
    return 4;
  }
  std::size_t i = at + 8;
  while (i < output.size() && (output[i] == ')' || output[i] == ' ' || output[i] == 'v')) {
    ++i;
  }
  int major = 0;
  bool digits = false;
  while (i < output.size() && output[i] >= '0' && output[i] <= '9') {
    major = major * 10 + (output[i] - '0');
    digits = true;
    ++i;
  }
  return digits && i < output.size() && output[i] == '.' ? major : 4;
}

std::string
take_nccl_debug(std::vector<std::string>& options)
{
  std::string level = "INFO";
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < options.size(); ++i) {
    const std::string& o = options[i];
    if (o == "--NCCL_DEBUG" && i + 1 < options.size()) {
      level = options[++i];
    } else if (o.rfind("--NCCL_DEBUG=", 0) == 0) {
      level = o.substr(13);
    } else {
      rest.push_back(o);
    }
  }
  options = std::move(rest);
  return level;
}

namespace {

// The MCA parameters the user's options set (-mca NAME VALUE), each with the position of its
// value: mpirun refuses a parameter given twice ("listed multiple times on the command line"),
// so the user's wins over ours.
std::vector<std::pair<std::string, std::size_t>>
user_mca_settings(const std::vector<std::string>& options)
{
  std::vector<std::pair<std::string, std::size_t>> settings;
  for (std::size_t i = 0; i + 2 < options.size(); ++i) {
    if (options[i] == "-mca" || options[i] == "--mca") {
      settings.emplace_back(options[i + 1], i + 2);
      i += 2;
    }
  }
  return settings;
}

} // namespace

MpirunCommand
build_mpirun_command(const MpirunInputs& in)
{
  const MpiSettings& s = in.settings;
  MpirunCommand c;
  auto& a = c.argv;
  auto is_present = [&](const std::string& name) {
    return std::find(in.present.begin(), in.present.end(), name) != in.present.end();
  };
  auto export_value = [&](const std::string& name, const std::string& value) {
    a.insert(a.end(), {"-x", name + "=" + value});
    c.exported.push_back(name);
  };
  std::vector<std::string> options = s.custom_options;
  const auto user_mca = user_mca_settings(options);
  const auto user_sets = [&](const std::string& name) {
    return std::find_if(user_mca.begin(), user_mca.end(), [&](const auto& u) { return u.first == name; });
  };
  // Our MCA settings, each unless the user's options set the same parameter.
  auto add_mca = [&](std::initializer_list<std::pair<std::string, std::string>> settings) {
    for (const auto& [name, value] : settings) {
      if (user_sets(name) == user_mca.end()) {
        a.insert(a.end(), {"-mca", name, value});
      }
    }
  };
  auto export_name = [&](const std::string& name) {
    if (is_present(name)) {
      a.insert(a.end(), {"-x", name});
      c.exported.push_back(name);
    }
  };

  // Hosts in launch order; "host:slots" unless one slot each (the reference's form).
  std::string hosts;
  for (const auto& h : s.hosts) {
    const std::string name = in.single_host ? "localhost" : h;
    hosts += (hosts.empty() ? "" : ",") + name +
             (s.processes_per_host > 1 ? ":" + std::to_string(s.processes_per_host) : "");
  }
  a = {in.mpirun,       "--host",      hosts, "-np", std::to_string(s.num_processes), "--allow-run-as-root",
       "--display-map", "--tag-output"};
  if (!in.single_host && in.starter == Starter::slurm) {
    // No ssh: the daemons start through srun; a fallback to ssh would be an error.
    add_mca({{"plm", "slurm"}});
    if (!in.network_interface.empty()) {
      add_mca({{"btl_tcp_if_include", in.network_interface}, {"oob_tcp_if_include", in.network_interface}});
    }
  } else if (!in.single_host) {
    add_mca({{"btl_tcp_if_include", in.network_interface},
             {"oob_tcp_if_include", in.network_interface},
             {"plm_rsh_no_tree_spawn", "1"}});
    if (!in.ssh_command.empty() && in.ssh_command != "ssh") {
      add_mca({{"plm_rsh_agent", in.ssh_command}});
    }
  }
  a.insert(a.end(), {"-bind-to", "none", "-map-by", "slot"});
  add_mca({{"pml", "ob1"},
           {"btl", in.names.btl_exclude},
           {in.names.abort_on_non_zero_status, "1"},
           {in.names.vader_single_copy, "none"}});
  if (!in.rank_wrapper.empty()) {
    // The rank steps' stop request (k_rank_stop_signal), forwarded by mpirun and every daemon.
    add_mca({{in.names.forward_signals, k_rank_stop_signal_name}});
    if (const auto user = user_sets(in.names.forward_signals); user != user_mca.end()) {
      // The user's own list keeps it: without it SIGTERM would no longer reach the programs.
      std::string& list = options[user->second];
      const std::string padded = "," + list + ",";
      if (padded.find(std::string(",") + k_rank_stop_signal_name + ",") == std::string::npos &&
          padded.find("," + std::to_string(k_rank_stop_signal) + ",") == std::string::npos) {
        list += std::string(list.empty() ? "" : ",") + k_rank_stop_signal_name;
      }
    }
  }

  const std::string nccl_debug = take_nccl_debug(options);
  export_value("NCCL_MIN_NRINGS", "4");
  if (!in.network_interface.empty()) {
    export_value("NCCL_SOCKET_IFNAME", in.network_interface);
  }
  export_value("NCCL_DEBUG", nccl_debug);
  export_name("LD_LIBRARY_PATH");
  export_name("PATH");
  a.insert(a.end(), options.begin(), options.end());
  // The user's own `-x NAME[=value]`: the rank step keeps them too, so a value the user
  // exports wins over the host's (and over the thread budget).
  for (std::size_t i = 0; i + 1 < options.size(); ++i) {
    if (options[i] == "-x") {
      const std::string name = options[i + 1].substr(0, options[i + 1].find('='));
      if (!name.empty() && std::find(c.exported.begin(), c.exported.end(), name) == c.exported.end()) {
        c.exported.push_back(name);
      }
    }
  }
  if (contains(k_efa_nccl_instances, in.instance_type)) {
    export_value("FI_PROVIDER", "efa");
    export_value("NCCL_PROTO", "simple");
  }
  if (contains(k_efa_rdma_instances, in.instance_type)) {
    export_value("FI_EFA_USE_DEVICE_RDMA", "1");
  }
  for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}) {
    export_name(name);
  }
  if (!in.rank_wrapper.empty()) {
    // The rank step: per-host SM_* variables, the hostname preload, whole-line output;
    // it keeps the exported names from the environment mpirun gives it.
    std::string keep;
    for (const auto& name : c.exported) {
      keep += (keep.empty() ? "" : ",") + name;
    }
    a.insert(a.end(), {in.rank_wrapper, "rank"});
    a.insert(a.end(), in.rank_options.begin(), in.rank_options.end());
    a.insert(a.end(), {"--keep", keep, "--"});
  }
  a.insert(a.end(), in.program.begin(), in.program.end());
  return c;
}

} // namespace mpi
