#include "fetch/archive.hpp"

#include <gtest/gtest.h>

namespace {

using launcher::MemberType;

TEST(LauncherArchive, MemberChecks)
{
  struct Case
  {
    const char* path;
    MemberType type;
    const char* target;
    bool safe;
  };
  const Case cases[] = {
    {"train.py", MemberType::file, "", true},
    {"a/b/c.txt", MemberType::file, "", true},
    {"./a/./b", MemberType::file, "", true},
    {"", MemberType::file, "", false},
    {"/etc/passwd", MemberType::file, "", false},
    {"../x", MemberType::file, "", false},
    {"a/../../x", MemberType::file, "", false},
    {"a/..", MemberType::directory, "", false},
    {"dev", MemberType::other, "", false},
    {"lib/link", MemberType::symlink, "../train.py", true},
    {"link", MemberType::symlink, "lib/x", true},
    {"link", MemberType::symlink, "/etc", false},
    {"link", MemberType::symlink, "..", false},
    {"d/link", MemberType::symlink, "../..", false},
    // libarchive writes "a/." as "a": the link sits at the top, so ".." leaves (found by fuzz_archive_paths).
    {"a/.", MemberType::symlink, "..", false},
    {"a/b/", MemberType::symlink, "../..", false},
    {"requirements.txt/.", MemberType::symlink, "../secret", false},
    {"a/b/", MemberType::symlink, "..", true},
    {".", MemberType::symlink, "x", false},
    {"hl", MemberType::hardlink, "train.py", true},
    {"hl", MemberType::hardlink, "/etc/passwd", false},
    {"hl", MemberType::hardlink, "../x", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(!launcher::unsafe_member_reason(c.path, c.type, c.target).has_value(), c.safe)
      << c.path << " -> " << c.target;
  }
}

} // namespace
