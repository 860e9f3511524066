#include "base/errors.hpp"
#include "launcher/serve_options.hpp"

#include <gtest/gtest.h>

namespace {

using launcher::parse_serve_command_line;
using launcher::ServeOptions;

ServeOptions
parse(std::vector<std::string> args, const std::vector<std::pair<std::string, std::string>>& environment = {})
{
  std::vector<const char*> argv;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  env::EnvMap env;
  for (const auto& [k, v] : environment) {
    env.set(k, v);
  }
  return parse_serve_command_line(static_cast<int>(argv.size()), argv.data(), env);
}

std::string
usage_error(std::vector<std::string> args, const std::vector<std::pair<std::string, std::string>>& environment = {})
{
  try {
    parse(std::move(args), environment);
  } catch (const base::UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(LauncherServeOptions, RequestedAsCommandOrProgramName)
{
  const char* a[] = {"smlaunch", "serve"};
  const char* b[] = {"/usr/local/bin/serve"};
  const char* c[] = {"smlaunch", "train"};
  const char* d[] = {"train", "serve"};
  EXPECT_TRUE(launcher::serve_command_requested(2, a));
  EXPECT_TRUE(launcher::serve_command_requested(1, b));
  EXPECT_FALSE(launcher::serve_command_requested(2, c));
  EXPECT_TRUE(launcher::serve_command_requested(2, d)); // the word wins, as for `smlaunch serve`
}

TEST(LauncherServeOptions, Defaults)
{
  const auto o = parse({"smlaunch", "serve"}, {{"SAGEMAKER_PROGRAM", "inference.py"}});
  EXPECT_EQ(o.port, 8080);
  EXPECT_EQ(o.bind_address, "0.0.0.0");
  EXPECT_FALSE(o.workers.has_value());
  EXPECT_EQ(o.timeout, std::chrono::seconds(60));
  EXPECT_EQ(o.default_accept, "application/json");
  EXPECT_EQ(o.program, "inference.py");
  EXPECT_EQ(o.submit_directory, "");
  EXPECT_EQ(o.base_dir, "/opt/ml");
  EXPECT_EQ(o.verbosity, base::Verbosity::normal);
  EXPECT_EQ(o.max_buffered_bytes, 512ULL << 20);
  EXPECT_EQ(parse({"serve", "--max-buffered-bytes", "1048576"}, {{"SAGEMAKER_PROGRAM", "a.py"}}).max_buffered_bytes, 1ULL << 20);
  EXPECT_EQ(parse({"serve"}, {{"SAGEMAKER_PROGRAM", "a.py"}, {"SMLAUNCH_MAX_BUFFERED_BYTES", "4096"}}).max_buffered_bytes, 4096U);
}

TEST(LauncherServeOptions, ReferenceVariablesThenTwinsThenCommandLine)
{
  const std::vector<std::pair<std::string, std::string>> reference = {
    {"SAGEMAKER_PROGRAM", "a.py"},
    {"SAGEMAKER_BIND_TO_PORT", "9000"},
    {"SAGEMAKER_MODEL_SERVER_WORKERS", "3"},
    {"SAGEMAKER_MODEL_SERVER_TIMEOUT", "5"},
    {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv"},
    {"SAGEMAKER_SUBMIT_DIRECTORY", "s3://bucket/code.tar.gz"},
    {"SAGEMAKER_CONTAINER_LOG_LEVEL", "10"},
    {"SAGEMAKER_BASE_DIR", "/srv/ml"},
  };
  auto o = parse({"serve"}, reference);
  EXPECT_EQ(o.program, "a.py");
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.workers, 3);
  EXPECT_EQ(o.timeout, std::chrono::seconds(5));
  EXPECT_EQ(o.default_accept, "text/csv");
  EXPECT_EQ(o.submit_directory, "s3://bucket/code.tar.gz");
  EXPECT_EQ(o.verbosity, base::Verbosity::verbose);
  EXPECT_EQ(o.base_dir, "/srv/ml");

  auto with_twins = reference;
  with_twins.emplace_back("SMLAUNCH_PORT", "9001");
  with_twins.emplace_back("SMLAUNCH_WORKERS", "4");
  o = parse({"serve"}, with_twins);
  EXPECT_EQ(o.port, 9001);
  EXPECT_EQ(o.workers, 4);
  const auto origin = [&](const std::string& name) {
    for (const auto& s : o.settings) {
      if (s.name == name) {
        return s.origin;
      }
    }
    return std::string("?");
  };
  EXPECT_EQ(origin("port"), "environment SMLAUNCH_PORT");
  EXPECT_EQ(origin("timeout"), "environment SAGEMAKER_MODEL_SERVER_TIMEOUT");

  o = parse({"smlaunch", "serve", "--port", "9002", "--workers", "1", "--timeout", "0.5", "-q"}, with_twins);
  EXPECT_EQ(o.port, 9002);
  EXPECT_EQ(o.workers, 1);
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(o.verbosity, base::Verbosity::quiet);

  // Fractions of a millisecond round up: a timeout never becomes 0 (no wait at all).
  o = parse({"smlaunch", "serve", "--timeout", "0.0011", "--model-load-timeout", "2.0000001"}, with_twins);
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(2));
  EXPECT_EQ(o.model_load_timeout, std::chrono::milliseconds(2001));
  o = parse({"smlaunch", "serve", "--timeout", "0.001"}, with_twins);
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(1));
}

TEST(LauncherServeOptions, LogLevelNumbers)
{
  const auto level = [](const std::string& v) {
    return parse({"serve"}, {{"SAGEMAKER_PROGRAM", "a.py"}, {"SAGEMAKER_CONTAINER_LOG_LEVEL", v}}).verbosity;
  };
  EXPECT_EQ(level("10"), base::Verbosity::verbose);
  EXPECT_EQ(level("20"), base::Verbosity::normal);
  EXPECT_EQ(level("30"), base::Verbosity::quiet);
  EXPECT_EQ(level("debug"), base::Verbosity::verbose);
}

TEST(LauncherServeOptions, BadValuesNameTheSettingItsOriginAndTheValue)
{
  const std::pair<std::string, std::string> program{"SAGEMAKER_PROGRAM", "a.py"};
  struct Case
  {
    std::string variable;
    std::string value;
    std::string expected;
  };
  const Case cases[] = {
    {"SAGEMAKER_BIND_TO_PORT", "http", "--port (environment SAGEMAKER_BIND_TO_PORT) is \"http\""},
    {"SAGEMAKER_BIND_TO_PORT", "65536", "a port from 0 to 65535"},
    {"SAGEMAKER_MODEL_SERVER_WORKERS", "0", "--workers (environment SAGEMAKER_MODEL_SERVER_WORKERS) is \"0\""},
    {"SAGEMAKER_MODEL_SERVER_WORKERS", "-2", "from 1 to 1024"},
    {"SAGEMAKER_MODEL_SERVER_TIMEOUT", "0", "--timeout (environment SAGEMAKER_MODEL_SERVER_TIMEOUT) is \"0\""},
    {"SAGEMAKER_MODEL_SERVER_TIMEOUT", "1e9", "seconds"},
    {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "json", "expected a media type"},
    {"SAGEMAKER_CONTAINER_LOG_LEVEL", "loud", "--log-level (environment SAGEMAKER_CONTAINER_LOG_LEVEL)"},
    {"SMLAUNCH_MAX_BODY_SIZE", "1G", "--max-body-size (environment SMLAUNCH_MAX_BODY_SIZE) is \"1G\""},
    {"SMLAUNCH_MAX_BUFFERED_BYTES", "0", "--max-buffered-bytes (environment SMLAUNCH_MAX_BUFFERED_BYTES) is \"0\""},
  };
  for (const auto& c : cases) {
    const std::string message = usage_error({"serve"}, {program, {c.variable, c.value}});
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.variable << "=" << c.value << ": " << message;
  }
  EXPECT_NE(usage_error({"serve"}).find("SAGEMAKER_PROGRAM"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--program", "/etc/passwd"}).find("inside the code directory"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--program", "../x.py"}).find("inside the code directory"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "extra"}, {program}).find("unexpected argument \"extra\""), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--no-such"}, {program}).find("--no-such"), std::string::npos);
}

TEST(LauncherServeOptions, ServeServeAndHelp)
{
  EXPECT_EQ(parse({"/bin/serve", "serve"}, {{"SAGEMAKER_PROGRAM", "a.py"}}).program, "a.py");
  EXPECT_TRUE(parse({"smlaunch", "serve", "--help"}).help);
  const std::string help = launcher::serve_help_text();
  for (const char* name : {"SAGEMAKER_BIND_TO_PORT", "SMLAUNCH_WORKERS", "SAGEMAKER_MODEL_SERVER_TIMEOUT", "--model-data"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
}

} // namespace
