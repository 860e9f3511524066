#include "env/training_environment.hpp"

#include "base/kernel_limits.hpp"
#include "env/config_error.hpp"
#include "env/py_format.hpp"

#include <algorithm>

namespace env {

namespace {

Value
string_list(const std::vector<std::string>& items)
{
  Value list = Value::array();
  for (const auto& s : items) {
    list.items().push_back(Value::string(s));
  }
  return list;
}

std::string
string_or(const Value& obj, const char* key, const char* fallback)
{
  const Value* v = obj.find(key);
  return v != nullptr && v->is_string() ? v->text() : fallback;
}

// Python's `x in container`: substring for a string, key for a dict, item for a list.
bool
py_contains(const Value& container, const std::string& item)
{
  if (container.is_string()) {
    return container.text().find(item) != std::string::npos;
  }
  if (container.is_object()) {
    return container.find(item) != nullptr;
  }
  for (const auto& v : container.items()) {
    if (v.is_string() && v.text() == item) {
      return true;
    }
  }
  return false;
}

// The framework flags that put the current group into distribution_instance_groups.
constexpr const char* k_distribution_flags[] = {
    "sagemaker_mpi_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
    "sagemaker_torch_distributed_enabled",
};

} // namespace

std::string
to_env_value(const Value& value)
{
  if (value.is_null()) {
    return "";
  }
  if (value.is_string()) {
    return value.text();
  }
  return py_json_dumps(value);
}

namespace {

// Instance groups (in the order the file lists them), the groups and hosts that take part
// in distributed training.
void
resolve_instance_groups(TrainingEnvironment& e)
{
  const Value& rc = e.resource_config;
  const Value& fw = e.hyperparameters.framework_params;
  // Instance groups, in the order the file lists them.
  e.instance_groups = Value::array();
  e.instance_groups_dict = Value::object();
  e.current_instance_group_hosts = Value::array();
  bool found_current_group = false;
  const Value* groups = rc.find("instance_groups");
  const bool has_groups = groups != nullptr && groups->size() > 0;
  if (groups != nullptr) {
    for (const auto& g : groups->items()) {
      const std::string& name = g.find("instance_group_name")->text();
      e.instance_groups.items().push_back(Value::string(name));
      e.instance_groups_dict.set(name, g);
      if (!found_current_group && name == e.current_instance_group) {
        e.current_instance_group_hosts = *g.find("hosts");
        found_current_group = true;
      }
    }
  }
  if (const Value* given = fw.find("sagemaker_distribution_instance_groups")) {
    e.distribution_instance_groups = *given;
  } else {
    e.distribution_instance_groups = Value::array();
    for (const char* flag : k_distribution_flags) {
      const Value* v = fw.find(flag);
      if (v != nullptr && v->truthy()) {
        e.distribution_instance_groups.items().push_back(Value::string(e.current_instance_group));
        break;
      }
    }
  }
  if (has_groups) {
    for (const auto& g : groups->items()) {
      if (py_contains(e.distribution_instance_groups, g.find("instance_group_name")->text())) {
        for (const auto& h : g.find("hosts")->items()) {
          e.distribution_hosts.push_back(h.text());
        }
      }
    }
  } else {
    e.distribution_hosts = e.hosts; // local mode: no instance groups
  }
}

} // namespace

TrainingEnvironment
build_training_environment(const Paths& paths, const ConfigFiles& files, const MachineFacts& machine,
                           const EnvMap& inherited)
{
  TrainingEnvironment e;
  e.paths = paths;
  e.machine = machine;
  e.resource_config = files.resource_config;
  e.input_data_config = files.input_data_config;
  try {
    e.hyperparameters = decode_hyperparameters(files.hyperparameters);
  } catch (const UndecodableHyperparameter& bad) {
    throw ConfigError(paths.hyperparameters_file, "/" + bad.key, bad.what());
  }
  // SM_HPS carries every script hyperparameter in one variable, which the kernel caps at
  // MAX_ARG_STRLEN: a value too large for it is refused here, before the arguments and the
  // other variables copy it a dozen times (one 50 MB value reached the kernel's refusal
  // through 1.5 GB of copies).
  e.hps_env_value = to_env_value(e.hyperparameters.user);
  if (const std::size_t sm_hps = sizeof("SM_HPS=") + e.hps_env_value.size(); sm_hps > base::k_max_arg_strlen) {
    const Value& user = e.hyperparameters.user;
    std::size_t largest = 0;
    std::size_t largest_bytes = 0;
    for (std::size_t i = 0; i < user.size(); ++i) {
      if (const std::size_t bytes = to_env_value(user.items()[i]).size(); bytes > largest_bytes) {
        largest = i;
        largest_bytes = bytes;
      }
    }
    const std::string& name = user.keys()[largest];
    throw ConfigError(paths.hyperparameters_file, "/" + name,
                      "hyperparameter \"" + name + "\" (" + std::to_string(largest_bytes) +
                          " bytes, the largest) makes SM_HPS " + std::to_string(sm_hps) +
                          " bytes with its name and NUL; expected at most " + std::to_string(base::k_max_arg_strlen) +
                          ", the kernel's limit for one environment variable (MAX_ARG_STRLEN)");
  }
  const Value& rc = e.resource_config;
  const Value& sm = e.hyperparameters.sagemaker;

  for (const auto& h : rc.find("hosts")->items()) {
    e.hosts.push_back(h.text());
  }
  e.current_host = rc.find("current_host")->text();
  e.current_instance_type = string_or(rc, "current_instance_type", "local");
  e.current_instance_group = string_or(rc, "current_group_name", "homogeneousCluster");
  e.network_interface_name = string_or(rc, "network_interface_name", "eth0");
  const Value* topology = rc.find("topology");
  e.topology = topology != nullptr ? *topology : Value::array();

  resolve_instance_groups(e);
  e.master_hostname = e.distribution_hosts.empty() ? e.hosts.front() : e.distribution_hosts.front();
  e.is_master = e.current_host == e.master_hostname;
  e.is_hetero = e.instance_groups.size() > 1;

  // Entry point: a non-empty SAGEMAKER_PROGRAM wins over the hyperparameter.
  const std::string* program_env = inherited.get("SAGEMAKER_PROGRAM");
  const Value* program_hp = sm.find("sagemaker_program");
  if (program_env != nullptr && !program_env->empty()) {
    e.user_entry_point = Value::string(*program_env);
  } else if (program_hp != nullptr) {
    e.user_entry_point = *program_hp;
  }
  if (program_env != nullptr) {
    e.module_name = *program_env;
  } else {
    e.module_name = program_hp != nullptr ? py_str(*program_hp) : "None";
  }
  if (e.module_name.ends_with(".py")) {
    e.module_name.resize(e.module_name.size() - 3);
  }
  const Value* submit = sm.find("sagemaker_submit_directory");
  if (submit != nullptr && !submit->is_string()) {
    // str(None) would be taken as a folder named "None" beside the working directory.
    throw ConfigError(paths.hyperparameters_file, "/sagemaker_submit_directory",
                      "is " + py_repr(*submit) + "; expected a string: a folder, a file:// or s3:// URI, or a .tar.gz");
  }
  e.module_dir = submit != nullptr ? submit->text() : paths.code;
  const Value* log_level = sm.find("sagemaker_container_log_level");
  e.log_level = log_level != nullptr ? *log_level : Value::integer(20);

  const std::string* training_module = inherited.get("SAGEMAKER_TRAINING_MODULE");
  e.framework_module = training_module != nullptr ? Value::string(*training_module) : Value();
  const std::string* job = inherited.get("TRAINING_JOB_NAME");
  e.job_name = job != nullptr ? Value::string(*job) : Value();
  // `mp and mp != "{}"`: None when unset, "" when empty, else a bool.
  if (const std::string* mp = inherited.get("SM_HP_MP_PARAMETERS")) {
    e.is_modelparallel_enabled = mp->empty() ? Value::string("") : Value::boolean(*mp != "{}");
  }
  const Value* job_hp = sm.find("sagemaker_job_name");
  e.sagemaker_job_name = job_hp != nullptr ? py_str(*job_hp) : "";
  if (const Value* region_hp = sm.find("sagemaker_region"); region_hp != nullptr && !region_hp->is_null()) {
    e.region = py_str(*region_hp);
    e.region_hyperparameter = e.region;
  } else if (const std::string* r = inherited.get("AWS_REGION"); r != nullptr && !r->empty()) {
    e.region = *r;
  } else if (const std::string* dr = inherited.get("AWS_DEFAULT_REGION")) {
    e.region = *dr;
  }

  // Arguments and variables cannot carry a NUL byte: refuse it here, naming the key.
  e.user_args = to_cmd_args(e.hyperparameters.user);
  // The argument's raw text is checked, not str(): a dict's str() is its repr(), which
  // escapes a NUL that "k=v" keeps.
  for (std::size_t i = 0; i < e.hyperparameters.user.size(); ++i) {
    const std::string& key = e.hyperparameters.user.keys()[i];
    const Value& value = e.hyperparameters.user.items()[i];
    if (key.find('\0') != std::string::npos || py_str(value).find('\0') != std::string::npos ||
        cmd_arg_value(value).find('\0') != std::string::npos) {
      throw ConfigError(paths.hyperparameters_file, "/" + key,
                        "contains a NUL byte, which no argument or variable can carry");
    }
  }
  // Every other text that becomes a variable's value as it is.
  const auto refuse_nul = [](const std::string& text, const std::string& file, const std::string& key) {
    if (text.find('\0') != std::string::npos) {
      throw ConfigError(file, key, "contains a NUL byte, which no environment variable can carry");
    }
  };
  refuse_nul(e.user_entry_point.is_string() ? e.user_entry_point.text() : "", paths.hyperparameters_file,
             "/sagemaker_program");
  refuse_nul(e.current_instance_type, paths.resource_config_file, "/current_instance_type");
  refuse_nul(e.current_instance_group, paths.resource_config_file, "/current_group_name");
  refuse_nul(e.module_dir, paths.hyperparameters_file, "/sagemaker_submit_directory");
  refuse_nul(to_env_value(e.log_level), paths.hyperparameters_file, "/sagemaker_container_log_level");
  refuse_nul(e.sagemaker_job_name, paths.hyperparameters_file, "/sagemaker_job_name");
  refuse_nul(e.region, paths.hyperparameters_file, "/sagemaker_region");
  refuse_nul(to_env_value(e.distribution_instance_groups), paths.hyperparameters_file,
             "/sagemaker_distribution_instance_groups");
  return e;
}

Value
TrainingEnvironment::training_env() const
{
  Value channel_dirs = Value::object();
  for (const auto& name : input_data_config.keys()) {
    channel_dirs.set(name, Value::string(paths.channel(name)));
  }
  Value t = Value::object();
  // dir() order; json.dumps sorts the keys anyway.
  t.append_unique("additional_framework_parameters", hyperparameters.framework_params);
  t.append_unique("channel_input_dirs", channel_dirs);
  t.append_unique("current_host", Value::string(current_host));
  t.append_unique("current_instance_group", Value::string(current_instance_group));
  t.append_unique("current_instance_group_hosts", current_instance_group_hosts);
  t.append_unique("current_instance_type", Value::string(current_instance_type));
  t.append_unique("distribution_hosts", string_list(distribution_hosts));
  t.append_unique("distribution_instance_groups", distribution_instance_groups);
  t.append_unique("framework_module", framework_module);
  t.append_unique("hosts", string_list(hosts));
  t.append_unique("hyperparameters", hyperparameters.user);
  t.append_unique("input_config_dir", Value::string(paths.input_config));
  t.append_unique("input_data_config", input_data_config);
  t.append_unique("input_dir", Value::string(paths.input));
  t.append_unique("instance_groups", instance_groups);
  t.append_unique("instance_groups_dict", instance_groups_dict);
  t.append_unique("is_hetero", Value::boolean(is_hetero));
  t.append_unique("is_master", Value::boolean(is_master));
  t.append_unique("is_modelparallel_enabled", is_modelparallel_enabled);
  t.append_unique("is_smddpmprun_installed", Value::boolean(machine.smddpmprun_installed));
  t.append_unique("is_smddprun_installed", Value::boolean(machine.smddprun_installed));
  t.append_unique("job_name", job_name);
  t.append_unique("log_level", log_level);
  t.append_unique("master_hostname", Value::string(master_hostname));
  t.append_unique("model_dir", Value::string(paths.model));
  t.append_unique("module_dir", Value::string(module_dir));
  t.append_unique("module_name", Value::string(module_name));
  t.append_unique("network_interface_name", Value::string(network_interface_name));
  t.append_unique("num_cpus", Value::integer(machine.num_cpus));
  t.append_unique("num_gpus", Value::integer(machine.num_gpus));
  t.append_unique("num_neurons", Value::integer(machine.num_neurons));
  t.append_unique("output_data_dir", Value::string(paths.output_data));
  t.append_unique("output_dir", Value::string(paths.output));
  t.append_unique("output_intermediate_dir", Value::string(paths.output_intermediate));
  t.append_unique("resource_config", resource_config);
  t.append_unique("topology", topology);
  t.append_unique("user_entry_point", user_entry_point);
  return t;
}

EnvMap
TrainingEnvironment::sm_variables() const
{
  Value channels = Value::array();
  {
    std::vector<std::string> names = input_data_config.keys();
    std::sort(names.begin(), names.end());
    channels = string_list(names);
  }
  Value args = string_list(user_args);

  EnvMap vars;
  auto put = [&](const std::string& key, const Value& value) { vars.set("SM_" + py_upper(key), to_env_value(value)); };
  put("hosts", string_list(hosts));
  put("network_interface_name", Value::string(network_interface_name));
  vars.set("SM_HPS", hps_env_value);
  put("user_entry_point", user_entry_point);
  put("framework_params", hyperparameters.framework_params);
  put("resource_config", resource_config);
  put("input_data_config", input_data_config);
  put("output_data_dir", Value::string(paths.output_data));
  put("channels", channels);
  put("current_host", Value::string(current_host));
  put("current_instance_type", Value::string(current_instance_type));
  put("current_instance_group", Value::string(current_instance_group));
  put("current_instance_group_hosts", current_instance_group_hosts);
  put("instance_groups", instance_groups);
  put("instance_groups_dict", instance_groups_dict);
  put("distribution_instance_groups", distribution_instance_groups);
  put("is_hetero", Value::boolean(is_hetero));
  put("module_name", Value::string(module_name));
  put("log_level", log_level);
  put("framework_module", framework_module);
  put("input_dir", Value::string(paths.input));
  put("input_config_dir", Value::string(paths.input_config));
  put("output_dir", Value::string(paths.output));
  put("num_cpus", Value::integer(machine.num_cpus));
  put("num_gpus", Value::integer(machine.num_gpus));
  put("num_neurons", Value::integer(machine.num_neurons));
  put("model_dir", Value::string(paths.model));
  put("module_dir", Value::string(module_dir));
  put("training_env", training_env());
  put("user_args", args);
  put("output_intermediate_dir", Value::string(paths.output_intermediate));
  if (topology.truthy()) {
    put("topology", topology);
  }
  for (const auto& name : input_data_config.keys()) {
    put("channel_" + name, Value::string(paths.channel(name)));
  }
  for (std::size_t i = 0; i < hyperparameters.user.size(); ++i) {
    put("hp_" + hyperparameters.user.keys()[i], hyperparameters.user.items()[i]);
  }
  // The net under the per-key checks of build_training_environment: no variable may hold a
  // NUL byte (execve would cut it short without a word).
  for (const auto& [name, value] : vars.entries()) {
    if (value.find('\0') != std::string::npos) {
      throw ConfigError(paths.input_config, name, "would contain a NUL byte, which no environment variable can carry");
    }
  }
  return vars;
}

} // namespace env
