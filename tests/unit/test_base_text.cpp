// split_lines: the one line splitter (failure reports, pyproject.toml detection).
#include "base/text.hpp"

#include <gtest/gtest.h>

namespace {

using Lines = std::vector<std::string>;

TEST(BaseSplitLines, CutsAtNewlinesAndDropsCarriageReturns)
{
  EXPECT_EQ(base::split_lines(""), Lines{});
  EXPECT_EQ(base::split_lines("\n"), Lines{""});
  EXPECT_EQ(base::split_lines("a"), Lines{"a"});
  EXPECT_EQ(base::split_lines("a\nb\n"), (Lines{"a", "b"}));
  EXPECT_EQ(base::split_lines("a\r\n\nb"), (Lines{"a", "", "b"}));
  EXPECT_EQ(base::split_lines("a\rb\n"), Lines{"a\rb"}); // a lone \r inside a line stays
}

} // namespace
