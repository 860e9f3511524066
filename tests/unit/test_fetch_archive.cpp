#include "fetch/archive.hpp"

#include <gtest/gtest.h>

namespace {

using fetch::MemberType;

TEST(LauncherArchive, MemberChecks)
{
  struct Case
  {
    const char* path;
    fetch::MemberType type;
    const char* target;
    bool safe;
  };
  const Case cases[] = {
    {"train.py", fetch::MemberType::file, "", true},
    {"a/b/c.txt", fetch::MemberType::file, "", true},
    {"./a/./b", fetch::MemberType::file, "", true},
    {"", fetch::MemberType::file, "", false},
    {"/etc/passwd", fetch::MemberType::file, "", false},
    {"../x", fetch::MemberType::file, "", false},
    {"a/../../x", fetch::MemberType::file, "", false},
    {"a/..", fetch::MemberType::directory, "", false},
    {"dev", fetch::MemberType::other, "", false},
    {"lib/link", fetch::MemberType::symlink, "../train.py", true},
    {"link", fetch::MemberType::symlink, "lib/x", true},
    {"link", fetch::MemberType::symlink, "/etc", false},
    {"link", fetch::MemberType::symlink, "..", false},
    {"d/link", fetch::MemberType::symlink, "../..", false},
    // libarchive writes "a/." as "a": the link sits at the top, so ".." leaves (found by fuzz_archive_paths).
    {"a/.", fetch::MemberType::symlink, "..", false},
    {"a/b/", fetch::MemberType::symlink, "../..", false},
    {"requirements.txt/.", fetch::MemberType::symlink, "../secret", false},
    {"a/b/", fetch::MemberType::symlink, "..", true},
    {".", fetch::MemberType::symlink, "x", false},
    {"hl", fetch::MemberType::hardlink, "train.py", true},
    {"hl", fetch::MemberType::hardlink, "/etc/passwd", false},
    {"hl", fetch::MemberType::hardlink, "../x", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(!fetch::unsafe_member_reason(c.path, c.type, c.target).has_value(), c.safe)
      << c.path << " -> " << c.target;
  }
}

} // namespace
