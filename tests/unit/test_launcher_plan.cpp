// make_train_plan / plan_to_json on real trees: the three config files are written to a
// temporary base directory and read with env::read_config_files, as `smlaunch plan` does.
#include "launcher/plan.hpp"

#include "base/errors.hpp"
#include "env/config_error.hpp"
#include "env/config_files.hpp"
#include "env/slurm.hpp"
#include "fetch/code_source.hpp"
#include "launcher/cli.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using launcher::EntryPointType;
using launcher::PlanInputs;
using launcher::TrainPlan;

namespace {

using Vars = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

const char* const k_python = "/usr/bin/python3";

std::string
json_string(const std::string& s)
{
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

class LauncherPlan : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    m_base = fs::temp_directory_path() / ("smlaunch-plan-" + std::to_string(getpid()));
    fs::remove_all(m_base);
    fs::create_directories(m_base / "input" / "config");
    fs::create_directories(m_base / "input" / "data" / "train");
    fs::create_directories(src() / "sub");
    write(src() / "train.py", "print('hi')\n");
    hosts({"algo-1"}, "algo-1");
    write(m_base / "input" / "config" / "inputdataconfig.json",
          R"({"train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}})");
    m_hps = {{"epochs", "3"},
             {"lr", "0.1"},
             {"sagemaker_program", json_string("train.py")},
             {"sagemaker_submit_directory", json_string(src().string())},
             {"sagemaker_job_name", json_string("job-7")},
             {"sagemaker_region", json_string("eu-west-1")}};
    m_inherited = {{"PATH", "/usr/local/bin:/usr/bin"}, {"HOME", "/root"}};
  }
  void TearDown() override { fs::remove_all(m_base); }

  fs::path src() const { return m_base / "src"; }
  std::string code() const { return (m_base / "code").string(); }

  static void
  write(const fs::path& p, const std::string& text)
  {
    std::ofstream(p) << text;
  }
  void
  hosts(const Strings& names, const std::string& current)
  {
    std::string list;
    for (const auto& h : names) {
      list += (list.empty() ? "" : ", ") + json_string(h);
    }
    write(m_base / "input" / "config" / "resourceconfig.json",
          R"({"current_host": )" + json_string(current) + R"(, "hosts": [)" + list +
            R"(], "network_interface_name": "eth0"})");
  }
  // Set (or with value nullptr, remove) a hyperparameter: `json` is the JSON text the SDK
  // puts inside the string.
  void
  hp(const std::string& name, const char* json)
  {
    std::erase_if(m_hps, [&](const auto& e) { return e.first == name; });
    if (json != nullptr) {
      m_hps.emplace_back(name, json);
    }
  }

  PlanInputs
  inputs(const Vars& extra = {}, std::chrono::milliseconds dns_timeout = std::chrono::seconds(900))
  {
    std::string text = "{";
    for (const auto& [k, v] : m_hps) {
      text += (text.size() > 1 ? ", " : "") + json_string(k) + ": " + json_string(v);
    }
    write(m_base / "input" / "config" / "hyperparameters.json", text + "}");
    PlanInputs in;
    in.options.dns_timeout = dns_timeout;
    in.paths = env::Paths::under(m_base.string());
    in.config = env::read_config_files(in.paths);
    in.machine.num_cpus = 4;
    in.gpu_source = "option";
    for (const auto& [k, v] : m_inherited) {
      in.inherited.set(k, v);
    }
    for (const auto& [k, v] : extra) {
      in.inherited.set(k, v);
    }
    in.python = k_python;
    in.code_dir_has_files = fetch::directory_has_files(in.paths.code);
    return in;
  }
  TrainPlan plan(const Vars& extra = {}) { return launcher::make_train_plan(inputs(extra)); }

  fs::path m_base;
  Vars m_hps;
  Vars m_inherited;
};

std::string
get(const env::EnvMap& map, const std::string& name)
{
  const std::string* v = map.get(name);
  return v != nullptr ? *v : "<unset>";
}

TEST_F(LauncherPlan, ScriptStep)
{
  const TrainPlan p = plan();
  EXPECT_EQ(p.script.name, "script");
  EXPECT_EQ(p.script.error_class, "ExecuteUserScriptError");
  EXPECT_EQ(p.script.argv, (Strings{k_python, "train.py", "--epochs", "3", "--lr", "0.1"}));
  EXPECT_EQ(p.script.cwd, code());
  EXPECT_EQ(p.entry_point, "train.py");
  EXPECT_EQ(p.entry_type, EntryPointType::python_program);
  EXPECT_FALSE(p.entry_point_missing);
  EXPECT_EQ(p.source.kind, fetch::SourceKind::directory);
  EXPECT_EQ(p.staging, fetch::StagingAction::copy_directory);
  EXPECT_EQ(p.code.root, src().string());
  EXPECT_FALSE(p.install.has_value());
  EXPECT_TRUE(p.dns_hosts.empty());

  const env::EnvMap& e = p.script.env;
  const Vars expected = {
    {"PATH", "/usr/local/bin:/usr/bin"}, // inherited
    {"HOME", "/root"},
    {"CURRENT_HOST", "algo-1"},
    {"SAGEMAKER_JOB_NAME", "job-7"},
    {"SAGEMAKER_REGION", "eu-west-1"},
    {"PYTHONPATH", code()},
    {"PYTHONUNBUFFERED", "1"},
    {"SM_CURRENT_HOST", "algo-1"},
    {"SM_HOSTS", "[\"algo-1\"]"},
    {"SM_USER_ENTRY_POINT", "train.py"},
    {"SM_MODULE_DIR", src().string()},
    {"SM_MODEL_DIR", (m_base / "model").string()},
    {"SM_CHANNEL_TRAIN", (m_base / "input" / "data" / "train").string()},
    {"SM_HP_EPOCHS", "3"},
    {"SM_USER_ARGS", "[\"--epochs\",\"3\",\"--lr\",\"0.1\"]"},
    {"SM_NUM_CPUS", "4"},
  };
  for (const auto& [k, v] : expected) {
    EXPECT_EQ(get(e, k), v) << k;
  }
  // What smlaunch adds: everything but the inherited variables.
  EXPECT_FALSE(p.added.contains("PATH"));
  EXPECT_FALSE(p.added.contains("HOME"));
  for (const char* k : {"CURRENT_HOST", "SAGEMAKER_JOB_NAME", "SAGEMAKER_REGION", "PYTHONPATH", "PYTHONUNBUFFERED",
                        "SM_CURRENT_HOST", "SM_TRAINING_ENV"}) {
    EXPECT_TRUE(p.added.contains(k)) << k;
  }
}

TEST_F(LauncherPlan, PythonPathAndUnbuffered)
{
  struct Case
  {
    Vars inherited;
    std::string pythonpath;
    std::string unbuffered;
    bool unbuffered_added;
  };
  const Case cases[] = {
    {{}, code(), "1", true},
    {{{"PYTHONPATH", "/opt/lib:/srv/lib"}}, code() + ":/opt/lib:/srv/lib", "1", true},
    {{{"PYTHONPATH", ""}}, code(), "1", true},
    {{{"PYTHONUNBUFFERED", "0"}}, code(), "0", false},
    {{{"PYTHONUNBUFFERED", ""}}, code(), "", false}, // set, even empty: the user's choice
    {{{"PYTHONPATH", "/x"}, {"PYTHONUNBUFFERED", "1"}}, code() + ":/x", "1", false},
  };
  for (const auto& c : cases) {
    const TrainPlan p = plan(c.inherited);
    const std::string what = c.inherited.empty() ? "(none)" : c.inherited[0].first + "=" + c.inherited[0].second;
    EXPECT_EQ(get(p.script.env, "PYTHONPATH"), c.pythonpath) << what;
    EXPECT_EQ(get(p.added, "PYTHONPATH"), c.pythonpath) << what;
    EXPECT_EQ(get(p.script.env, "PYTHONUNBUFFERED"), c.unbuffered) << what;
    EXPECT_EQ(p.added.contains("PYTHONUNBUFFERED"), c.unbuffered_added) << what;
  }
}

TEST_F(LauncherPlan, JobNameAndRegion)
{
  struct Case
  {
    const char* job_hp;
    const char* region_hp;
    Vars inherited;
    const char* job;
    const char* region;
  };
  const Case cases[] = {
    {"\"job-7\"", "\"eu-west-1\"", {{"AWS_REGION", "us-west-2"}}, "job-7", "eu-west-1"},
    {nullptr, nullptr, {{"AWS_REGION", "us-west-2"}}, "", "us-west-2"},
    {nullptr, nullptr, {{"AWS_DEFAULT_REGION", "ap-south-1"}}, "", "ap-south-1"},
  };
  for (const auto& c : cases) {
    hp("sagemaker_job_name", c.job_hp);
    hp("sagemaker_region", c.region_hp);
    const TrainPlan p = plan(c.inherited);
    EXPECT_EQ(get(p.script.env, "SAGEMAKER_JOB_NAME"), c.job) << c.region;
    EXPECT_EQ(get(p.script.env, "SAGEMAKER_REGION"), c.region) << c.region;
    EXPECT_EQ(get(p.script.env, "CURRENT_HOST"), "algo-1");
  }
}

TEST_F(LauncherPlan, InstallStep)
{
  struct Case
  {
    const char* name;
    bool requirements;
    bool setup_py;
    bool has_install;
    Strings install_argv;
    const char* error_class;
    Strings script_argv;
  };
  const Case cases[] = {
    {"nothing", false, false, false, {}, "", {k_python, "train.py", "--epochs", "3", "--lr", "0.1"}},
    {"requirements.txt",
     true,
     false,
     true,
     {k_python, "-m", "pip", "install", "-r", "requirements.txt"},
     "InstallRequirementsError",
     {k_python, "train.py", "--epochs", "3", "--lr", "0.1"}},
    {"setup.py",
     false,
     true,
     true,
     {k_python, "-m", "pip", "install", "."},
     "InstallModuleError",
     {k_python, "-m", "train", "--epochs", "3", "--lr", "0.1"}},
    {"both",
     true,
     true,
     true,
     {k_python, "-m", "pip", "install", ".", "-r", "requirements.txt"},
     "InstallModuleError",
     {k_python, "-m", "train", "--epochs", "3", "--lr", "0.1"}},
  };
  for (const auto& c : cases) {
    fs::remove(src() / "requirements.txt");
    fs::remove(src() / "setup.py");
    if (c.requirements) {
      write(src() / "requirements.txt", "numpy\n");
    }
    if (c.setup_py) {
      write(src() / "setup.py", "from setuptools import setup\nsetup(name='x')\n");
    }
    const TrainPlan p = plan({{"PIP_INDEX_URL", "https://example.invalid/simple"}});
    EXPECT_EQ(p.script.argv, c.script_argv) << c.name;
    ASSERT_EQ(p.install.has_value(), c.has_install) << c.name;
    if (!p.install) {
      continue;
    }
    EXPECT_EQ(p.install->name, "install") << c.name;
    EXPECT_EQ(p.install->argv, c.install_argv) << c.name;
    EXPECT_EQ(p.install->error_class, c.error_class) << c.name;
    EXPECT_EQ(p.install->cwd, code()) << c.name;
    const env::EnvMap& e = p.install->env;
    for (const auto& [k, v] : e.entries()) {
      EXPECT_NE(k.rfind("SM_", 0), 0u) << c.name << ": pip sees " << k;
    }
    EXPECT_EQ(get(e, "PATH"), "/usr/local/bin:/usr/bin") << c.name;
    EXPECT_EQ(get(e, "PIP_INDEX_URL"), "https://example.invalid/simple") << c.name; // the user's PIP_* pass
    EXPECT_EQ(get(e, "CURRENT_HOST"), "algo-1") << c.name;
    EXPECT_EQ(get(e, "SAGEMAKER_JOB_NAME"), "job-7") << c.name;
    EXPECT_FALSE(e.contains("PYTHONPATH")) << c.name;
  }
}

TEST_F(LauncherPlan, InstallFromTheCodeDirectoryItself)
{
  hp("sagemaker_submit_directory", nullptr); // default: the code directory
  fs::create_directories(code());
  write(fs::path(code()) / "train.py", "print(1)\n");
  write(fs::path(code()) / "requirements.txt", "numpy\n");
  const TrainPlan p = plan();
  EXPECT_EQ(p.source.kind, fetch::SourceKind::code_dir);
  EXPECT_EQ(p.staging, fetch::StagingAction::none);
  ASSERT_TRUE(p.install.has_value());
  EXPECT_EQ(p.install->argv.back(), "requirements.txt");
  EXPECT_FALSE(p.entry_point_missing);
  EXPECT_EQ(get(p.script.env, "SM_MODULE_DIR"), code());
}

TEST_F(LauncherPlan, EntryPointMissing)
{
  struct Case
  {
    const char* program;
    const char* submit; // nullptr: the source folder
    bool setup_py;
    bool missing;
  };
  const Case cases[] = {
    {"train.py", nullptr, false, false},
    {"missing.py", nullptr, false, true},
    {"sub/run.sh", nullptr, false, true},
    {"..hidden.py", nullptr, false, true}, // ".." only as a whole path part is refused
    {"missing.py", "s3://bucket/job/sourcedir.tar.gz", false, false}, // unknown until fetched
    {"missing", nullptr, true, false}, // a package's module may come from the install
  };
  for (const auto& c : cases) {
    fs::remove(src() / "setup.py");
    if (c.setup_py) {
      write(src() / "setup.py", "");
    }
    hp("sagemaker_program", json_string(c.program).c_str());
    hp("sagemaker_submit_directory", json_string(c.submit != nullptr ? c.submit : src().string()).c_str());
    const TrainPlan p = plan();
    EXPECT_EQ(p.entry_point_missing, c.missing) << c.program << " from " << (c.submit ? c.submit : "src");
  }
  // SAGEMAKER_PROGRAM wins over the hyperparameter.
  hp("sagemaker_program", json_string("missing.py").c_str());
  hp("sagemaker_submit_directory", json_string(src().string()).c_str());
  const TrainPlan p = plan({{"SAGEMAKER_PROGRAM", "train.py"}});
  EXPECT_EQ(p.entry_point, "train.py");
  EXPECT_FALSE(p.entry_point_missing);
}

TEST_F(LauncherPlan, BadProgramIsAConfigError)
{
  struct Case
  {
    const char* name;
    const char* program_json; // nullptr: no sagemaker_program
    Vars inherited;
    const char* file;         // "hps": the hyperparameters file
    const char* key;
  };
  const Case cases[] = {
    {"missing", nullptr, {}, "hps", "/sagemaker_program"},
    {"null", "null", {}, "hps", "/sagemaker_program"},
    {"integer", "5", {}, "hps", "/sagemaker_program"},
    {"list", "[\"train.py\"]", {}, "hps", "/sagemaker_program"},
    {"empty", "\"\"", {}, "hps", "/sagemaker_program"},
    {"absolute", "\"/opt/ml/code/train.py\"", {}, "hps", "/sagemaker_program"},
    {"dot-dot", "\"../train.py\"", {}, "hps", "/sagemaker_program"},
    {"inner dot-dot", "\"sub/../../train.py\"", {}, "hps", "/sagemaker_program"},
    {"only dot-dot", "\"..\"", {}, "hps", "/sagemaker_program"},
    {"a directory", "\"sub\"", {}, "hps", "/sagemaker_program"},
    {"absolute in the environment", "\"train.py\"", {{"SAGEMAKER_PROGRAM", "/abs/train.py"}}, "environment",
     "SAGEMAKER_PROGRAM"},
    {"dot-dot in the environment", nullptr, {{"SAGEMAKER_PROGRAM", "../x.py"}}, "environment", "SAGEMAKER_PROGRAM"},
  };
  const std::string hps_file = (m_base / "input" / "config" / "hyperparameters.json").string();
  for (const auto& c : cases) {
    hp("sagemaker_program", c.program_json);
    try {
      launcher::make_train_plan(inputs(c.inherited));
      ADD_FAILURE() << "no ConfigError for " << c.name;
    } catch (const env::ConfigError& e) {
      ASSERT_FALSE(e.problems().empty()) << c.name;
      EXPECT_EQ(e.problems()[0].key, c.key) << c.name << ": " << e.what();
      EXPECT_EQ(e.problems()[0].file, std::string(c.file) == "hps" ? hps_file : c.file) << c.name << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a ConfigError for " << c.name << ": " << e.what();
    }
  }
}

TEST_F(LauncherPlan, MissingSubmitDirectoryIsAStagingError)
{
  const std::string gone = (m_base / "no-such-source").string();
  for (const std::string& submit : {gone, "file://" + gone, gone + "/"}) {
    hp("sagemaker_submit_directory", json_string(submit).c_str());
    try {
      plan();
      ADD_FAILURE() << "no StagingError for " << submit;
    } catch (const base::StagingError& e) {
      EXPECT_EQ(e.exit_code(), 66);
      EXPECT_NE(std::string(e.what()).find(gone), std::string::npos) << e.what();
    }
  }
}

TEST_F(LauncherPlan, DnsHosts)
{
  struct Case
  {
    const char* name;
    Strings hosts;
    long long timeout_ms;
    Vars inherited;
    bool wait;
  };
  const Case cases[] = {
    {"one host", {"algo-1"}, 900000, {}, false},
    {"two hosts", {"algo-1", "algo-2"}, 900000, {}, true},
    {"three hosts, short timeout", {"algo-1", "algo-2", "algo-3"}, 1, {}, true},
    {"timeout 0 skips", {"algo-1", "algo-2"}, 0, {}, false},
    {"studio local mode", {"algo-1", "algo-2"}, 900000, {{"SM_STUDIO_LOCAL_MODE", "true"}}, false},
    {"studio local mode True", {"algo-1", "algo-2"}, 900000, {{"SM_STUDIO_LOCAL_MODE", "True"}}, false},
    {"studio local mode tRue", {"algo-1", "algo-2"}, 900000, {{"SM_STUDIO_LOCAL_MODE", "tRue"}}, false},
    {"studio local mode trueish", {"algo-1", "algo-2"}, 900000, {{"SM_STUDIO_LOCAL_MODE", "truex"}}, true},
    {"studio local mode false", {"algo-1", "algo-2"}, 900000, {{"SM_STUDIO_LOCAL_MODE", "false"}}, true},
  };
  for (const auto& c : cases) {
    hosts(c.hosts, "algo-1");
    const TrainPlan p = launcher::make_train_plan(inputs(c.inherited, std::chrono::milliseconds(c.timeout_ms)));
    EXPECT_EQ(p.dns_hosts, c.wait ? c.hosts : Strings{}) << c.name;
  }
}

TEST_F(LauncherPlan, Json)
{
  const char* argv[] = {"smlaunch", "plan", "--base-dir", "/ignored", "--grace-period", "30", nullptr};
  PlanInputs in = inputs({{"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
                          {"AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"},
                          {"HF_TOKEN", ""}});
  in.options = launcher::parse_command_line(6, argv, in.inherited);
  const TrainPlan p = launcher::make_train_plan(in);
  const auto j = launcher::plan_to_json(p, in);
  for (const char* key : {"steps", "environment", "settings", "mpi", "host", "code", "entry_point", "dns_wait"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["settings"]["base-dir"]["origin"], "command line");
  EXPECT_EQ(j["settings"]["grace-period"]["value"], "30");
  EXPECT_EQ(j["settings"]["python"]["origin"], "default");
  EXPECT_EQ(j["host"]["current_host"], "algo-1");
  EXPECT_EQ(j["mpi"]["enabled"], false);
  ASSERT_EQ(j["steps"].size(), 1u);
  const auto& step = j["steps"][0];
  EXPECT_EQ(step["name"], "script");
  EXPECT_EQ(step["argv"], p.script.argv);
  EXPECT_EQ(step["cwd"], code());
  EXPECT_EQ(step["env"]["AWS_SECRET_ACCESS_KEY"], "<redacted>");
  EXPECT_EQ(step["env"]["AWS_ACCESS_KEY_ID"], "<redacted>"); // "KEY" in the name
  EXPECT_EQ(step["env"]["HF_TOKEN"], "");                    // nothing to hide
  EXPECT_EQ(step["env"]["PATH"], "/usr/local/bin:/usr/bin");
  EXPECT_EQ(j["environment"]["PYTHONPATH"], code());
  EXPECT_FALSE(j["environment"].contains("PATH"));
  const std::string dump = j.dump();
  EXPECT_EQ(dump.find("wJalrXUtnFEMI"), std::string::npos);
  EXPECT_EQ(dump.find("AKIAIOSFODNN7EXAMPLE"), std::string::npos);

  // With requirements.txt the install step comes first.
  write(src() / "requirements.txt", "numpy\n");
  const TrainPlan with_install = launcher::make_train_plan(in);
  const auto j2 = launcher::plan_to_json(with_install, in);
  ASSERT_EQ(j2["steps"].size(), 2u);
  EXPECT_EQ(j2["steps"][0]["name"], "install");
  EXPECT_EQ(j2["steps"][0]["env"]["AWS_SECRET_ACCESS_KEY"], "<redacted>");
  EXPECT_EQ(j2["steps"][1]["name"], "script");
}

TEST_F(LauncherPlan, JsonSecretHyperparameterBug)
{
  // A hyperparameter named like a secret: SM_HP_API_KEY is redacted by name, but its value
  // is also inside SM_HPS, SM_USER_ARGS, SM_TRAINING_ENV and the script's argv. The -v log
  // (train.cpp, log_environment) redacts those with env::redact_secrets, and so must the
  // plan: its value may appear nowhere in plan_to_json's output.
  hp("api_key", json_string("sk-live-0123456789abcdef").c_str());
  const PlanInputs in = inputs();
  const TrainPlan p = launcher::make_train_plan(in);
  const auto j = launcher::plan_to_json(p, in);
  EXPECT_EQ(j["environment"]["SM_HP_API_KEY"], "<redacted>");
  const std::string dump = j.dump();
  if (dump.find("sk-live-0123456789abcdef") != std::string::npos) {
    FAIL() << "regression: plan_to_json (\"secrets redacted\") redacts by variable name only; the value of "
                    "SM_HP_API_KEY appears unredacted in environment.SM_HPS, SM_USER_ARGS, SM_TRAINING_ENV and "
                    "steps[].argv, while the -v log redacts it";
  }
}

} // namespace

namespace {

// The ranks' thread budget on this host, shown in the plan with each value's origin.
TEST_F(LauncherPlan, ThreadBudget)
{
  struct Case
  {
    const char* name;
    Strings hosts;
    const char* current;
    const char* slots;       // sagemaker_process_slots_per_host (JSON), nullptr: default (1, no GPU)
    const char* processes;   // sagemaker_num_processes, nullptr: slots x hosts
    const char* mpi_options; // sagemaker_additional_mpi_options, nullptr: none
    Vars inherited;
    const char* why;
    Strings values; // OMP, OPENBLAS, MKL as "value/origin"; empty: none set
  };
  const Case cases[] = {
    {"no MPI", {"algo-1"}, "algo-1", nullptr, nullptr, nullptr, {}, "no MPI: one process on this host keeps every core",
     {}},
    {"2 hosts x 1 (the CPU default)", {"algo-1", "algo-2"}, "algo-1", nullptr, nullptr, nullptr, {},
     "none: one process on this host keeps every core", {}},
    {"2 hosts x 2 on 4 cpus", {"algo-1", "algo-2"}, "algo-2", "2", nullptr, nullptr, {}, "2 = 4 cpus / 2 processes",
     {"2/budget", "2/budget", "2/budget"}},
    {"2 hosts x 4, 5 processes: the worker runs one", {"algo-1", "algo-2"}, "algo-2", "4", "5", nullptr, {},
     "none: one process on this host keeps every core", {}},
    {"2 hosts x 4, 5 processes: the master runs four", {"algo-1", "algo-2"}, "algo-1", "4", "5", nullptr, {},
     "1 = 4 cpus / 4 processes", {"1/budget", "1/budget", "1/budget"}},
    {"the host's own value is the user's", {"algo-1", "algo-2"}, "algo-1", "2", nullptr, nullptr,
     {{"OMP_NUM_THREADS", "3"}}, "2 = 4 cpus / 2 processes", {"3/user", "2/budget", "2/budget"}},
    {"-x NAME=value is the user's", {"algo-1", "algo-2"}, "algo-1", "2", nullptr,
     "\"-x MKL_NUM_THREADS=5 -x OPENBLAS_NUM_THREADS\"", {{"OPENBLAS_NUM_THREADS", "8"}}, "2 = 4 cpus / 2 processes",
     {"2/budget", "8/user", "5/user"}},
  };
  for (const auto& c : cases) {
    hosts(c.hosts, c.current);
    hp("sagemaker_process_slots_per_host", c.slots);
    hp("sagemaker_num_processes", c.processes);
    hp("sagemaker_additional_mpi_options", c.mpi_options);
    PlanInputs in = inputs(c.inherited);
    const TrainPlan p = launcher::make_train_plan(in);
    const auto j = launcher::plan_to_json(p, in)["thread_budget"];
    EXPECT_EQ(j["why"], c.why) << c.name;
    Strings values;
    for (const char* name : env::k_thread_variables) {
      if (j["variables"].contains(name)) {
        values.push_back(j["variables"][name]["value"].get<std::string>() + "/" +
                         j["variables"][name]["origin"].get<std::string>());
      }
    }
    EXPECT_EQ(values, c.values) << c.name;
    // The script step (no MPI) gets no budget: one process keeps every core.
    EXPECT_EQ(p.script.env.get("OMP_NUM_THREADS") != nullptr, c.inherited.size() == 1 &&
                                                                  c.inherited[0].first == "OMP_NUM_THREADS")
      << c.name;
  }
}

} // namespace

namespace {

const Vars k_slurm_step = {{"SLURM_JOB_ID", "42"},
                           {"SLURM_JOB_NODELIST", "algo-[1-2]"},
                           {"SLURMD_NODENAME", "algo-1"},
                           {"SLURM_TASKS_PER_NODE", "2(x2)"}};

} // namespace

// Slurm is chosen when asked for, or when SLURM_JOB_ID is set and the tree has no
// resourceconfig.json; a file SageMaker wrote wins over the detection.
TEST_F(LauncherPlan, ClusterDetection)
{
  env::EnvMap environment;
  for (const auto& [k, v] : k_slurm_step) {
    environment.set(k, v);
  }
  const env::Paths paths = env::Paths::under(m_base.string());
  const auto choose = [&](const std::vector<const char*>& args, const env::EnvMap& e) {
    std::vector<const char*> argv = {"smlaunch", "plan"};
    argv.insert(argv.end(), args.begin(), args.end());
    const launcher::Options o = launcher::parse_command_line(static_cast<int>(argv.size()), argv.data(), e);
    return launcher::choose_cluster(o, e, paths, "/");
  };
  // resourceconfig.json exists: it wins unless --cluster slurm.
  EXPECT_EQ(choose({}, environment).name, "resourceconfig");
  EXPECT_EQ(choose({"--cluster", "slurm"}, environment).name, "slurm");
  env::EnvMap twin = environment;
  twin.set("SMLAUNCH_CLUSTER", "slurm");
  EXPECT_EQ(choose({}, twin).name, "slurm");
  EXPECT_NE(choose({}, twin).why.find("environment SMLAUNCH_CLUSTER"), std::string::npos);

  fs::remove(m_base / "input" / "config" / "resourceconfig.json");
  const auto detected = choose({}, environment);
  EXPECT_EQ(detected.name, "slurm");
  EXPECT_NE(detected.why.find("SLURM_JOB_ID is set"), std::string::npos);
  ASSERT_TRUE(detected.slurm.has_value());
  EXPECT_EQ(detected.slurm->hosts, (Strings{"algo-1", "algo-2"}));
  EXPECT_EQ(choose({"--cluster", "sagemaker"}, environment).name, "resourceconfig");
  env::EnvMap no_job = environment;
  no_job.erase("SLURM_JOB_ID");
  EXPECT_EQ(choose({}, no_job).name, "resourceconfig");
  env::EnvMap no_node = environment;
  no_node.erase("SLURMD_NODENAME");
  EXPECT_THROW(choose({}, no_node), env::ConfigError);

  // %n in --base-dir is the node's name; without SLURMD_NODENAME it is an error.
  const char* argv[] = {"smlaunch", "plan", "--base-dir", "/shared/job/%n/ml"};
  EXPECT_EQ(launcher::parse_command_line(4, argv, environment).base_dir, "/shared/job/algo-1/ml");
  EXPECT_EQ(launcher::parse_command_line(4, argv, environment).base_dir_pattern, "/shared/job/%n/ml");
  EXPECT_THROW(launcher::parse_command_line(4, argv, no_node), base::UsageError);
}

// The Slurm mapping feeds the same path as resourceconfig.json: every SM_* variable is the
// one SageMaker gives the same job; MPI starts through srun with Slurm's tasks per node.
TEST_F(LauncherPlan, SlurmMapsToTheSageMakerTree)
{
  hp("sagemaker_use_mpi", "true");
  // What SageMaker writes for two ml.c5.xlarge hosts, seen from algo-2.
  write(m_base / "input" / "config" / "resourceconfig.json",
        R"({"current_host": "algo-2", "current_instance_type": "ml.c5.xlarge", "current_group_name": )"
        R"("homogeneousCluster", "hosts": ["algo-1", "algo-2"], "instance_groups": [{"instance_group_name": )"
        R"("homogeneousCluster", "instance_type": "ml.c5.xlarge", "hosts": ["algo-1", "algo-2"]}], )"
        R"("network_interface_name": "eth0"})");
  const TrainPlan sagemaker = plan();

  // --cluster slurm: the resourceconfig.json left in the tree is not read.
  const auto slurm_inputs = [&](const Vars& step, const std::vector<const char*>& args) {
    PlanInputs in = inputs(step);
    std::vector<const char*> argv = {"smlaunch", "plan",          "--base-dir", m_base.c_str(), "--instance-type",
                                     "ml.c5.xlarge", "--cluster", "slurm"};
    argv.insert(argv.end(), args.begin(), args.end());
    in.options = launcher::parse_command_line(static_cast<int>(argv.size()), argv.data(), in.inherited);
    in.cluster = launcher::choose_cluster(in.options, in.inherited, in.paths, "/");
    const env::Value rc = env::slurm_resource_config(*in.cluster.slurm, "ml.c5.xlarge", "eth0");
    in.config = env::read_config_files(in.paths, &rc);
    in.smlaunch_exe = "/usr/bin/smlaunch";
    return in;
  };
  Vars on_algo_2 = k_slurm_step;
  on_algo_2[2].second = "algo-2";
  PlanInputs in = slurm_inputs(on_algo_2, {});
  const TrainPlan slurm = launcher::make_train_plan(in);
  for (const auto& [name, value] : sagemaker.added.entries()) {
    EXPECT_EQ(get(slurm.added, name), value) << name;
  }
  EXPECT_EQ(slurm.added.size(), sagemaker.added.size());
  EXPECT_EQ(slurm.role, launcher::Role::worker);
  const auto worker_json = launcher::plan_to_json(slurm, in);
  EXPECT_EQ(worker_json["cluster"]["source"], "slurm");
  EXPECT_EQ(worker_json["steps"][0]["name"], "none");

  // The master (the batch host): one setup step per node, then mpirun through srun.
  PlanInputs master_in = slurm_inputs(k_slurm_step, {"--grace-period", "30"});
  const TrainPlan master = launcher::make_train_plan(master_in);
  EXPECT_EQ(master.role, launcher::Role::master);
  EXPECT_EQ(master.mpi.processes_per_host, 2); // SLURM_TASKS_PER_NODE=2(x2)
  ASSERT_TRUE(master.slurm_setup.has_value());
  EXPECT_EQ(master.slurm_setup->argv,
            (Strings{"srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--overlap", "--kill-on-bad-exit=0",
                     "/usr/bin/smlaunch", "train", "--stage-only", "--cluster", "slurm", "--base-dir", m_base.string(),
                     "--grace-period", "30", "--instance-type", "ml.c5.xlarge"}));
  ASSERT_TRUE(master.mpirun.has_value());
  const Strings& argv = master.mpirun->argv;
  EXPECT_EQ(argv[2], "algo-1:2,algo-2:2");
  const Strings plm = {"-mca", "plm", "slurm"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), plm.begin(), plm.end()), argv.end());
  for (const auto& word : argv) {
    EXPECT_EQ(word.find("plm_rsh"), std::string::npos) << word;
  }
  const Strings rank = {"rank", "--cluster", "slurm", "--base-dir", m_base.string(), "--instance-type", "ml.c5.xlarge"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), rank.begin(), rank.end()), argv.end());
  const auto master_json = launcher::plan_to_json(master, master_in);
  ASSERT_EQ(master_json["steps"].size(), 2u);
  EXPECT_EQ(master_json["steps"][0]["name"], "slurm_setup");
  EXPECT_EQ(master_json["steps"][1]["name"], "mpirun");
  EXPECT_EQ(master_json["cluster"]["slurm"]["tasks_per_node"], 2);
  EXPECT_EQ(master_json["settings"]["instance-type"]["origin"], "command line");
  EXPECT_NE(master_json["cluster"]["why"].get<std::string>().find("--cluster slurm (command line)"), std::string::npos);

  // The hyperparameter wins over Slurm's tasks; --ntasks-per-node over the distribution.
  hp("sagemaker_process_slots_per_host", "3");
  EXPECT_EQ(launcher::make_train_plan(slurm_inputs(k_slurm_step, {})).mpi.processes_per_host, 3);
  hp("sagemaker_process_slots_per_host", nullptr);
  Vars ntasks = k_slurm_step;
  ntasks.emplace_back("SLURM_NTASKS_PER_NODE", "4");
  EXPECT_EQ(launcher::make_train_plan(slurm_inputs(ntasks, {})).mpi.processes_per_host, 4);
  Vars no_tasks = {k_slurm_step[0], k_slurm_step[1], k_slurm_step[2]};
  EXPECT_EQ(launcher::make_train_plan(slurm_inputs(no_tasks, {})).mpi.processes_per_host, 1);
}
