// The training environment: every property of the reference's Environment object, and
// the SM_* variables computed from it, byte for byte.
#pragma once

#include "env/blas_core.hpp"
#include "env/config_files.hpp"
#include "env/env_map.hpp"
#include "env/hyperparameters.hpp"
#include "env/json_value.hpp"
#include "env/paths.hpp"

#include <optional>
#include <string>
#include <vector>

namespace env {

// Facts about the machine, probed by the launcher before planning (planning is pure).
struct MachineFacts
{
  int num_cpus = 1;
  int num_gpus = 0;
  int num_neurons = 0;
  bool smddprun_installed = false;
  bool smddpmprun_installed = false;
  VectorIsa vector_isa = VectorIsa::other; // for OPENBLAS_CORETYPE (env/blas_core.hpp)
};

struct TrainingEnvironment
{
  Paths paths;
  Hyperparameters hyperparameters;
  std::string hps_env_value; // SM_HPS's value: serialized once, when the size check reads it
  Value resource_config;
  Value input_data_config;
  MachineFacts machine;

  std::vector<std::string> hosts;
  std::string current_host;
  std::string current_instance_type;
  std::string current_instance_group;
  std::string network_interface_name;
  Value current_instance_group_hosts; // list, in the group's own order
  Value instance_groups;              // list of names
  Value instance_groups_dict;         // name -> group object
  Value distribution_instance_groups;
  std::vector<std::string> distribution_hosts;
  std::string master_hostname;
  bool is_master = false;
  bool is_hetero = false;
  Value topology;

  // SAGEMAKER_PROGRAM (when non-empty) or sagemaker_program; null when neither.
  Value user_entry_point;
  std::string module_name; // the entry point without ".py"; "None" when there is none
  std::string module_dir;  // str(sagemaker_submit_directory) or the code directory
  Value log_level;         // sagemaker_container_log_level, default 20
  Value framework_module;  // SAGEMAKER_TRAINING_MODULE or null
  Value job_name;          // TRAINING_JOB_NAME or null
  Value is_modelparallel_enabled;
  std::string sagemaker_job_name;    // sagemaker_job_name hp, "" when absent
  std::string region;                // sagemaker_region hp, else AWS_REGION / AWS_DEFAULT_REGION
  std::string region_hyperparameter; // sagemaker_region alone ("" when absent)

  std::vector<std::string> user_args;

  // SM_TRAINING_ENV's object: every public property, as dict(env) gives it.
  Value training_env() const;
  // The SM_* variables in the reference's order (also the order of MPI's -x list).
  EnvMap sm_variables() const;
};

// Compute the environment. `inherited` is the launcher's own environment (for
// SAGEMAKER_PROGRAM, TRAINING_JOB_NAME, ...). Throws ConfigError for values that no
// environment variable or argument can carry (a NUL byte).
TrainingEnvironment build_training_environment(const Paths& paths, const ConfigFiles& files,
                                               const MachineFacts& machine, const EnvMap& inherited);

// The value rule of mapping.to_env_vars: str as is, None as "", the rest as JSON.
std::string to_env_value(const Value& value);

} // namespace env
