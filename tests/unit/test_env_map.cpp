// EnvMap: an ordered dict of variables with its own open-addressing index.
#include "env/env_map.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

std::string
name_of(int i)
{
  return "SM_HP_VARIABLE_WITH_A_LONG_NAME_" + std::to_string(i);
}

} // namespace

TEST(EnvMap, KeepsOrderAndReplacesInPlace)
{
  env::EnvMap map;
  map.set("B", "1");
  map.set("A", "2");
  map.set("B", "3");
  ASSERT_EQ(map.size(), 2U);
  EXPECT_EQ(map.entries()[0], (env::EnvMap::Entry{"B", "3"}));
  EXPECT_EQ(map.entries()[1], (env::EnvMap::Entry{"A", "2"}));
  EXPECT_EQ(map.to_envp(), (std::vector<std::string>{"B=3", "A=2"}));
}

TEST(EnvMap, AnEmptyMapFindsNothing)
{
  const env::EnvMap map;
  EXPECT_EQ(map.get("PATH"), nullptr);
  EXPECT_FALSE(map.contains(""));
}

TEST(EnvMap, FindsEveryEntryAcrossGrowthOfItsIndex)
{
  // Past several doublings of the index, with short names (kept inside the string) and
  // long ones, so that moving the entries cannot lose any of them.
  env::EnvMap map;
  for (int i = 0; i < 1000; ++i) {
    map.set(name_of(i), std::to_string(i));
    map.set(std::to_string(i), "short");
  }
  ASSERT_EQ(map.size(), 2000U);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_NE(map.get(name_of(i)), nullptr) << i;
    EXPECT_EQ(*map.get(name_of(i)), std::to_string(i));
    EXPECT_EQ(*map.get(std::to_string(i)), "short");
  }
  EXPECT_EQ(map.get(name_of(1000)), nullptr);
  EXPECT_EQ(map.entries()[2].first, name_of(1));
}

TEST(EnvMap, EraseKeepsTheOthersFindable)
{
  env::EnvMap map;
  for (int i = 0; i < 40; ++i) {
    map.set(name_of(i), std::to_string(i));
  }
  map.erase(name_of(7));
  map.erase("NOT_THERE");
  EXPECT_EQ(map.size(), 39U);
  EXPECT_EQ(map.get(name_of(7)), nullptr);
  EXPECT_EQ(*map.get(name_of(8)), "8");
  EXPECT_EQ(map.entries()[7].first, name_of(8));
  map.set(name_of(7), "back");
  EXPECT_EQ(map.entries().back().first, name_of(7));
  EXPECT_EQ(*map.get(name_of(7)), "back");
}

TEST(EnvMap, UpdateSetsEveryEntryInOrder)
{
  env::EnvMap map;
  map.set("KEEP", "k");
  map.set("SM_HOSTS", "old");
  env::EnvMap more;
  more.set("SM_HOSTS", "[\"algo-1\"]");
  more.set("SM_NUM_GPUS", "0");
  map.update(std::move(more));
  EXPECT_EQ(map.to_envp(), (std::vector<std::string>{"KEEP=k", "SM_HOSTS=[\"algo-1\"]", "SM_NUM_GPUS=0"}));
}

TEST(EnvMap, FromEnvironSkipsMalformedEntriesAndKeepsTheLastDuplicate)
{
  std::vector<std::string> strings = {"A=1", "NOEQUALS", "=empty-name", "B=x=y", "A=2", "C="};
  std::vector<char*> envp;
  for (auto& s : strings) {
    envp.push_back(s.data());
  }
  envp.push_back(nullptr);
  const env::EnvMap map = env::EnvMap::from_environ(envp.data());
  EXPECT_EQ(map.to_envp(), (std::vector<std::string>{"A=2", "B=x=y", "C="}));
}
