#include "launcher/host_state.hpp"

#include "base/errors.hpp"
#include "base/state_file.hpp"

#include <unistd.h>

namespace launcher {

namespace {

std::string
state_dir(const std::string& base_dir)
{
  return base_dir + "/.smlaunch";
}

int
int_at(const nlohmann::json& obj, const char* key)
{
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int>() : 0;
}

bool
bool_at(const nlohmann::json& obj, const char* key)
{
  const auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

} // namespace

void
write_host_state(const std::string& base_dir, const HostState& state)
{
  // Names and values are bytes (Linux allows any but NUL): kept exactly, as a string when
  // they are UTF-8, else as hex (bytes_to_json), never replaced by U+FFFD, so a rank gets
  // the very environment its host's launcher had.
  nlohmann::ordered_json environment = nlohmann::ordered_json::array();
  for (const auto& [name, value] : state.environment.entries()) {
    environment.push_back({base::bytes_to_json(name), base::bytes_to_json(value)});
  }
  const nlohmann::ordered_json doc = {
      {"environment", environment},
      {"machine",
       {{"num_cpus", state.machine.num_cpus},
        {"num_gpus", state.machine.num_gpus},
        {"num_neurons", state.machine.num_neurons},
        {"smddprun_installed", state.machine.smddprun_installed},
        {"smddpmprun_installed", state.machine.smddpmprun_installed}}},
  };
  base::write_json_atomically(state_dir(base_dir) + "/host.json", doc, 0600);
}

HostState
read_host_state(const std::string& base_dir)
{
  HostState state;
  try {
    const nlohmann::json doc = base::read_json_state(state_dir(base_dir) + "/host.json");
    for (const auto& entry : doc.at("environment")) {
      state.environment.set(base::bytes_from_json(entry.at(0)), base::bytes_from_json(entry.at(1)));
    }
    const nlohmann::json& m = doc.at("machine");
    state.machine.num_cpus = int_at(m, "num_cpus");
    state.machine.num_gpus = int_at(m, "num_gpus");
    state.machine.num_neurons = int_at(m, "num_neurons");
    state.machine.smddprun_installed = bool_at(m, "smddprun_installed");
    state.machine.smddpmprun_installed = bool_at(m, "smddpmprun_installed");
  } catch (const std::exception& e) {
    throw base::StagingError(
        std::string("this host's launcher state is missing (is `smlaunch train` running here?): ") + e.what());
  }
  return state;
}

std::string
job_outcome_path(const std::string& base_dir)
{
  return state_dir(base_dir) + "/job-outcome.json";
}

void
write_job_outcome(const std::string& base_dir, const JobOutcome& outcome)
{
  // The message may end with a script's output: any bytes, kept as host.json keeps them.
  const nlohmann::ordered_json doc = {{"exit_code", outcome.exit_code},
                                      {"message", base::bytes_to_json(outcome.message)}};
  base::write_json_atomically(job_outcome_path(base_dir), doc, 0644);
}

std::optional<JobOutcome>
read_job_outcome(const std::string& base_dir)
{
  if (::access(job_outcome_path(base_dir).c_str(), F_OK) != 0) {
    return std::nullopt;
  }
  try {
    const nlohmann::json doc = base::read_json_state(job_outcome_path(base_dir));
    const auto message = doc.find("message");
    return JobOutcome{int_at(doc, "exit_code"), message != doc.end() ? base::bytes_from_json(*message) : ""};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

} // namespace launcher
