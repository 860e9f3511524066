// fuzz_config: the input is hyperparameters.json, resourceconfig.json and
// inputdataconfig.json joined by 0xFF bytes (a byte that never occurs in UTF-8). A part
// that is not valid UTF-8 JSON stands for a null value. Then validate_config_files; when
// it accepts, build_training_environment (MachineFacts{}, empty inherited environment),
// training_env() and sm_variables(). Only env::ConfigError may be thrown; anything else
// escapes and libFuzzer reports it. Properties after a successful build:
//  - every variable is named SM_..., without '=' or NUL, and no value holds a NUL byte
//    (training_environment.hpp: values no variable can carry are refused by ConfigError);
//    nor do sagemaker_job_name and region, which launcher/plan.cpp exports as
//    SAGEMAKER_JOB_NAME and SAGEMAKER_REGION;
//  - SM_TRAINING_ENV parses back to training_env() (keys sorted);
//  - current_host is one of the hosts and master_hostname is not empty.
#include "env/config_error.hpp"
#include "env/config_files.hpp"
#include "env/env_map.hpp"
#include "env/training_environment.hpp"
#include "env/py_format.hpp"
#include "fuzz_common.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace {

env::Value
parse_part(std::string_view text)
{
  if (!env::is_valid_utf8(text)) {
    return env::Value();
  }
  try {
    return env::parse_json(text);
  } catch (const env::JsonError&) {
    return env::Value();
  }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const auto parts = fuzz::split(fuzz::as_text(data, size), '\xFF', 3);
  env::ConfigFiles files;
  files.hyperparameters = parse_part(parts[0]);
  files.resource_config = parts.size() > 1 ? parse_part(parts[1]) : env::Value();
  files.input_data_config = parts.size() > 2 ? parse_part(parts[2]) : env::Value();
  const env::Paths paths = env::Paths::under("/opt/ml");

  try {
    env::validate_config_files(files, paths);
  } catch (const env::ConfigError& e) {
    FUZZ_CHECK(!e.problems().empty(), "ConfigError without a problem");
    for (const auto& problem : e.problems()) {
      (void)problem.describe();
    }
    return 0;
  }

  env::TrainingEnvironment te;
  try {
    te = env::build_training_environment(paths, files, env::MachineFacts{}, env::EnvMap{});
  } catch (const env::ConfigError& e) {
    FUZZ_CHECK(!e.problems().empty(), "ConfigError without a problem");
    return 0;
  }
  FUZZ_CHECK(std::find(te.hosts.begin(), te.hosts.end(), te.current_host) != te.hosts.end(),
              "current_host is not among the hosts");
  FUZZ_CHECK(!te.master_hostname.empty(), "empty master_hostname");

  const env::Value training_env = te.training_env();
  const env::EnvMap vars = te.sm_variables();
  for (const auto& [name, value] : vars.entries()) {
    FUZZ_CHECK(name.rfind("SM_", 0) == 0, "variable not named SM_*: " + fuzz::escaped(name));
    FUZZ_CHECK(name.find('=') == std::string::npos && name.find('\0') == std::string::npos,
                "variable name with '=' or NUL: " + fuzz::escaped(name));
    FUZZ_CHECK(value.find('\0') == std::string::npos,
                "variable " + fuzz::escaped(name) + " holds a NUL byte: " + fuzz::escaped(value));
  }
  FUZZ_CHECK(te.sagemaker_job_name.find('\0') == std::string::npos,
             "sagemaker_job_name (SAGEMAKER_JOB_NAME) holds a NUL byte: " + fuzz::escaped(te.sagemaker_job_name));
  FUZZ_CHECK(te.region.find('\0') == std::string::npos,
             "region (SAGEMAKER_REGION) holds a NUL byte: " + fuzz::escaped(te.region));
  const std::string* dumped = vars.get("SM_TRAINING_ENV");
  FUZZ_CHECK(dumped != nullptr, "no SM_TRAINING_ENV");
  try {
    FUZZ_CHECK(env::parse_json(*dumped) == fuzz::sorted_keys(training_env), "SM_TRAINING_ENV != training_env()");
  } catch (const env::JsonError& e) {
    fuzz::fail("SM_TRAINING_ENV does not parse: " + std::string(e.what()));
  }
  return 0;
}
