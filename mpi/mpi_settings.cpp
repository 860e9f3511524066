#include "mpi/mpi_settings.hpp"

#include "base/shell.hpp"
#include "env/config_error.hpp"
#include "env/py_format.hpp"
#include "mpi/mpirun_command.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace mpi {

namespace {

const env::Value*
first_present(const env::Value& params, std::initializer_list<const char*> names, std::string& which)
{
  for (const char* name : names) {
    if (const env::Value* v = params.find(name)) {
      which = name;
      return v;
    }
  }
  return nullptr;
}

// A positive count in [1, max]: an integer, or a string holding one.
long long
positive_count(const env::Value& v, const std::string& key, const std::string& file, long long max)
{
  long long n = 0;
  bool ok = false;
  if (v.kind() == env::Value::Kind::integer || v.is_string()) {
    const std::string& t = v.text();
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    ok = ec == std::errc() && end == t.data() + t.size();
  }
  if (!ok || n < 1 || n > max) {
    throw env::ConfigError(file, "/" + key,
                           "is " + env::py_repr(v) + "; expected a whole number from 1 to " + std::to_string(max));
  }
  return n;
}

} // namespace

MpiSettings
resolve_mpi_settings(const env::TrainingEnvironment& e, std::optional<int> cluster_slots)
{
  const env::Value& sm = e.hyperparameters.sagemaker;
  const std::string& file = e.paths.hyperparameters_file;
  MpiSettings s;
  s.hosts = e.distribution_hosts.empty() ? e.hosts : e.distribution_hosts;
  s.master = e.master_hostname;

  std::string which;
  if (const env::Value* flag = first_present(sm, {"sagemaker_use_mpi", "sagemaker_mpi_enabled"}, which)) {
    s.enabled = flag->truthy();
    s.why = which + " is " + env::py_repr(*flag);
  } else {
    s.enabled = e.hosts.size() > 1;
    s.why = std::to_string(e.hosts.size()) + (e.hosts.size() > 1 ? " hosts" : " host");
  }
  // mpirun runs on the distribution hosts only: a host outside them would wait for a master
  // that never starts ranks on it nor tells it the outcome. The toolkit runs the script
  // there as a plain process (MPI only when the current group is a distribution group).
  if (s.enabled && std::find(s.hosts.begin(), s.hosts.end(), e.current_host) == s.hosts.end()) {
    s.enabled = false;
    s.why = s.why + ", but " + e.current_host + " is not in the distribution instance groups (" +
            env::py_json_dumps(e.distribution_instance_groups) + ")";
  }

  // The counts are checked only when MPI runs: the Chainer estimator writes
  // sagemaker_num_processes for one instance with use_mpi=False, and the reference runs
  // that job without looking at it. Without MPI a value that does not fit is ignored.
  const auto count = [&](const env::Value& v, long long max, long long fallback) {
    if (s.enabled) {
      return positive_count(v, which, file, max);
    }
    try {
      return positive_count(v, which, file, max);
    } catch (const env::ConfigError&) {
      return fallback;
    }
  };
  s.processes_per_host = e.machine.num_gpus > 0 ? e.machine.num_gpus : 1;
  if (cluster_slots && *cluster_slots > 0) {
    s.processes_per_host = static_cast<int>(std::min<long long>(*cluster_slots, k_max_processes_per_host));
  }
  if (const env::Value* slots =
          first_present(sm, {"sagemaker_process_slots_per_host", "sagemaker_mpi_num_of_processes_per_host"}, which)) {
    s.processes_per_host = static_cast<int>(count(*slots, k_max_processes_per_host, s.processes_per_host));
  }
  const long long capacity = static_cast<long long>(s.processes_per_host) * static_cast<long long>(s.hosts.size());
  s.num_processes = static_cast<int>(capacity);
  if (const env::Value* np = first_present(sm, {"sagemaker_num_processes", "sagemaker_mpi_num_processes"}, which)) {
    s.num_processes = static_cast<int>(count(*np, capacity, capacity));
  }

  for (const char* key : {"sagemaker_additional_mpi_options", "sagemaker_mpi_custom_mpi_options"}) {
    const env::Value* v = sm.find(key);
    if (v == nullptr || v->is_null() || !s.enabled) {
      continue;
    }
    std::vector<std::string> words;
    try {
      words = base::shell_split(env::py_str(*v));
    } catch (const std::invalid_argument& err) {
      throw env::ConfigError(file, std::string("/") + key,
                             std::string("cannot be split like a shell line: ") + err.what());
    }
    // mpirun's argv goes on with the program: an option left without its value would take
    // the program's first word as its value, and mpirun would fail on the rest.
    for (std::size_t i = 0; i < words.size(); ++i) {
      const auto needed = static_cast<std::size_t>(option_value_count(words[i]));
      if (needed > 0 && i + needed >= words.size()) {
        throw env::ConfigError(file, std::string("/") + key,
                               "ends before the value" + std::string(needed > 1 ? "s" : "") + " of \"" + words[i] +
                                   "\"; expected " + std::to_string(needed) + (needed > 1 ? " words" : " word") +
                                   " after it (e.g. \"-x NAME=value\", \"-mca name value\"): mpirun would "
                                   "take the program each rank runs as its value");
      }
      i += needed;
    }
    s.custom_options.insert(s.custom_options.end(), words.begin(), words.end());
  }
  return s;
}

} // namespace mpi

namespace mpi {

int
processes_on_host(const MpiSettings& settings, const std::string& host)
{
  const auto at = std::find(settings.hosts.begin(), settings.hosts.end(), host);
  if (at == settings.hosts.end()) {
    return 0;
  }
  const long long before = static_cast<long long>(at - settings.hosts.begin()) * settings.processes_per_host;
  const long long left = static_cast<long long>(settings.num_processes) - before;
  return static_cast<int>(std::clamp<long long>(left, 0, settings.processes_per_host));
}

} // namespace mpi
