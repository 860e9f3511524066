// MPI settings: the on/off decision, slots and process counts, custom options.
#include "mpi/mpi_settings.hpp"

#include "env/config_error.hpp"
#include "env/config_files.hpp"
#include "env/env_map.hpp"
#include "env/json_value.hpp"
#include "env/paths.hpp"
#include "env/py_format.hpp"
#include "env/training_environment.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Strings = std::vector<std::string>;

const char* const k_one_host = R"json({"current_host": "algo-1", "hosts": ["algo-1"]})json";
const char* const k_two_hosts = R"json({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]})json";
// training-toolkit.md section 2, with the group's hosts in the order ["algo-2", "algo-1"].
const char* const k_two_hosts_groups =
    R"json({"current_group_name": "homogeneousCluster", "current_host": "algo-2", "current_instance_type": "ml.p4d.24xlarge", "hosts": ["algo-1", "algo-2"], "instance_groups": [{"hosts": ["algo-2", "algo-1"], "instance_group_name": "homogeneousCluster", "instance_type": "ml.p4d.24xlarge"}], "network_interface_name": "eth0"})json";

env::TrainingEnvironment
environment(const char* hyperparameters, const char* resource_config, int num_gpus = 0)
{
  env::ConfigFiles files;
  files.hyperparameters = env::parse_json(hyperparameters);
  files.resource_config = env::parse_json(resource_config);
  files.input_data_config = env::parse_json("{}");
  const env::Paths paths = env::Paths::under("/opt/ml");
  env::validate_config_files(files, paths);
  env::MachineFacts machine;
  machine.num_cpus = 4;
  machine.num_gpus = num_gpus;
  return env::build_training_environment(paths, files, machine, env::EnvMap());
}

mpi::MpiSettings
settings(const char* hyperparameters, const char* resource_config, int num_gpus = 0)
{
  return mpi::resolve_mpi_settings(environment(hyperparameters, resource_config, num_gpus));
}

// ---------------------------------------------------------------------------------------
// On or off
// ---------------------------------------------------------------------------------------

struct EnabledCase
{
  const char* name;
  const char* hyperparameters;
  const char* resource_config;
  bool enabled;
};

// Chainer: bool(hps.get("sagemaker_use_mpi", len(hosts) > 1)); toolkit: sagemaker_mpi_enabled.
// The values are json.loads'ed first, so "false" is False but the raw text "False" is the
// non-empty string 'False', which is truthy: bool(json.loads("false")), bool("False").
const EnabledCase k_enabled_cases[] = {
    {"one_host_default", R"json({})json", k_one_host, false},
    {"two_hosts_default", R"json({})json", k_two_hosts, true},
    {"use_mpi_false_two_hosts", R"json({"sagemaker_use_mpi": "false"})json", k_two_hosts, false},
    {"use_mpi_true_one_host", R"json({"sagemaker_use_mpi": "true"})json", k_one_host, true},
    {"use_mpi_raw_False_is_truthy", R"json({"sagemaker_use_mpi": "False"})json", k_one_host, true},
    {"use_mpi_zero", R"json({"sagemaker_use_mpi": "0"})json", k_two_hosts, false},
    {"use_mpi_empty_string", R"json({"sagemaker_use_mpi": "\"\""})json", k_two_hosts, false},
    {"mpi_enabled_true_one_host", R"json({"sagemaker_mpi_enabled": "true"})json", k_one_host, true},
    {"mpi_enabled_false_two_hosts", R"json({"sagemaker_mpi_enabled": "false"})json", k_two_hosts, false},
    {"mpi_enabled_with_groups", R"json({"sagemaker_mpi_enabled": "true"})json", k_two_hosts_groups, true},
    {"user_hp_named_like_flag_ignored", R"json({"use_mpi": "true"})json", k_one_host, false},
};

class MpiEnabled : public ::testing::TestWithParam<EnabledCase>
{
};

TEST_P(MpiEnabled, Decision)
{
  const EnabledCase& c = GetParam();
  const mpi::MpiSettings s = settings(c.hyperparameters, c.resource_config);
  EXPECT_EQ(s.enabled, c.enabled);
  EXPECT_FALSE(s.why.empty());
}

INSTANTIATE_TEST_SUITE_P(Settings, MpiEnabled, ::testing::ValuesIn(k_enabled_cases),
                         [](const ::testing::TestParamInfo<EnabledCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(MpiSettings, HostsAndMasterFollowDistributionHosts)
{
  // With MPI on and the group listing ["algo-2", "algo-1"], mpirun's host order and the
  // master follow the group (the master is algo-2, which is the current host here).
  const mpi::MpiSettings s = settings(R"json({"sagemaker_mpi_enabled": "true"})json", k_two_hosts_groups);
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.hosts, (Strings{"algo-2", "algo-1"}));
  EXPECT_EQ(s.master, "algo-2");
  EXPECT_EQ(s.processes_per_host, 1);
  EXPECT_EQ(s.num_processes, 2);
}

TEST(MpiSettings, WorkerIsNotMaster)
{
  // The same job seen from algo-1: the master is still algo-2.
  const std::string worker_rc = R"json({"current_group_name": "homogeneousCluster", "current_host": "algo-1", "hosts": ["algo-1", "algo-2"], "instance_groups": [{"hosts": ["algo-2", "algo-1"], "instance_group_name": "homogeneousCluster", "instance_type": "ml.p4d.24xlarge"}]})json";
  const mpi::MpiSettings s = settings(R"json({"sagemaker_mpi_enabled": "true"})json", worker_rc.c_str());
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.hosts, (Strings{"algo-2", "algo-1"}));
  EXPECT_EQ(s.master, "algo-2");
}

TEST(MpiSettings, AHostOutsideTheDistributionGroupsRunsWithoutMpi)
{
  // Two groups, MPI over "train" only. mpirun's hosts are algo-1 and algo-2: algo-3 would
  // wait for a master that never starts a rank there nor tells it the outcome (it failed
  // with HostLostError once the master's sshd stopped). The toolkit runs it as a process.
  const char* const groups = R"json({"current_group_name": "data", "current_host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3"], "instance_groups": [{"hosts": ["algo-1", "algo-2"], "instance_group_name": "train", "instance_type": "ml.c5.xlarge"}, {"hosts": ["algo-3"], "instance_group_name": "data", "instance_type": "ml.c5.xlarge"}]})json";
  for (const char* flag : {"sagemaker_mpi_enabled", "sagemaker_use_mpi"}) {
    const std::string hps = std::string(R"json({")json") + flag +
                            R"json(": "true", "sagemaker_distribution_instance_groups": "[\"train\"]", "sagemaker_num_processes": "7"})json";
    const mpi::MpiSettings s = settings(hps.c_str(), groups);
    EXPECT_FALSE(s.enabled) << flag;
    EXPECT_NE(s.why.find("algo-3 is not in the distribution instance groups"), std::string::npos) << s.why;
    EXPECT_EQ(s.hosts, (Strings{"algo-1", "algo-2"}));
  }
  // A host of the distribution group still runs MPI, also when it is the group's only one.
  const char* const member = R"json({"current_group_name": "train", "current_host": "algo-1", "hosts": ["algo-1", "algo-2"], "instance_groups": [{"hosts": ["algo-1"], "instance_group_name": "train", "instance_type": "ml.c5.xlarge"}, {"hosts": ["algo-2"], "instance_group_name": "data", "instance_type": "ml.c5.xlarge"}]})json";
  const mpi::MpiSettings m =
      settings(R"json({"sagemaker_mpi_enabled": "true", "sagemaker_distribution_instance_groups": "[\"train\"]"})json",
               member);
  EXPECT_TRUE(m.enabled);
  EXPECT_EQ(m.hosts, (Strings{"algo-1"}));
}

// ---------------------------------------------------------------------------------------
// Slots and process counts
// ---------------------------------------------------------------------------------------

struct CountCase
{
  const char* name;
  const char* hyperparameters;
  const char* resource_config;
  int num_gpus;
  int processes_per_host;
  int num_processes;
};

const CountCase k_count_cases[] = {
    {"default_one_slot_one_host", R"json({})json", k_one_host, 0, 1, 1},
    {"default_one_slot_two_hosts", R"json({})json", k_two_hosts, 0, 1, 2},
    {"default_slots_are_gpus", R"json({})json", k_two_hosts, 8, 8, 16},
    {"default_slots_are_gpus_one_host", R"json({"sagemaker_use_mpi": "true"})json", k_one_host, 4, 4, 4},
    {"chainer_slots_json_int", R"json({"sagemaker_process_slots_per_host": "4"})json", k_two_hosts, 8, 4, 8},
    {"chainer_slots_json_string", R"json({"sagemaker_process_slots_per_host": "\"3\""})json", k_two_hosts, 0, 3, 6},
    {"toolkit_slots_json_int", R"json({"sagemaker_mpi_num_of_processes_per_host": "2"})json", k_two_hosts, 0, 2, 4},
    {"toolkit_slots_json_string", R"json({"sagemaker_mpi_num_of_processes_per_host": "\"5\""})json", k_one_host, 0, 5,
     5},
    {"slots_at_limit", R"json({"sagemaker_process_slots_per_host": "1024"})json", k_one_host, 0, 1024, 1024},
    {"chainer_np_json_int", R"json({"sagemaker_process_slots_per_host": "4", "sagemaker_num_processes": "5"})json",
     k_two_hosts, 0, 4, 5},
    {"chainer_np_json_string", R"json({"sagemaker_num_processes": "\"1\""})json", k_two_hosts, 0, 1, 1},
    {"toolkit_np_json_int", R"json({"sagemaker_mpi_num_processes": "12"})json", k_two_hosts, 8, 8, 12},
    {"toolkit_np_json_string", R"json({"sagemaker_mpi_num_processes": "\"16\""})json", k_two_hosts, 8, 8, 16},
};

class MpiCounts : public ::testing::TestWithParam<CountCase>
{
};

TEST_P(MpiCounts, SlotsAndProcesses)
{
  const CountCase& c = GetParam();
  const mpi::MpiSettings s = settings(c.hyperparameters, c.resource_config, c.num_gpus);
  EXPECT_EQ(s.processes_per_host, c.processes_per_host);
  EXPECT_EQ(s.num_processes, c.num_processes);
}

INSTANTIATE_TEST_SUITE_P(Settings, MpiCounts, ::testing::ValuesIn(k_count_cases),
                         [](const ::testing::TestParamInfo<CountCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

struct BadCountCase
{
  const char* name;
  const char* hyperparameters;
  const char* key; // the key the error must name
};

// Two hosts, no GPU: the default capacity is 1 slot x 2 hosts.
const BadCountCase k_bad_count_cases[] = {
    {"slots_zero", R"json({"sagemaker_process_slots_per_host": "0"})json", "sagemaker_process_slots_per_host"},
    {"slots_negative", R"json({"sagemaker_process_slots_per_host": "-1"})json", "sagemaker_process_slots_per_host"},
    {"slots_too_many", R"json({"sagemaker_process_slots_per_host": "1025"})json", "sagemaker_process_slots_per_host"},
    {"slots_huge", R"json({"sagemaker_process_slots_per_host": "123456789012345678901234567890"})json",
     "sagemaker_process_slots_per_host"},
    {"slots_float", R"json({"sagemaker_process_slots_per_host": "2.0"})json", "sagemaker_process_slots_per_host"},
    {"slots_bool", R"json({"sagemaker_process_slots_per_host": "true"})json", "sagemaker_process_slots_per_host"},
    {"slots_text", R"json({"sagemaker_process_slots_per_host": "four"})json", "sagemaker_process_slots_per_host"},
    {"slots_empty_string", R"json({"sagemaker_process_slots_per_host": "\"\""})json",
     "sagemaker_process_slots_per_host"},
    {"slots_null", R"json({"sagemaker_process_slots_per_host": "null"})json", "sagemaker_process_slots_per_host"},
    {"toolkit_slots_zero_string", R"json({"sagemaker_mpi_num_of_processes_per_host": "\"0\""})json",
     "sagemaker_mpi_num_of_processes_per_host"},
    {"toolkit_slots_negative", R"json({"sagemaker_mpi_num_of_processes_per_host": "-4"})json",
     "sagemaker_mpi_num_of_processes_per_host"},
    {"np_zero", R"json({"sagemaker_num_processes": "0"})json", "sagemaker_num_processes"},
    {"np_negative", R"json({"sagemaker_num_processes": "-3"})json", "sagemaker_num_processes"},
    {"np_more_than_slots", R"json({"sagemaker_num_processes": "3"})json", "sagemaker_num_processes"},
    {"np_more_than_slots_string", R"json({"sagemaker_num_processes": "\"3\""})json", "sagemaker_num_processes"},
    {"toolkit_np_zero", R"json({"sagemaker_mpi_num_processes": "0"})json", "sagemaker_mpi_num_processes"},
    {"toolkit_np_too_many", R"json({"sagemaker_mpi_num_of_processes_per_host": "2", "sagemaker_mpi_num_processes": "5"})json",
     "sagemaker_mpi_num_processes"},
};

class MpiBadCounts : public ::testing::TestWithParam<BadCountCase>
{
};

TEST_P(MpiBadCounts, RejectedWithConfigErrorNamingTheKey)
{
  const BadCountCase& c = GetParam();
  const env::TrainingEnvironment e = environment(c.hyperparameters, k_two_hosts);
  try {
    (void)mpi::resolve_mpi_settings(e);
    ADD_FAILURE() << "accepted";
  } catch (const env::ConfigError& err) {
    ASSERT_EQ(err.problems().size(), 1u);
    EXPECT_EQ(err.problems()[0].file, "/opt/ml/input/config/hyperparameters.json");
    EXPECT_EQ(err.problems()[0].key, std::string("/") + c.key);
    const std::string what = err.what();
    EXPECT_NE(what.find("/opt/ml/input/config/hyperparameters.json"), std::string::npos) << what;
    EXPECT_NE(what.find(c.key), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Settings, MpiBadCounts, ::testing::ValuesIn(k_bad_count_cases),
                         [](const ::testing::TestParamInfo<BadCountCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(MpiSettings, CountsAreCheckedOnlyWhenMpiRuns)
{
  // The Chainer estimator for one instance with use_mpi=False, num_processes=2: the
  // reference runs it; the counts that do not fit are ignored.
  const mpi::MpiSettings s = settings(
      R"json({"sagemaker_use_mpi": "false", "sagemaker_num_processes": "2", "sagemaker_process_slots_per_host": "1"})json",
      k_one_host);
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.processes_per_host, 1);
  EXPECT_EQ(s.num_processes, 1);
  EXPECT_NO_THROW((void)settings(R"json({"sagemaker_mpi_enabled": "false", "sagemaker_process_slots_per_host": "0",
                                         "sagemaker_additional_mpi_options": "\"-x 'oops\""})json",
                                 k_two_hosts));
  // With MPI on, the same values fail.
  EXPECT_THROW((void)settings(R"json({"sagemaker_use_mpi": "true", "sagemaker_num_processes": "2"})json", k_one_host),
               env::ConfigError);
}

TEST(MpiSettings, CountStringWithEmbeddedMinusIsRejected)
{
  // "4-2", "1-" and "2-9" are not whole numbers: int("4-2") raises ValueError in Python.
  const char* const texts[] = {
      R"json({"sagemaker_process_slots_per_host": "\"4-2\""})json",
      R"json({"sagemaker_process_slots_per_host": "\"1-\""})json",
      R"json({"sagemaker_num_processes": "\"2-9\""})json",
  };
  for (const char* text : texts) {
    const env::TrainingEnvironment e = environment(text, k_two_hosts);
    EXPECT_THROW((void)mpi::resolve_mpi_settings(e), env::ConfigError) << text;
  }
}

// ---------------------------------------------------------------------------------------
// Custom options
// ---------------------------------------------------------------------------------------

TEST(MpiSettings, CustomOptionsAdditionalThenCustom)
{
  // shlex.split("-x A=B -x C='d e'") + shlex.split("--NCCL_DEBUG WARN -mca btl_tcp_if_include \"eth 0\"")
  const mpi::MpiSettings s = settings(
      R"json({"sagemaker_mpi_custom_mpi_options": "\"--NCCL_DEBUG WARN -mca btl_tcp_if_include \\\"eth 0\\\"\"", "sagemaker_additional_mpi_options": "\"-x A=B -x C='d e'\""})json",
      k_two_hosts);
  EXPECT_EQ(s.custom_options,
            (Strings{"-x", "A=B", "-x", "C=d e", "--NCCL_DEBUG", "WARN", "-mca", "btl_tcp_if_include", "eth 0"}));
}

TEST(MpiSettings, NoCustomOptions)
{
  EXPECT_TRUE(settings(R"json({})json", k_two_hosts).custom_options.empty());
  EXPECT_TRUE(settings(R"json({"sagemaker_mpi_custom_mpi_options": "null"})json", k_two_hosts).custom_options.empty());
  EXPECT_TRUE(settings(R"json({"sagemaker_mpi_custom_mpi_options": "\"\""})json", k_two_hosts).custom_options.empty());
}

TEST(MpiSettings, UnbalancedCustomOptionsNameTheKey)
{
  const env::TrainingEnvironment e =
      environment(R"json({"sagemaker_mpi_custom_mpi_options": "\"-x 'oops\""})json", k_two_hosts);
  try {
    (void)mpi::resolve_mpi_settings(e);
    ADD_FAILURE() << "accepted";
  } catch (const env::ConfigError& err) {
    ASSERT_EQ(err.problems().size(), 1u);
    EXPECT_EQ(err.problems()[0].file, "/opt/ml/input/config/hyperparameters.json");
    EXPECT_EQ(err.problems()[0].key, "/sagemaker_mpi_custom_mpi_options");
  }
}

TEST(MpiSettings, AnOptionWithoutItsValueNamesTheKey)
{
  // mpirun's argv goes on with `smlaunch rank ... -- <program>`: "-x" last took smlaunch's
  // path as the variable to export and mpirun failed on "rank", an executable it could not find.
  struct Case
  {
    const char* options;
    const char* option;
  };
  for (const Case& c : {Case{"-x", "\"-x\""}, Case{"-x A=1 -mca btl_tcp_if_include", "\"-mca\""},
                        Case{"--mca btl", "\"--mca\""}, Case{"--NCCL_DEBUG", "\"--NCCL_DEBUG\""},
                        Case{"--display-allocation --map-by", "\"--map-by\""}, Case{"-np", "\"-np\""}}) {
    const std::string hps = R"json({"sagemaker_mpi_custom_mpi_options": )json" +
                            env::py_json_quote(env::py_json_quote(c.options)) + "}";
    const env::TrainingEnvironment e = environment(hps.c_str(), k_two_hosts);
    try {
      (void)mpi::resolve_mpi_settings(e);
      ADD_FAILURE() << c.options << ": accepted";
    } catch (const env::ConfigError& err) {
      ASSERT_EQ(err.problems().size(), 1u);
      EXPECT_EQ(err.problems()[0].key, "/sagemaker_mpi_custom_mpi_options");
      EXPECT_NE(err.problems()[0].message.find(c.option), std::string::npos) << err.problems()[0].message;
    }
  }
  // Values that look like options, options mpirun knows without a value, a value that
  // happens to be an option's name: all kept as given.
  for (const char* options : {"-x A=1 --display-allocation", "-mca btl_tcp_if_include eth0 --report-bindings",
                              "--NCCL_DEBUG WARN", "-x -x", "-mca pml -x --tag-output", "-v --lr 35"}) {
    const std::string hps = R"json({"sagemaker_mpi_custom_mpi_options": )json" +
                            env::py_json_quote(env::py_json_quote(options)) + "}";
    EXPECT_NO_THROW((void)settings(hps.c_str(), k_two_hosts)) << options;
  }
}

} // namespace

namespace {

// `--host a:S,b:S,... -np P -map-by slot` fills each host's slots in turn.
TEST(ProcessesOnHost, SlotsAreFilledInHostOrder)
{
  struct Case
  {
    const char* name;
    Strings hosts;
    int slots;
    int processes;
    std::vector<int> expected; // per host, then one host not in the job
  };
  const Case cases[] = {
    {"one host, one slot", {"algo-1"}, 1, 1, {1, 0}},
    {"one host, four slots", {"algo-1"}, 4, 4, {4, 0}},
    {"one host, fewer processes than slots", {"algo-1"}, 4, 3, {3, 0}},
    {"2 hosts x 2", {"algo-1", "algo-2"}, 2, 4, {2, 2, 0}},
    {"2 hosts x 2, 3 processes", {"algo-1", "algo-2"}, 2, 3, {2, 1, 0}},
    {"3 hosts x 4, 5 processes: the last host idle", {"algo-1", "algo-2", "algo-3"}, 4, 5, {4, 1, 0, 0}},
    {"8 hosts x 8", {"h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"}, 8, 64, {8, 8, 8, 8, 8, 8, 8, 8, 0}},
  };
  for (const auto& c : cases) {
    mpi::MpiSettings s;
    s.hosts = c.hosts;
    s.processes_per_host = c.slots;
    s.num_processes = c.processes;
    std::vector<int> got;
    for (const auto& h : c.hosts) {
      got.push_back(mpi::processes_on_host(s, h));
    }
    got.push_back(mpi::processes_on_host(s, "elsewhere"));
    EXPECT_EQ(got, c.expected) << c.name;
  }
}

} // namespace
