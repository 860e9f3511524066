#include "base/errors.hpp"
#include "launcher/serve_command.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <optional>
#include <utility>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using launcher::make_serve_plan;
using launcher::ServeFacts;
using launcher::ServeOptions;

class ServePlanTest : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    char pattern[] = "/tmp/smlaunch-serve-plan-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    m_root = pattern;
    fs::create_directories(m_root + "/src");
    fs::create_directories(m_root + "/modeldir");
    std::ofstream(m_root + "/model.tar.gz") << "not really";
    std::ofstream(m_root + "/model.zip") << "zip";
    m_facts.cwd = m_root;
    m_facts.python = "/usr/bin/python3";
    m_facts.python_share = "/opt/smlaunch/share/smlaunch/python";
    m_facts.cpus = 3;
    m_options.base_dir = "base";
    m_options.program = "pkg/serve.py";
    m_options.submit_directory = "src";
  }
  void TearDown() override { fs::remove_all(m_root); }

  std::string m_root;
  ServeFacts m_facts;
  ServeOptions m_options;
  env::EnvMap m_env;
};

TEST_F(ServePlanTest, WorkersModuleAndEnvironment)
{
  m_env.set("PYTHONPATH", "/extra");
  m_env.set("KEEP", "me");
  const auto plan = make_serve_plan(m_options, m_env, m_facts);
  EXPECT_EQ(plan.base_dir, m_root + "/base");
  EXPECT_EQ(plan.code_dir, m_root + "/base/code");
  EXPECT_EQ(plan.model_dir, m_root + "/base/model");
  EXPECT_EQ(plan.module, "pkg.serve");
  EXPECT_EQ(plan.workers, 3); // one per CPU by default
  EXPECT_EQ(plan.source.kind, fetch::SourceKind::directory);
  EXPECT_EQ(plan.staging, fetch::StagingAction::copy_directory);
  EXPECT_EQ(plan.worker_argv, (std::vector<std::string>{"/usr/bin/python3", "-m", "smlaunch_serving"}));
  EXPECT_EQ(*plan.worker_env.get("PYTHONPATH"), "/opt/smlaunch/share/smlaunch/python:" + m_root + "/base/code:/extra");
  EXPECT_EQ(*plan.worker_env.get("PYTHONUNBUFFERED"), "1");
  EXPECT_EQ(*plan.worker_env.get("SMLAUNCH_SERVE_MODULE"), "pkg.serve");
  EXPECT_EQ(*plan.worker_env.get("SMLAUNCH_SERVE_MODEL_DIR"), m_root + "/base/model");
  EXPECT_EQ(*plan.worker_env.get("SMLAUNCH_SERVE_DEFAULT_ACCEPT"), "application/json");
  EXPECT_EQ(*plan.worker_env.get("KEEP"), "me");

  m_options.workers = 7;
  m_env.set("PYTHONUNBUFFERED", "0");
  const auto again = make_serve_plan(m_options, m_env, m_facts);
  EXPECT_EQ(again.workers, 7);
  EXPECT_EQ(*again.worker_env.get("PYTHONUNBUFFERED"), "0");
}

// Several workers share the CPUs: OMP/OPENBLAS/MKL_NUM_THREADS = cpus / workers, unless
// the user set them; one worker keeps every core.
TEST_F(ServePlanTest, ThreadBudget)
{
  struct Case
  {
    const char* name;
    int cpus;
    std::optional<int> workers;
    std::vector<std::pair<std::string, std::string>> user;
    std::vector<std::string> expected; // OMP, OPENBLAS, MKL in the workers' environment
  };
  const Case cases[] = {
    {"one per cpu by default", 8, std::nullopt, {}, {"1", "1", "1"}},
    {"2 workers on 8 cpus", 8, 2, {}, {"4", "4", "4"}},
    {"3 workers on 8 cpus", 8, 3, {}, {"2", "2", "2"}},
    {"more workers than cpus", 2, 5, {}, {"1", "1", "1"}},
    {"one worker: nothing set", 8, 1, {}, {"<unset>", "<unset>", "<unset>"}},
    {"the user's value kept", 8, 2, {{"OPENBLAS_NUM_THREADS", "8"}}, {"4", "8", "4"}},
    {"one worker: the user's value kept", 8, 1, {{"MKL_NUM_THREADS", "2"}}, {"<unset>", "<unset>", "2"}},
  };
  for (const auto& c : cases) {
    m_facts.cpus = c.cpus;
    m_options.workers = c.workers;
    env::EnvMap user;
    for (const auto& [k, v] : c.user) {
      user.set(k, v);
    }
    const auto plan = make_serve_plan(m_options, user, m_facts);
    std::vector<std::string> got;
    for (const char* name : env::k_thread_variables) {
      const std::string* v = plan.worker_env.get(name);
      got.push_back(v != nullptr ? *v : "<unset>");
    }
    EXPECT_EQ(got, c.expected) << c.name;
  }
}

TEST_F(ServePlanTest, ModelData)
{
  m_options.model_data = "model.tar.gz";
  auto plan = make_serve_plan(m_options, m_env, m_facts);
  EXPECT_EQ(plan.model_archive, m_root + "/model.tar.gz");
  EXPECT_EQ(plan.model_dir, m_root + "/base/model");

  m_options.model_data = "file://" + m_root + "/modeldir";
  plan = make_serve_plan(m_options, m_env, m_facts);
  EXPECT_EQ(plan.model_archive, "");
  EXPECT_EQ(plan.model_dir, m_root + "/modeldir"); // served in place

  m_options.model_data = "s3://bucket/job/output/model.tar.gz";
  plan = make_serve_plan(m_options, m_env, m_facts);
  EXPECT_TRUE(plan.model_from_s3);
  EXPECT_EQ(plan.model_archive, "s3://bucket/job/output/model.tar.gz");

  for (const std::string bad : {"missing.tar.gz", "model.zip"}) {
    m_options.model_data = bad;
    try {
      make_serve_plan(m_options, m_env, m_facts);
      ADD_FAILURE() << bad << " accepted";
    } catch (const base::StagingError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST_F(ServePlanTest, DefaultCodeIsTheCodeDirectory)
{
  m_options.submit_directory.clear();
  const auto plan = make_serve_plan(m_options, m_env, m_facts);
  EXPECT_EQ(plan.source.kind, fetch::SourceKind::code_dir);
  EXPECT_EQ(plan.staging, fetch::StagingAction::none);
}

} // namespace
