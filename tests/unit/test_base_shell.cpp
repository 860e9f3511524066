// shell_quote (one rule for every caller) and join_command.
#include "base/shell.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

struct QuoteCase
{
  std::string word;
  std::string expected;
};

TEST(BaseShellQuote, SafeWordsStayBareOthersAreSingleQuoted)
{
  const std::vector<QuoteCase> cases = {
    {"/usr/bin/smlaunch", "/usr/bin/smlaunch"},
    {"--exit-code", "--exit-code"},
    {"a=b,c:d@e+f", "a=b,c:d@e+f"},
    {"", "''"},
    {"two words", "'two words'"},
    {"it's", "'it'\\''s'"},
    {"$HOME", "'$HOME'"},
    {"a;b", "'a;b'"},
    {"line\nbreak", "'line\nbreak'"},
    {"*", "'*'"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(launcher::shell_quote(c.word), c.expected) << "[" << c.word << "]";
  }
}

// What /bin/sh makes of a quoted word is the word itself.
TEST(BaseShellQuote, RoundTripsThroughTheShell)
{
  for (const std::string word : {"plain", "two words", "it's", "$(false)", "a\"b", "'", "\\", "tab\there", ""}) {
    const std::string command = "printf %s " + launcher::shell_quote(word);
    FILE* pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string out;
    char buffer[256];
    std::size_t n = 0;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) {
      out.append(buffer, n);
    }
    EXPECT_EQ(pclose(pipe), 0);
    EXPECT_EQ(out, word) << "[" << word << "]";
  }
}

TEST(BaseShellJoin, SingleSpacesNoQuoting)
{
  EXPECT_EQ(launcher::join_command({}), "");
  EXPECT_EQ(launcher::join_command({"python3", "train.py", "--lr", "0.1"}), "python3 train.py --lr 0.1");
  EXPECT_EQ(launcher::join_command({"a b", "c"}), "a b c");
}

} // namespace
