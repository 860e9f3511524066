// The command line: SMLAUNCH_* twins, precedence with origins, `train` dispatch, errors.
#include "launcher/cli.hpp"

#include "base/errors.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using launcher::Command;
using launcher::Options;
using base::Verbosity;

namespace {

using Args = std::vector<std::string>;
using Vars = std::vector<std::pair<std::string, std::string>>;

Options
parse(const Args& args, const Vars& vars = {})
{
  std::vector<const char*> argv;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  argv.push_back(nullptr);
  env::EnvMap environment;
  for (const auto& [k, v] : vars) {
    environment.set(k, v);
  }
  return launcher::parse_command_line(static_cast<int>(args.size()), argv.data(), environment);
}

const base::Setting*
setting(const Options& o, const std::string& name)
{
  for (const auto& s : o.settings) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

std::string
join(const Args& args)
{
  std::string out;
  for (const auto& a : args) {
    out += (out.empty() ? "" : " ") + a;
  }
  return out;
}

TEST(LauncherCli, BaseDirPrecedenceWithOrigins)
{
  struct Case
  {
    const char* name;
    Args args;
    Vars vars;
    const char* value;
    const char* origin;
  };
  const Vars all = {{"SMLAUNCH_BASE_DIR", "/twin"}, {"SAGEMAKER_BASE_DIR", "/reference"}};
  const Case cases[] = {
    {"command line beats both", {"smlaunch", "train", "--base-dir", "/cli"}, all, "/cli", "command line"},
    {"--opt=value form", {"smlaunch", "train", "--base-dir=/cli2"}, all, "/cli2", "command line"},
    {"option before the command", {"smlaunch", "--base-dir", "/cli3", "train"}, all, "/cli3", "command line"},
    {"twin beats the reference's", {"smlaunch", "train"}, all, "/twin", "environment SMLAUNCH_BASE_DIR"},
    {"reference's variable", {"smlaunch", "train"}, {{"SAGEMAKER_BASE_DIR", "/reference"}}, "/reference",
     "environment SAGEMAKER_BASE_DIR"},
    {"empty twin is unset", {"smlaunch", "train"}, {{"SMLAUNCH_BASE_DIR", ""}, {"SAGEMAKER_BASE_DIR", "/reference"}},
     "/reference", "environment SAGEMAKER_BASE_DIR"},
    {"empty reference variable is unset", {"smlaunch", "train"}, {{"SAGEMAKER_BASE_DIR", ""}}, "/opt/ml", "default"},
    {"default", {"smlaunch", "train"}, {}, "/opt/ml", "default"},
    {"unrelated variables ignored", {"smlaunch", "train"}, {{"BASE_DIR", "/x"}, {"SMLAUNCH_BASEDIR", "/y"}}, "/opt/ml",
     "default"},
  };
  for (const auto& c : cases) {
    const Options o = parse(c.args, c.vars);
    EXPECT_EQ(o.base_dir, c.value) << c.name;
    const auto* s = setting(o, "base-dir");
    ASSERT_NE(s, nullptr) << c.name;
    EXPECT_EQ(s->value, c.value) << c.name;
    EXPECT_EQ(s->origin, c.origin) << c.name;
  }
}

TEST(LauncherCli, EveryOptionHasATwinAndTheCommandLineWins)
{
  struct Case
  {
    const char* option;
    const char* twin;
    const char* cli_value;
    const char* env_value;
    const char* default_value;
  };
  const Case cases[] = {
    {"python", "SMLAUNCH_PYTHON", "/cli/python", "/env/python", "python3"},
    {"num-gpus", "SMLAUNCH_NUM_GPUS", "2", "4", "detect"},
    {"grace-period", "SMLAUNCH_GRACE_PERIOD", "2.5", "30", "60"},
    {"dns-timeout", "SMLAUNCH_DNS_TIMEOUT", "0", "10", "900"},
    {"log-level", "SMLAUNCH_LOG_LEVEL", "warning", "debug", "info"},
  };
  for (const auto& c : cases) {
    const std::string flag = std::string("--") + c.option;
    const Options cli = parse({"smlaunch", "plan", flag, c.cli_value}, {{c.twin, c.env_value}});
    ASSERT_NE(setting(cli, c.option), nullptr) << c.option;
    EXPECT_EQ(setting(cli, c.option)->value, c.cli_value) << c.option;
    EXPECT_EQ(setting(cli, c.option)->origin, "command line") << c.option;

    const Options env = parse({"smlaunch", "plan"}, {{c.twin, c.env_value}});
    EXPECT_EQ(setting(env, c.option)->value, c.env_value) << c.option;
    EXPECT_EQ(setting(env, c.option)->origin, std::string("environment ") + c.twin) << c.option;

    const Options none = parse({"smlaunch", "plan"});
    EXPECT_EQ(setting(none, c.option)->value, c.default_value) << c.option;
    EXPECT_EQ(setting(none, c.option)->origin, "default") << c.option;
  }
}

TEST(LauncherCli, SettingsAreListedInTableOrder)
{
  const Options o = parse({"smlaunch", "plan"});
  std::vector<std::string> names;
  for (const auto& s : o.settings) {
    names.push_back(s.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"base-dir", "python", "num-gpus", "grace-period", "dns-timeout", "log-level",
                                             "mpirun", "sshd", "sshd-config", "sshd-port", "ssh-command", "ssh-timeout",
                                             "lost-host-timeout", "cluster", "instance-type", "network-interface"}));
}

TEST(LauncherCli, TypedValues)
{
  using std::chrono::milliseconds;
  const Options d = parse({"smlaunch", "train"});
  EXPECT_EQ(d.python, "python3");
  EXPECT_FALSE(d.num_gpus.has_value());
  EXPECT_EQ(d.grace_period, milliseconds(60000));
  EXPECT_EQ(d.dns_timeout, milliseconds(900000));
  EXPECT_EQ(d.verbosity, base::Verbosity::normal);

  const Options c = parse({"smlaunch", "train", "--python", "/venv/bin/python", "--num-gpus", "8", "--grace-period",
                           "2.5", "--dns-timeout", "0"});
  EXPECT_EQ(c.python, "/venv/bin/python");
  EXPECT_EQ(c.num_gpus, std::optional<int>(8));
  EXPECT_EQ(c.grace_period, milliseconds(2500));
  EXPECT_EQ(c.dns_timeout, milliseconds(0));

  struct Gpus
  {
    const char* value;
    std::optional<int> expected;
  };
  const Gpus gpus[] = {{"0", 0}, {"1", 1}, {"9999", 9999}, {"0008", 8}, {"detect", std::nullopt}};
  for (const auto& g : gpus) {
    EXPECT_EQ(parse({"smlaunch", "train", "--num-gpus", g.value}).num_gpus, g.expected) << g.value;
    EXPECT_EQ(parse({"smlaunch", "train"}, {{"SMLAUNCH_NUM_GPUS", g.value}}).num_gpus, g.expected) << g.value;
  }
  struct Seconds
  {
    const char* value;
    long long ms;
  };
  // Sub-millisecond parts round up, as serve's timeouts do: a wait is never shorter than asked.
  const Seconds seconds[] = {{"0", 0},         {"0.5", 500},  {"30", 30000},    {"604800", 604800000LL},
                             {"1e3", 1000000}, {"0.0004", 1}, {"1.0011", 1002}};
  for (const auto& s : seconds) {
    EXPECT_EQ(parse({"smlaunch", "train", "--grace-period", s.value}).grace_period.count(), s.ms) << s.value;
    EXPECT_EQ(parse({"smlaunch", "train"}, {{"SMLAUNCH_DNS_TIMEOUT", s.value}}).dns_timeout.count(), s.ms) << s.value;
  }
}

// --ssh-command is split as a shell would when parsed: a value that cannot be split (or
// holds no word) is a usage error at once, not an error in the middle of a job.
TEST(LauncherCli, SshCommandIsValidatedWhenParsed)
{
  EXPECT_EQ(parse({"smlaunch", "train", "--ssh-command", "ssh -p 2222"}).ssh_command, "ssh -p 2222");
  EXPECT_THROW(parse({"smlaunch", "train", "--ssh-command", "ssh -o 'unbalanced"}), base::UsageError);
  EXPECT_THROW(parse({"smlaunch", "train", "--ssh-command", "  "}), base::UsageError);
  EXPECT_THROW(parse({"smlaunch", "plan"}, {{"SMLAUNCH_SSH_COMMAND", "ssh \"x"}}), base::UsageError);
}

TEST(LauncherCli, CommandDispatch)
{
  struct Case
  {
    Args args;
    Command expected;
  };
  const Case cases[] = {
    {{"smlaunch", "train"}, Command::train},
    {{"/usr/local/bin/smlaunch", "train"}, Command::train},
    {{"smlaunch", "plan"}, Command::plan},
    {{"smlaunch", "help"}, Command::help},
    {{"train"}, Command::train},                      // `train` on PATH
    {{"/usr/local/bin/train"}, Command::train},       // installed link, full path
    {{"train", "train"}, Command::train},             // ENTRYPOINT ["train"] + `docker run IMAGE train`
    {{"/usr/local/bin/train", "train"}, Command::train},
    {{"train", "--num-gpus", "1"}, Command::train},
    {{"train", "train", "--num-gpus", "1"}, Command::train},
    {{"smlaunch", "train", "-v"}, Command::train},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse(c.args).command, c.expected) << join(c.args);
  }
  EXPECT_EQ(parse({"train", "--num-gpus", "1"}).num_gpus, std::optional<int>(1));
}

TEST(LauncherCli, HelpAndVersion)
{
  struct Case
  {
    Args args;
    Command expected;
  };
  const Case cases[] = {
    {{"smlaunch", "--help"}, Command::help},
    {{"smlaunch", "-h"}, Command::help},
    {{"smlaunch", "train", "--help"}, Command::help},
    {{"train", "--help"}, Command::help},
    {{"smlaunch", "--version"}, Command::version},
    {{"train", "--version"}, Command::version},
    {{"smlaunch", "plan", "--version"}, Command::version},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse(c.args).command, c.expected) << join(c.args);
  }
  // --help does not validate the other settings.
  EXPECT_EQ(parse({"smlaunch", "--help"}, {{"SMLAUNCH_NUM_GPUS", "x"}}).command, Command::help);

  const std::string help = launcher::help_text();
  for (const char* word : {"train", "plan", "--base-dir", "SMLAUNCH_BASE_DIR", "SAGEMAKER_BASE_DIR", "--python",
                           "SMLAUNCH_PYTHON", "--num-gpus", "SMLAUNCH_NUM_GPUS", "--grace-period",
                           "SMLAUNCH_GRACE_PERIOD", "--dns-timeout", "SMLAUNCH_DNS_TIMEOUT", "--log-level",
                           "SMLAUNCH_LOG_LEVEL", "--verbose", "--quiet", "--version", "default: /opt/ml",
                           "default: 60", "default: 900", "default: info"}) {
    EXPECT_NE(help.find(word), std::string::npos) << word;
  }
}

TEST(LauncherCli, Verbosity)
{
  struct Case
  {
    Args args;
    Vars vars;
    base::Verbosity expected;
  };
  const Case cases[] = {
    {{"smlaunch", "train"}, {}, base::Verbosity::normal},
    {{"smlaunch", "train", "-v"}, {}, base::Verbosity::verbose},
    {{"smlaunch", "train", "--verbose"}, {}, base::Verbosity::verbose},
    {{"smlaunch", "-q", "train"}, {}, base::Verbosity::quiet},
    {{"smlaunch", "train", "--quiet"}, {}, base::Verbosity::quiet},
    {{"smlaunch", "train", "--log-level", "debug"}, {}, base::Verbosity::verbose},
    {{"smlaunch", "train", "--log-level", "info"}, {}, base::Verbosity::normal},
    {{"smlaunch", "train", "--log-level", "warning"}, {}, base::Verbosity::quiet},
    {{"smlaunch", "train"}, {{"SMLAUNCH_LOG_LEVEL", "debug"}}, base::Verbosity::verbose},
    {{"smlaunch", "train"}, {{"SMLAUNCH_LOG_LEVEL", "warning"}}, base::Verbosity::quiet},
    // The flags beat the level, wherever it came from.
    {{"smlaunch", "train", "-v"}, {{"SMLAUNCH_LOG_LEVEL", "warning"}}, base::Verbosity::verbose},
    {{"smlaunch", "train", "-q", "--log-level", "debug"}, {}, base::Verbosity::quiet},
    {{"train", "-v"}, {}, base::Verbosity::verbose},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse(c.args, c.vars).verbosity, c.expected) << join(c.args);
  }
}

TEST(LauncherCli, UsageErrors)
{
  struct Case
  {
    Args args;
    Vars vars;
    const char* mentions; // a part of the message
  };
  const Case cases[] = {
    {{"smlaunch", "serve"}, {}, "serve"},
    {{"smlaunch", "fit"}, {}, "unknown command"},
    {{"smlaunch"}, {}, "no command"},
    {{"smlaunch", "-v"}, {}, "no command"},
    {{"smlaunch", "train", "extra"}, {}, "extra"},
    {{"smlaunch", "plan", "train"}, {}, "train"},
    {{"train", "plan"}, {}, "plan"},
    {{"train", "train", "train"}, {}, "train"},
    {{"smlaunch", "train", "--bogus"}, {}, "bogus"},
    {{"smlaunch", "train", "--base-dir"}, {}, "base-dir"},
    {{"smlaunch", "train", "--num-gpus", "x"}, {}, "\"x\""},
    {{"smlaunch", "train", "--num-gpus=-1"}, {}, "\"-1\""},
    {{"smlaunch", "train", "--num-gpus", "-1"}, {}, "num-gpus"},
    {{"smlaunch", "train", "--num-gpus", "99999"}, {}, "\"99999\""},
    {{"smlaunch", "train", "--num-gpus", "1.5"}, {}, "\"1.5\""},
    {{"smlaunch", "train", "--num-gpus", " 2"}, {}, "num-gpus"},
    {{"smlaunch", "train", "--num-gpus="}, {}, "num-gpus"},
    {{"smlaunch", "train"}, {{"SMLAUNCH_NUM_GPUS", "x"}}, "environment SMLAUNCH_NUM_GPUS"},
    {{"smlaunch", "train", "--grace-period", "abc"}, {}, "\"abc\""},
    {{"smlaunch", "train", "--grace-period=-1"}, {}, "\"-1\""},
    {{"smlaunch", "train", "--grace-period", "-1"}, {}, "grace-period"},
    {{"smlaunch", "train", "--grace-period", "1e9"}, {}, "\"1e9\""},
    {{"smlaunch", "train", "--grace-period", "604801"}, {}, "604800"},
    {{"smlaunch", "train", "--grace-period", "nan"}, {}, "\"nan\""},
    {{"smlaunch", "train", "--grace-period", "inf"}, {}, "\"inf\""},
    {{"smlaunch", "train", "--grace-period", "10s"}, {}, "\"10s\""},
    {{"smlaunch", "train"}, {{"SMLAUNCH_GRACE_PERIOD", "abc"}}, "environment SMLAUNCH_GRACE_PERIOD"},
    {{"smlaunch", "train", "--dns-timeout", "-5"}, {}, "dns-timeout"},
    {{"smlaunch", "train"}, {{"SMLAUNCH_DNS_TIMEOUT", "soon"}}, "environment SMLAUNCH_DNS_TIMEOUT"},
    {{"smlaunch", "train", "--log-level", "loud"}, {}, "\"loud\""},
    {{"smlaunch", "train", "--log-level", "DEBUG"}, {}, "\"DEBUG\""},
    {{"smlaunch", "train"}, {{"SMLAUNCH_LOG_LEVEL", "trace"}}, "environment SMLAUNCH_LOG_LEVEL"},
  };
  for (const auto& c : cases) {
    try {
      parse(c.args, c.vars);
      ADD_FAILURE() << "no UsageError for: " << join(c.args);
    } catch (const base::UsageError& e) {
      EXPECT_EQ(e.exit_code(), 64) << join(c.args);
      EXPECT_EQ(e.error_class(), "UsageError") << join(c.args);
      EXPECT_NE(std::string(e.what()).find(c.mentions), std::string::npos) << join(c.args) << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a UsageError for " << join(c.args) << ": " << e.what();
    }
  }
}

} // namespace
