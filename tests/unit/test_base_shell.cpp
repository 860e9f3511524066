// shell_quote (one rule for every caller), shell_split and join_command.
#include "base/shell.hpp"

#include <cstdio>
#include <gtest/gtest.h>
#include <stdexcept>
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
    EXPECT_EQ(base::shell_quote(c.word), c.expected) << "[" << c.word << "]";
  }
}

// What /bin/sh makes of a quoted word is the word itself.
TEST(BaseShellQuote, RoundTripsThroughTheShell)
{
  for (const std::string word : {"plain", "two words", "it's", "$(false)", "a\"b", "'", "\\", "tab\there", ""}) {
    const std::string command = "printf %s " + base::shell_quote(word);
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
  EXPECT_EQ(base::join_command({}), "");
  EXPECT_EQ(base::join_command({"python3", "train.py", "--lr", "0.1"}), "python3 train.py --lr 0.1");
  EXPECT_EQ(base::join_command({"a b", "c"}), "a b c");
}

// shell_split: expected splits come from Python's shlex.split (POSIX mode), and from the
// real /bin/sh where shlex and the shell disagree (see the comments on each table).

struct SplitCase
{
  const char* text;
  std::vector<std::string> words;
};

// python3 -c 'import shlex; print(shlex.split(T))'
const SplitCase k_split_cases[] = {
    {"", {}},
    {"   ", {}},
    {"a", {"a"}},
    {"a b  c", {"a", "b", "c"}},
    {" lead trail ", {"lead", "trail"}},
    {"\ta\tb\n c", {"a", "b", "c"}},
    {"-x A=B -x C='d e'", {"-x", "A=B", "-x", "C=d e"}},
    {"'single quoted'", {"single quoted"}},
    {"\"double quoted\"", {"double quoted"}},
    {"a'b'c", {"abc"}},
    {"a\"b\"c", {"abc"}},
    {"''", {""}},
    {"\"\"", {""}},
    {"a '' b", {"a", "", "b"}},
    {"x \"\" y", {"x", "", "y"}},
    {"'a\"b'", {"a\"b"}},
    {"\"a'b\"", {"a'b"}},
    {"back\\ slash", {"back slash"}},
    {"\\\"q\\\"", {"\"q\""}},
    {"\\'", {"'"}},
    {"\"a\\\"b\"", {"a\"b"}},
    {"\"a\\\\b\"", {"a\\b"}},
    {"\"keep\\x\"", {"keep\\x"}},
    {"'no\\escape'", {"no\\escape"}},
    {"--mca btl_tcp_if_include eth0 -x NCCL_DEBUG=INFO",
     {"--mca", "btl_tcp_if_include", "eth0", "-x", "NCCL_DEBUG=INFO"}},
    {"-x \"LD_PRELOAD=/a b/c.so\"", {"-x", "LD_PRELOAD=/a b/c.so"}},
    {"a\\\\b", {"a\\b"}},
    {"\\a\\b", {"ab"}},
    {"\"$HOME\"", {"$HOME"}},
    {"'$HOME'", {"$HOME"}},
    {"\"a b\"'c d'e", {"a bc de"}},
    {"--opt='x y' -v", {"--opt=x y", "-v"}},
};

// Inside double quotes a backslash also escapes $ and ` in the shell, which shlex does not
// do (shlex.split('"\\$"') == ['\\$']); the header promises the shell's behaviour, so these
// come from the real shell: sh -c 'eval "set -- $1"; printf "%s\0" "$@"' sh T
const SplitCase k_split_shell_cases[] = {
    {"\"\\$\"", {"$"}},
    {"\"\\`\"", {"`"}},
    {"\"a\\$b\" c", {"a$b", "c"}},
};

TEST(ShellSplit, MatchesShlex)
{
  for (const auto& c : k_split_cases) {
    EXPECT_EQ(base::shell_split(c.text), c.words) << "text [" << c.text << "]";
  }
}

TEST(ShellSplit, MatchesShellWhereShlexDiffers)
{
  for (const auto& c : k_split_shell_cases) {
    EXPECT_EQ(base::shell_split(c.text), c.words) << "text [" << c.text << "]";
  }
}

// shlex.split(T) raises ValueError ("No closing quotation" / "No escaped character")
const char* const k_split_bad_cases[] = {
    "'abc",     // No closing quotation
    "\"abc",    // No closing quotation
    "abc\\",    // No escaped character
    "a 'b\"c",  // No closing quotation
    "\"a'b",    // No closing quotation
    "x 'y' 'z", // No closing quotation
    "\"\\\"",   // No closing quotation
};

TEST(ShellSplit, UnbalancedQuotesThrow)
{
  for (const char* text : k_split_bad_cases) {
    EXPECT_THROW((void)base::shell_split(text), std::invalid_argument) << "text [" << text << "]";
  }
}

} // namespace
