// Hyperparameters as the reference toolkit sees them: decoded, split into the platform's
// keys and the user's, and rendered as the script's command-line arguments.
#pragma once

#include "env/json_value.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace env {

struct Hyperparameters
{
  Value user;             // reach the script: argv, SM_HPS, SM_HP_<NAME>
  Value sagemaker;        // every platform key (sagemaker_*, _tuning_objective_metric, ...)
  Value framework_params; // platform keys other than the reserved ones (SM_FRAMEWORK_PARAMS)
};

// True for keys the platform owns: a `sagemaker_` prefix or one of the reserved names.
bool is_platform_key(std::string_view key);

// True for the reserved keys the toolkit consumes itself (left out of SM_FRAMEWORK_PARAMS).
bool is_reserved_key(std::string_view key);

// json.loads each string value, keeping the raw string when it is not JSON.
Value decode_hyperparameter(const Value& raw);

// Decode every value of hyperparameters.json and split the keys.
Hyperparameters decode_hyperparameters(const Value& raw_object);

// mapping.to_cmd_args: sorted keys, "--key"/"-k", str() of each value, dicts as k=v,...
std::vector<std::string> to_cmd_args(const Value& user_hyperparameters);

} // namespace env
