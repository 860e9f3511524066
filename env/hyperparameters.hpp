// Hyperparameters as the reference toolkit sees them: decoded, split into the platform's
// keys and the user's, and rendered as the script's command-line arguments.
#pragma once

#include "env/json_value.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
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

// json.loads each string value, keeping the raw string when it is not JSON. JSON nested past
// k_max_json_depth throws JsonError (too_deep): the reference's json.loads raises
// RecursionError there, which fails its job, rather than keeping the text.
Value decode_hyperparameter(const Value& raw);

// A value that decode_hyperparameter() cannot decode, with its key.
struct UndecodableHyperparameter : std::runtime_error
{
  UndecodableHyperparameter(std::string key_, const std::string& message)
      : std::runtime_error(message), key(std::move(key_))
  {
  }
  std::string key;
};

// Decode every value of hyperparameters.json and split the keys; throws
// UndecodableHyperparameter.
Hyperparameters decode_hyperparameters(const Value& raw_object);

// The argument that follows a key's "--key": str() of the value, "" for None, and a dict as
// "k=v,..." in sorted order (raw text: a NUL inside a dict's string stays a NUL).
std::string cmd_arg_value(const Value& value);

// mapping.to_cmd_args: sorted keys, "--key"/"-k", str() of each value, dicts as k=v,...
std::vector<std::string> to_cmd_args(const Value& user_hyperparameters);

} // namespace env
