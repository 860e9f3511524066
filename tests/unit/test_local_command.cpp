// `smlaunch local`'s pure half: options, the SDK's hyperparameter encoding, the trees it
// plans, and the summary's failure reasons. Expected strings were printed by CPython 3.11
// (json.dumps with the SDK's calls), not written by hand from the C++.
#include "base/errors.hpp"
#include "env/py_format.hpp"
#include "local/local_command.hpp"
#include "local/local_network.hpp"
#include "local/local_plan.hpp"
#include "process/rank_relay.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

namespace {

using local::LocalOptions;
using local::parse_local_options;

local::LocalOptions
parse(std::vector<std::string> args, const env::EnvMap& environment = {})
{
  return parse_local_options(args, environment);
}

std::string
usage_error(std::vector<std::string> args, const env::EnvMap& environment = {})
{
  try {
    parse(std::move(args), environment);
  } catch (const base::UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LocalOptions, ParsesEveryOptionInBothForms)
{
  const auto o = parse({"--entry-point", "train.py", "--source-dir=src", "--hyperparameter", "epochs=3", "--hyperparameter",
                        "name=a=b", "--channel", "train=data/train", "--channel=test=data/test", "--instance-count", "2",
                        "--instance-type", "ml.c5.xlarge", "--use-mpi", "--processes-per-host", "4", "--job-dir", "j",
                        "--job-name", "n", "--region", "eu-west-1", "--keep", "--python", "/usr/bin/python3",
                        "--grace-period", "1.5", "-v"});
  EXPECT_EQ(o.entry_point, "train.py");
  EXPECT_EQ(o.source_dir, "src");
  ASSERT_EQ(o.hyperparameters.size(), 2U);
  EXPECT_EQ(o.hyperparameters[1], (std::pair<std::string, std::string>{"name", "a=b"}));
  ASSERT_EQ(o.channels.size(), 2U);
  EXPECT_EQ(o.channels[1], (std::pair<std::string, std::string>{"test", "data/test"}));
  EXPECT_EQ(o.instance_count, 2);
  EXPECT_EQ(o.instance_type, "ml.c5.xlarge");
  EXPECT_TRUE(o.use_mpi);
  EXPECT_EQ(o.processes_per_host, 4);
  EXPECT_EQ(o.job_dir, "j");
  EXPECT_EQ(o.job_name, "n");
  EXPECT_EQ(o.region, "eu-west-1");
  EXPECT_TRUE(o.keep);
  EXPECT_EQ(o.python, "/usr/bin/python3");
  EXPECT_EQ(o.grace_period.count(), 1500);
  EXPECT_EQ(o.verbosity, base::Verbosity::verbose);
}

TEST(LocalOptions, TwinsApplyAndTheCommandLineWins)
{
  env::EnvMap environment;
  environment.set("SMLAUNCH_ENTRY_POINT", "from-env.py");
  environment.set("SMLAUNCH_INSTANCE_COUNT", "3");
  environment.set("SMLAUNCH_KEEP", "1");
  const auto o = parse({"--instance-count", "2"}, environment);
  EXPECT_EQ(o.entry_point, "from-env.py");
  EXPECT_EQ(o.instance_count, 2);
  EXPECT_TRUE(o.keep);
}

TEST(LocalOptions, BadValuesNameTheOption)
{
  EXPECT_EQ(usage_error({}), "local: --entry-point FILE is required (see smlaunch local --help)");
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "--instance-count", "65"}),
            "--instance-count (command line) is \"65\"; expected a whole number from 1 to 64");
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "--processes-per-host", "x"}),
            "--processes-per-host (command line) is \"x\"; expected a whole number from 1 to 1024");
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "--hyperparameter", "=3"}), "--hyperparameter \"=3\": expected KEY=VALUE");
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "--channel", "a/b=x"}),
            "--channel \"a/b=x\": the channel name must not contain '/'");
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "--channel", "t=x", "--channel", "t=y"}), "--channel t is given twice");
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "extra"}),
            "local: unexpected argument \"extra\" (see smlaunch local --help)");
  EXPECT_EQ(usage_error({"--entry-point"}), "local: --entry-point expects FILE");
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "--log-level", "loud"}),
            "--log-level (command line) is \"loud\"; expected warning, info or debug");
  env::EnvMap environment;
  environment.set("SMLAUNCH_KEEP", "maybe");
  EXPECT_EQ(usage_error({"--entry-point", "a.py"}, environment),
            "--keep (environment SMLAUNCH_KEEP) is \"maybe\"; expected 1/true/yes or 0/false/no");
  // The command line wins before the twin is read.
  EXPECT_EQ(usage_error({"--entry-point", "a.py", "--keep"}, environment), "(no error)");
}

TEST(LocalOptions, EverySettingKnowsWhereItCameFrom)
{
  env::EnvMap environment;
  environment.set("SMLAUNCH_JOB_NAME", "from-env");
  const auto o =
      parse({"--entry-point", "a.py", "--hyperparameter", "a=1", "--hyperparameter", "b=2", "-v"}, environment);
  std::vector<std::string> seen;
  for (const auto& s : o.settings) {
    seen.push_back(s.name + "=" + s.value + " (" + s.origin + ")");
  }
  for (const char* expected : {"entry-point=a.py (command line)", "hyperparameter=a=1 (command line)",
                               "hyperparameter=b=2 (command line)", "job-name=from-env (environment SMLAUNCH_JOB_NAME)",
                               "instance-count=1 (default)", "grace-period=60 (default)", "log-level=info (default)"}) {
    EXPECT_NE(std::find(seen.begin(), seen.end(), expected), seen.end()) << expected;
  }
  EXPECT_EQ(o.job_name, "from-env");
  EXPECT_EQ(o.verbosity, base::Verbosity::verbose); // -v wins over --log-level, as for train
}

TEST(LocalOptions, HelpNeedsNoEntryPoint)
{
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_NE(local::local_help_text().find("--instance-count N"), std::string::npos);
}

TEST(LocalHyperparameters, ValuesAreJsonWhenTheyParse)
{
  EXPECT_EQ(env::py_json_dumps_default(local::hyperparameter_value("3")), "3");
  EXPECT_EQ(env::py_json_dumps_default(local::hyperparameter_value("1e5")), "100000.0");
  EXPECT_EQ(env::py_json_dumps_default(local::hyperparameter_value("true")), "true");
  EXPECT_EQ(env::py_json_dumps_default(local::hyperparameter_value("[1,{\"b\":2,\"a\":1}]")), "[1, {\"b\": 2, \"a\": 1}]");
  EXPECT_EQ(env::py_json_dumps_default(local::hyperparameter_value("a b")), "\"a b\"");
  EXPECT_EQ(env::py_json_dumps_default(local::hyperparameter_value("caf\xc3\xa9")), "\"caf\\u00e9\"");
}

TEST(LocalHyperparameters, EncodedInTheSdksOrder)
{
  env::Value user = env::Value::object();
  user.set("sagemaker_program", env::Value::string("user-wins-position.py"));
  user.set("lr", env::Value::floating(0.1));
  // >>> hps = {"sagemaker_program": "user-wins-position.py", "lr": 0.1}
  // >>> enc = {k: json.dumps(v) for k, v in hps.items()}; enc.update({...framework...}); json.dumps(enc)
  const env::Value encoded =
    local::encode_local_hyperparameters(user, "file:///src", "train.py", "job", "us-west-2", {true, 4, 2, "-x A=B"});
  EXPECT_EQ(env::py_json_dumps_default(encoded),
            R"({"sagemaker_program": "\"train.py\"", "lr": "0.1", "sagemaker_submit_directory": "\"file:///src\"", )"
            R"("sagemaker_container_log_level": "20", "sagemaker_job_name": "\"job\"", "sagemaker_region": "\"us-west-2\"", )"
            R"("sagemaker_use_mpi": "true", "sagemaker_num_processes": "4", "sagemaker_process_slots_per_host": "2", )"
            R"("sagemaker_additional_mpi_options": "\"-x A=B\""})");
  // Falsy MPI keys are dropped, as the Chainer estimator drops them.
  const env::Value plain = local::encode_local_hyperparameters(env::Value::object(), "s", "p", "j", "r", {});
  EXPECT_EQ(plain.find("sagemaker_use_mpi"), nullptr);
  EXPECT_EQ(plain.find("sagemaker_process_slots_per_host"), nullptr);
  EXPECT_EQ(plain.find("sagemaker_num_processes"), nullptr);
  EXPECT_EQ(plain.find("sagemaker_additional_mpi_options"), nullptr);
}

TEST(LocalJobName, TheSdksForm)
{
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1559751427123LL));
  EXPECT_EQ(local::local_job_name(t), "smlaunch-local-2019-06-05-16-17-07-123");
}

class LocalPlan : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    char templ[] = "/tmp/smlaunch-unit-local-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    root = templ;
    std::filesystem::create_directories(root + "/src");
    std::filesystem::create_directories(root + "/data/train");
    std::ofstream(root + "/src/train.py") << "print(1)\n";
    std::ofstream(root + "/data/test.csv") << "1,2\n";
  }
  void TearDown() override { std::filesystem::remove_all(root); }

  local::LocalJobPlan
  plan(const std::vector<std::string>& args)
  {
    const auto options = parse(args);
    return local::plan_local_job(options, local::load_user_hyperparameters(options), root, {},
                                    std::chrono::system_clock::time_point{});
  }

  std::string root;
};

TEST_F(LocalPlan, TwoHostsWithChannels)
{
  const auto p = plan({"--entry-point", "train.py", "--source-dir", "src/", "--channel", "train=data/train", "--channel",
                       "test=data/test.csv", "--instance-count", "2", "--job-name", "j", "--region", "r"});
  EXPECT_EQ(p.job_dir, root + "/j");
  EXPECT_EQ(p.source_dir, root + "/src");
  EXPECT_EQ(p.program, "train.py");
  EXPECT_EQ(p.code_copy, root + "/j/.smlaunch-local/source");
  EXPECT_EQ(p.hyperparameters.find("sagemaker_submit_directory")->text(), "\"file://" + root + "/j/.smlaunch-local/source\"");
  EXPECT_TRUE(p.use_mpi);
  ASSERT_EQ(p.hosts.size(), 2U);
  EXPECT_EQ(p.hosts[0].role, "master");
  EXPECT_EQ(p.hosts[1].role, "worker");
  EXPECT_EQ(p.hosts[1].base, root + "/j/algo-2");
  bool found = false;
  for (const auto& f : p.files) {
    if (f.path == root + "/j/algo-2/input/config/resourceconfig.json") {
      found = true;
      EXPECT_EQ(f.content, R"({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth0", )"
                           R"("current_instance_type": "local"})");
    }
  }
  EXPECT_TRUE(found);
  // A file channel is its directory, as the SDK mounts it.
  std::vector<std::pair<std::string, std::string>> links;
  for (const auto& l : p.links) {
    links.emplace_back(l.path, l.target);
  }
  EXPECT_NE(std::find(links.begin(), links.end(), std::pair{root + "/j/algo-1/input/data/test", root + "/data"}), links.end());
  EXPECT_NE(std::find(links.begin(), links.end(), std::pair{root + "/j/algo-2/model", std::string("../model")}), links.end());
}

TEST_F(LocalPlan, OneHostWithoutMpiIsSingleAndUsesTheEntryPointsDirectory)
{
  const auto p = plan({"--entry-point", "src/train.py", "--hyperparameter", "sagemaker_use_mpi=false"});
  EXPECT_FALSE(p.use_mpi);
  EXPECT_EQ(p.hosts.at(0).role, "single");
  EXPECT_EQ(p.source_dir, root + "/src");
  EXPECT_EQ(p.program, "train.py");
  EXPECT_EQ(p.job_dir, root + "/smlaunch-local-1970-01-01-00-00-00-000");
}

TEST_F(LocalPlan, MissingInputsAreNamed)
{
  auto error = [&](const std::vector<std::string>& args) -> std::string {
    try {
      plan(args);
    } catch (const base::UsageError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error({"--entry-point", "nope.py", "--source-dir", "src"}), "--entry-point nope.py: no such file in --source-dir src");
  EXPECT_EQ(error({"--entry-point", "train.py", "--source-dir", "missing"}), "--source-dir missing: not a directory");
  EXPECT_EQ(error({"--entry-point", "src/train.py", "--channel", "x=s3://b/k"}),
            "--channel x=s3://b/k: s3:// channels are not supported by smlaunch local; download the data and give its directory");
  EXPECT_EQ(error({"--entry-point", "src/train.py", "--job-dir", "."}),
            "--job-dir " + root + " must not contain the source directory " + root + "/src");
  std::ofstream(root + "/hp.json") << "{\"a\": 1,}";
  EXPECT_NE(error({"--entry-point", "src/train.py", "--hyperparameters", root + "/hp.json"})
              .find("--hyperparameters " + root + "/hp.json: invalid JSON at line 1, column"),
            std::string::npos);
}

TEST(LocalSummary, FailureReasonIsTheFirstLineAndTheMessage)
{
  EXPECT_EQ(local::failure_reason("ExecuteUserScriptError:\nExitCode 1\nErrorMessage \"ValueError: bad\n  File x\"\n"
                                     "Command \"python x.py\"\n"),
            "ExecuteUserScriptError: ValueError: bad");
  EXPECT_EQ(local::failure_reason("ConfigError: input/config/hyperparameters.json: bad\nExitCode 65\n"),
            "ConfigError: input/config/hyperparameters.json: bad");
  EXPECT_EQ(local::failure_reason("my own words"), "my own words");
}

TEST(LocalNetwork, HostsFileNamesEveryHost)
{
  EXPECT_EQ(local::hosts_file_text({"algo-1", "algo-2"}),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.42.0.1\talgo-1\n10.42.0.2\talgo-2\n");
}

} // namespace

namespace {

TEST(RankLineAssembler, WholeLinesOutPartialHeld)
{
  process::LineAssembler lines;
  EXPECT_EQ(lines.feed("epoch 1", 7), "");
  EXPECT_TRUE(lines.holds_partial());
  EXPECT_EQ(lines.feed("\n", 1), "epoch 1\n");
  EXPECT_EQ(lines.feed("a\nb\nc", 5), "a\nb\n");
  EXPECT_EQ(lines.take_partial(), "c");
  EXPECT_FALSE(lines.holds_partial());
  EXPECT_EQ(lines.feed("\n\n", 2), "\n\n");
}

} // namespace
