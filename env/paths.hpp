// The SageMaker directory layout under a base directory (default /opt/ml).
#pragma once

#include <string>

namespace env {

struct Paths
{
  std::string base;
  std::string code;
  std::string model;
  std::string input;
  std::string input_config;
  std::string input_data;
  std::string output;
  std::string output_data;
  std::string output_intermediate;
  std::string hyperparameters_file;
  std::string resource_config_file;
  std::string input_data_config_file;
  std::string success_file;
  std::string failure_file;

  // `base` must be absolute and without a trailing slash (see normalize_base_dir).
  static Paths under(const std::string& base);
  std::string
  channel(const std::string& name) const
  {
    return input_data + "/" + name;
  }
};

// Make `dir` absolute against `cwd` and drop trailing slashes ("/" stays "/").
std::string normalize_base_dir(const std::string& dir, const std::string& cwd);

} // namespace env
