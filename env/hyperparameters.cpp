#include "env/hyperparameters.hpp"

#include "env/py_format.hpp"

#include <algorithm>
#include <array>

namespace env {

namespace {

constexpr std::array<std::string_view, 9> k_reserved_keys = {
    "sagemaker_program",        "sagemaker_submit_directory",    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region",         "sagemaker_container_log_level", "sagemaker_job_name",
    "default_user_module_name", "_tuning_objective_metric",      "sagemaker_s3_output",
};

} // namespace

bool
is_reserved_key(std::string_view key)
{
  return std::find(k_reserved_keys.begin(), k_reserved_keys.end(), key) != k_reserved_keys.end();
}

bool
is_platform_key(std::string_view key)
{
  return key.starts_with("sagemaker_") || is_reserved_key(key);
}

Value
decode_hyperparameter(const Value& raw)
{
  // A value that is not a string makes json.loads raise TypeError: kept as it is.
  if (!raw.is_string()) {
    return raw;
  }
  try {
    return parse_json(raw.text());
  } catch (const JsonError& e) {
    if (e.too_deep) {
      throw;
    }
    return raw;
  }
}

Hyperparameters
decode_hyperparameters(const Value& raw_object)
{
  Hyperparameters hps;
  hps.user = Value::object();
  hps.sagemaker = Value::object();
  hps.framework_params = Value::object();
  for (std::size_t i = 0; i < raw_object.size(); ++i) {
    const std::string& key = raw_object.keys()[i];
    const Value& raw = raw_object.items()[i];
    Value decoded;
    try {
      decoded = decode_hyperparameter(raw);
    } catch (const JsonError& e) {
      throw UndecodableHyperparameter(key, std::string("holds JSON that json.loads cannot decode (") + e.what() +
                                               "); the reference fails with RecursionError there");
    }
    if (is_platform_key(key)) {
      if (!is_reserved_key(key)) {
        hps.framework_params.append_unique(key, decoded);
      }
      hps.sagemaker.append_unique(key, std::move(decoded));
    } else {
      hps.user.append_unique(key, std::move(decoded));
    }
  }
  return hps;
}

namespace {

// The indices of an object's members, in sorted() order of their keys (code points, which is
// UTF-8 byte order).
std::vector<std::size_t>
sorted_key_order(const Value& object)
{
  std::vector<std::size_t> order(object.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return object.keys()[a] < object.keys()[b]; });
  return order;
}

} // namespace

std::string
cmd_arg_value(const Value& value)
{
  if (value.is_null()) {
    return {};
  }
  if (!value.is_object()) {
    return py_str(value);
  }
  std::string joined;
  for (std::size_t k : sorted_key_order(value)) {
    if (!joined.empty()) {
      joined += ',';
    }
    joined += value.keys()[k] + "=" + py_str(value.items()[k]);
  }
  return joined;
}

std::vector<std::string>
to_cmd_args(const Value& user_hyperparameters)
{
  const std::vector<std::size_t> order = sorted_key_order(user_hyperparameters);
  std::vector<std::string> args;
  args.reserve(order.size() * 2);
  for (std::size_t i : order) {
    const std::string& key = user_hyperparameters.keys()[i];
    const Value& value = user_hyperparameters.items()[i];
    if (key.empty()) {
      args.emplace_back();
    } else {
      // len() counts code points, not bytes: "é" is a one-letter key.
      std::size_t code_points = 0;
      for (char c : key) {
        code_points += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
      }
      args.push_back((code_points > 1 ? "--" : "-") + key);
    }
    args.push_back(cmd_arg_value(value));
  }
  return args;
}

} // namespace env
