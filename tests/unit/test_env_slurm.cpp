// env/slurm: Slurm's hostlist grammar (expected lists taken from `scontrol show hostnames`
// of slurm-wlm 22.05), SLURM_TASKS_PER_NODE, %n patterns and the allocation read from a
// step's environment.
#include "env/config_error.hpp"
#include "env/py_format.hpp"
#include "env/slurm.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

using Names = std::vector<std::string>;

TEST(SlurmHostlist, ExpandsAsScontrolDoes)
{
  struct Case
  {
    const char* text;
    Names hosts;
  };
  const Case cases[] = {
      {"algo-1", {"algo-1"}},
      {"algo-[1-3,7]", {"algo-1", "algo-2", "algo-3", "algo-7"}},
      {"n[01-10]", {"n01", "n02", "n03", "n04", "n05", "n06", "n07", "n08", "n09", "n10"}},
      {"n[8-10]", {"n8", "n9", "n10"}},
      {"n[001-3]", {"n001", "n002", "n003"}},
      {"n[1-010]", {"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10"}},
      {"n[09-11]", {"n09", "n10", "n11"}},
      {"a[1-2]b[3-4]", {"a1b3", "a1b4", "a2b3", "a2b4"}},
      {"n[1-2]x[01-2]", {"n1x01", "n1x02", "n2x01", "n2x02"}},
      {"x,y[1-2],z", {"x", "y1", "y2", "z"}},
      {"n1,,n2", {"n1", "n2"}},
      {" n1 , n2", {"n1", "n2"}},
      {"n1 n2", {"n1", "n2"}},
      {"n[1-2],n[1-2]", {"n1", "n2", "n1", "n2"}},
      {"n[5]", {"n5"}},
      {"[1-2]", {"1", "2"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(env::expand_hostlist(c.text, "SLURM_JOB_NODELIST"), c.hosts) << c.text;
  }
}

TEST(SlurmHostlist, RefusesWhatScontrolRefusesNamingTheVariable)
{
  for (const char* text : {"a[1-2]-b", "n[3-1]", "n[a-b]", "n[]", "n[1-2]]", "n[1-2", "n]1[", "n[1,2-3]s", "", ",",
                           "n[[1]]", "n[0-99999999]"}) {
    try {
      env::expand_hostlist(text, "SLURM_JOB_NODELIST");
      ADD_FAILURE() << "accepted " << text;
    } catch (const env::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("SLURM_JOB_NODELIST"), std::string::npos) << e.what();
    }
  }
}

TEST(SlurmTasksPerNode, ParsesCountsAndRepeats)
{
  EXPECT_EQ(env::parse_tasks_per_node("2(x2)", "V"), (std::vector<int>{2, 2}));
  EXPECT_EQ(env::parse_tasks_per_node("4", "V"), (std::vector<int>{4}));
  EXPECT_EQ(env::parse_tasks_per_node("2(x3),1", "V"), (std::vector<int>{2, 2, 2, 1}));
  for (const char* bad : {"", "x", "2(x)", "2(x2", "(x2)", "2(x0)", "-1"}) {
    EXPECT_THROW(env::parse_tasks_per_node(bad, "SLURM_TASKS_PER_NODE"), env::ConfigError) << bad;
  }
}

TEST(SlurmNodePattern, ExpandsPercentN)
{
  EXPECT_EQ(env::expand_node_pattern("/shared/job/%n", "algo-2"), "/shared/job/algo-2");
  EXPECT_EQ(env::expand_node_pattern("/a/%n/b/%n", "x"), "/a/x/b/x");
  EXPECT_EQ(env::expand_node_pattern("/a/100%%/%j", "x"), "/a/100%/%j");
  EXPECT_EQ(env::expand_node_pattern("/opt/ml", "x"), "/opt/ml");
}

env::EnvMap
step_environment(std::vector<std::pair<std::string, std::string>> vars)
{
  env::EnvMap m;
  for (auto& [k, v] : vars) {
    m.set(k, v);
  }
  return m;
}

TEST(SlurmCluster, ReadsTheAllocation)
{
  const auto c = env::read_slurm_cluster(step_environment(
      {{"SLURM_JOB_NODELIST", "algo-[1-2]"}, {"SLURMD_NODENAME", "algo-2"}, {"SLURM_TASKS_PER_NODE", "2(x2)"}}));
  EXPECT_EQ(c.hosts, (Names{"algo-1", "algo-2"}));
  EXPECT_EQ(c.current_host, "algo-2");
  EXPECT_EQ(c.tasks_per_node, 2);
  EXPECT_EQ(c.tasks_source, "SLURM_TASKS_PER_NODE");
  EXPECT_FALSE(c.gpus_on_node.has_value());

  // --ntasks-per-node wins over the computed distribution; GPUs from the node's gres.
  const auto d = env::read_slurm_cluster(step_environment({{"SLURM_JOB_NODELIST", "algo-[1-2]"},
                                                           {"SLURMD_NODENAME", "algo-1"},
                                                           {"SLURM_TASKS_PER_NODE", "3(x2)"},
                                                           {"SLURM_NTASKS_PER_NODE", "4"},
                                                           {"SLURM_GPUS_ON_NODE", "8"}}));
  EXPECT_EQ(d.tasks_per_node, 4);
  EXPECT_EQ(d.tasks_source, "SLURM_NTASKS_PER_NODE");
  EXPECT_EQ(d.gpus_on_node, 8);
}

TEST(SlurmCluster, NamesTheVariableThatIsWrong)
{
  const auto message = [](std::vector<std::pair<std::string, std::string>> vars) {
    try {
      env::read_slurm_cluster(step_environment(std::move(vars)));
    } catch (const env::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message({{"SLURMD_NODENAME", "a"}}).find("SLURM_JOB_NODELIST"), std::string::npos);
  EXPECT_NE(message({{"SLURM_JOB_NODELIST", "a"}}).find("SLURMD_NODENAME"), std::string::npos);
  EXPECT_NE(message({{"SLURM_JOB_NODELIST", "a,b"}, {"SLURMD_NODENAME", "c"}}).find("not a host"), std::string::npos);
  EXPECT_NE(message({{"SLURM_JOB_NODELIST", "a,b"}, {"SLURMD_NODENAME", "a"}, {"SLURM_TASKS_PER_NODE", "2,1"}})
                .find("different task counts"),
            std::string::npos);
  // A host twice is refused where the list came from (no resourceconfig.json exists yet).
  const std::string twice = message({{"SLURM_JOB_NODELIST", "algo-1,algo-1"}, {"SLURMD_NODENAME", "algo-1"}});
  EXPECT_NE(twice.find("SLURM_JOB_NODELIST"), std::string::npos) << twice;
  EXPECT_NE(twice.find("listed twice"), std::string::npos) << twice;
  EXPECT_EQ(twice.find("resourceconfig"), std::string::npos) << twice;
}

TEST(SlurmCluster, ResourceConfigIsSageMakers)
{
  const auto c =
      env::read_slurm_cluster(step_environment({{"SLURM_JOB_NODELIST", "algo-[1-2]"}, {"SLURMD_NODENAME", "algo-2"}}));
  EXPECT_EQ(env::py_json_dumps_default(env::slurm_resource_config(c, "ml.p4d.24xlarge", "eth0")),
            R"({"current_host": "algo-2", "current_instance_type": "ml.p4d.24xlarge", "current_group_name": )"
            R"("homogeneousCluster", "hosts": ["algo-1", "algo-2"], "instance_groups": [{"instance_group_name": )"
            R"("homogeneousCluster", "instance_type": "ml.p4d.24xlarge", "hosts": ["algo-1", "algo-2"]}], )"
            R"("network_interface_name": "eth0"})");
}

} // namespace
