#include "env/config_error.hpp"
#include "env/training_environment.hpp"

#include <gtest/gtest.h>

namespace {

// Every text that becomes a variable's value must not hold a NUL byte (found by fuzz_config).
TEST(EnvNulFields, EachSourceIsRefusedNamingItsKey)
{
  struct Case
  {
    const char* hyperparameters;
    const char* resource_config;
    const char* key;
  };
  const Case cases[] = {
    {R"({"sagemaker_program": "\"t.py\""})", R"({"current_host": "a", "hosts": ["a"], "current_group_name": "g\u0000x"})",
     "/current_group_name"},
    {R"({"sagemaker_program": "\"t.py\""})", R"({"current_host": "a", "hosts": ["a"], "current_instance_type": "ml\u0000x"})",
     "/current_instance_type"},
    {R"({"sagemaker_program": "\"t.py\"", "sagemaker_submit_directory": "\"/x\\u0000y\""})",
     R"({"current_host": "a", "hosts": ["a"]})", "/sagemaker_submit_directory"},
    {R"({"sagemaker_program": "\"t.py\"", "sagemaker_container_log_level": "\"2\\u00000\""})",
     R"({"current_host": "a", "hosts": ["a"]})", "/sagemaker_container_log_level"},
    {R"({"sagemaker_program": "\"t.py\"", "sagemaker_job_name": "\"j\\u0000\""})", R"({"current_host": "a", "hosts": ["a"]})",
     "/sagemaker_job_name"},
    {R"({"sagemaker_program": "\"t.py\"", "sagemaker_region": "\"us\\u0000\""})", R"({"current_host": "a", "hosts": ["a"]})",
     "/sagemaker_region"},
    // A dict's str() is its repr(), which escapes the NUL; its argument "k=v,..." would carry
    // it raw, and execve would cut the argument there.
    {R"({"sagemaker_program": "\"t.py\"", "d": "{\"k\": \"a\\u0000b\", \"z\": 1}"})",
     R"({"current_host": "a", "hosts": ["a"]})", "/d"},
    {R"({"sagemaker_program": "\"t.py\"", "e": "{\"k\\u0000\": 1}"})", R"({"current_host": "a", "hosts": ["a"]})",
     "/e"},
    {R"({"sagemaker_program": "\"t.py\"", "f\u0000g": "1"})", R"({"current_host": "a", "hosts": ["a"]})", "/f"},
  };
  const env::Paths paths = env::Paths::under("/opt/ml");
  for (const auto& c : cases) {
    env::ConfigFiles files{env::parse_json(c.hyperparameters), env::parse_json(c.resource_config), env::parse_json("{}")};
    try {
      env::build_training_environment(paths, files, env::MachineFacts{}, env::EnvMap{});
      ADD_FAILURE() << "accepted a NUL under " << c.key;
    } catch (const env::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(c.key), std::string::npos) << e.what();
    }
  }
}

} // namespace
