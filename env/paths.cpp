#include "env/paths.hpp"

namespace env {

Paths
Paths::under(const std::string& base)
{
  const std::string root = base == "/" ? "" : base;
  Paths p;
  p.base = base;
  p.code = root + "/code";
  p.model = root + "/model";
  p.input = root + "/input";
  p.input_config = p.input + "/config";
  p.input_data = p.input + "/data";
  p.output = root + "/output";
  p.output_data = p.output + "/data";
  p.output_intermediate = p.output + "/intermediate";
  p.hyperparameters_file = p.input_config + "/hyperparameters.json";
  p.resource_config_file = p.input_config + "/resourceconfig.json";
  p.input_data_config_file = p.input_config + "/inputdataconfig.json";
  p.success_file = p.output + "/success";
  p.failure_file = p.output + "/failure";
  return p;
}

std::string
normalize_base_dir(const std::string& dir, const std::string& cwd)
{
  std::string out = (!dir.empty() && dir[0] == '/') ? dir : cwd + "/" + dir;
  while (out.size() > 1 && out.back() == '/') {
    out.pop_back();
  }
  return out;
}

} // namespace env
