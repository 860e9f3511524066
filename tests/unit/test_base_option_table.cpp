// Reading a command line against an option table (base/option_table.cpp), as
// Boost.Program_options read it before.
#include "base/errors.hpp"
#include "base/option_table.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

using base::FlagSpec;
using base::OptionSpec;
using base::OptionWords;

namespace {

constexpr base::OptionSpec k_options[] = {
    {"sshd", "SMLAUNCH_SSHD", nullptr, "/usr/sbin/sshd", "PATH", ""},
    {"sshd-port", "SMLAUNCH_SSHD_PORT", nullptr, "22", "PORT", ""},
    {"base-dir", "SMLAUNCH_BASE_DIR", nullptr, "/opt/ml", "DIR", ""},
};
constexpr base::FlagSpec k_flags[] = {{"help", 'h'}, {"verbose", 'v'}, {"quiet", 'q'}, {"stage-only", '\0'}};

base::OptionWords
read(std::vector<std::string> args)
{
  args.insert(args.begin(), "smlaunch");
  std::vector<const char*> argv;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  return base::read_option_words(static_cast<int>(argv.size()), argv.data(), k_options, k_flags);
}

std::string
error_of(const std::vector<std::string>& args)
{
  try {
    read(args);
  } catch (const base::UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BaseOptionTable, ValuesFlagsAndWords)
{
  const base::OptionWords w = read({"train", "--base-dir", "/b", "--sshd=/s", "-vq", "--stage-only", "extra"});
  EXPECT_EQ(w.values.at("base-dir"), "/b");
  EXPECT_EQ(w.values.at("sshd"), "/s");
  EXPECT_EQ(w.values.count("sshd-port"), 0U);
  EXPECT_EQ(w.flags, (std::set<std::string>{"verbose", "quiet", "stage-only"}));
  EXPECT_EQ(w.words, (std::vector<std::string>{"train", "extra"}));
}

TEST(BaseOptionTable, ValuesThatLookLikeOptions)
{
  EXPECT_EQ(read({"--base-dir=-x"}).values.at("base-dir"), "-x");
  EXPECT_EQ(read({"--base-dir", "-"}).values.at("base-dir"), "-");
  EXPECT_EQ(read({"--base-dir="}).values.at("base-dir"), "");
  EXPECT_EQ(read({"--", "-v", "--base-dir"}).words, (std::vector<std::string>{"-v", "--base-dir"}));
  EXPECT_TRUE(read({"--", "-v"}).flags.empty());
}

TEST(BaseOptionTable, UniquePrefixes)
{
  EXPECT_EQ(read({"--base", "/b"}).values.at("base-dir"), "/b");
  EXPECT_EQ(read({"--sshd", "/s"}).values.at("sshd"), "/s"); // exact beats prefix
  EXPECT_EQ(read({"--sshd-p", "2222"}).values.at("sshd-port"), "2222");
  EXPECT_TRUE(read({"--verb"}).flags.contains("verbose"));
}

TEST(BaseOptionTable, ErrorsNameTheOption)
{
  EXPECT_EQ(error_of({"--bogus"}), "unrecognised option '--bogus'");
  EXPECT_EQ(error_of({"-x"}), "unrecognised option '-x'");
  EXPECT_EQ(error_of({"-vx"}), "unrecognised option '-x'");
  EXPECT_EQ(error_of({"--base-dir"}), "the required argument for option '--base-dir' is missing");
  EXPECT_EQ(error_of({"--base-dir", "-1"}), "the required argument for option '--base-dir' is missing");
  EXPECT_EQ(error_of({"--base-dir", "/a", "--base-dir=/b"}), "option '--base-dir' cannot be specified more than once");
  EXPECT_EQ(error_of({"-v", "--verbose"}), "option '--verbose' cannot be specified more than once");
  EXPECT_EQ(error_of({"--verbose=1"}), "option '--verbose' does not take any arguments");
  EXPECT_EQ(error_of({"--ss", "x"}), "option '--ss' is ambiguous and matches '--sshd', '--sshd-port'");
  EXPECT_EQ(error_of({"--=x"}), "unrecognised option '--'");
}

} // namespace
