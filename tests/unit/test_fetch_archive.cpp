#include "fetch/archive.hpp"

#include <gtest/gtest.h>

#include <algorithm>

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
    {".", fetch::MemberType::file, "", false},
    {"./", fetch::MemberType::file, "", false},
    {"a/..x", fetch::MemberType::file, "", true},
    {".", fetch::MemberType::directory, "", true},
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

// Extraction of real archives, written here with libarchive member by member.
#include "base/errors.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

struct Member
{
  std::string name;
  int type; // AE_IFREG, AE_IFDIR, AE_IFLNK; hard links: AE_IFREG with `hardlink`
  std::string target;
  mode_t mode = 0644;
  bool hardlink = false;
};

class ArchiveExtract : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    m_base = fs::temp_directory_path() / ("smlaunch-arc-" + std::to_string(getpid()));
    fs::remove_all(m_base);
    fs::create_directories(m_base / "dest");
    fs::create_directories(m_base / "outside");
    std::ofstream(m_base / "outside" / "victim.sh") << "#!/bin/sh\n";
  }
  void
  TearDown() override
  {
    fs::permissions(m_base / "dest", fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(m_base);
  }

  std::string
  write_tar(const std::vector<Member>& members)
  {
    const std::string path = (m_base / "code.tar").string();
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    EXPECT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
    for (const auto& m : members) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, m.name.c_str());
      archive_entry_set_filetype(e, static_cast<unsigned>(m.type));
      archive_entry_set_perm(e, m.mode);
      if (m.hardlink) {
        archive_entry_set_hardlink(e, m.target.c_str());
      } else if (m.type == AE_IFLNK) {
        archive_entry_set_symlink(e, m.target.c_str());
      }
      const std::string data = m.type == AE_IFREG && !m.hardlink ? "print(1)\n" : "";
      archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
      EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << m.name;
      if (!data.empty()) {
        archive_write_data(a, data.data(), data.size());
      }
      archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
  }

  // The StagingError's message, or "" when the archive was extracted.
  std::string
  extract(const std::vector<Member>& members)
  {
    try {
      fetch::extract_archive(write_tar(members), dest());
    } catch (const base::StagingError& e) {
      return e.what();
    }
    return "";
  }

  std::string dest() const { return (m_base / "dest").string(); }
  std::string outside() const { return (m_base / "outside").string(); }

  fs::path m_base;
};

TEST_F(ArchiveExtract, LinkMadeEscapingByALaterMemberIsRefused)
{
  // `l -> d/..` is inside while d does not exist; `d -> .` then makes it the parent.
  const auto error = extract({{"train.py", AE_IFREG, ""}, {"l", AE_IFLNK, "d/.."}, {"d", AE_IFLNK, "."}});
  EXPECT_NE(error.find("member \"l\""), std::string::npos) << error;
  EXPECT_NE(error.find("\"d/..\""), std::string::npos) << error;
}

TEST_F(ArchiveExtract, ChainOfLaterLinksIsRefused)
{
  // x -> p0/.../pN/../../<outside>: each p becomes `.` only after x.
  const std::string d = dest();
  const auto depth = static_cast<std::size_t>(std::count(d.begin(), d.end(), '/'));
  std::string target;
  std::vector<Member> members{{"x", AE_IFLNK, ""}};
  for (std::size_t i = 0; i < depth; ++i) {
    target += "p" + std::to_string(i) + "/";
    members.push_back({"p" + std::to_string(i), AE_IFLNK, "."});
  }
  for (std::size_t i = 0; i < depth; ++i) {
    target += "../";
  }
  target += outside().substr(1);
  members[0].target = target;
  const auto error = extract(members);
  EXPECT_NE(error.find("member \"x\""), std::string::npos) << error;
}

TEST_F(ArchiveExtract, LinksInsideAreKept)
{
  EXPECT_EQ(extract({{"train.py", AE_IFREG, ""},
                     {"d", AE_IFLNK, "."},
                     {"l", AE_IFLNK, "d/train.py"},
                     {"sub/dangling", AE_IFLNK, "../missing/x"},
                     {"loop", AE_IFLNK, "loop"}}),
            "");
  EXPECT_EQ(fs::read_symlink(dest() + "/l"), "d/train.py");
}

TEST_F(ArchiveExtract, DanglingLinkThatClimbsOutIsRefused)
{
  const auto error = extract({{"train.py", AE_IFREG, ""}, {"m", AE_IFLNK, "missing/../../x"}});
  EXPECT_NE(error.find("member \"m\""), std::string::npos) << error;
}

TEST_F(ArchiveExtract, HardLinkToASymlinkIsRefused)
{
  const std::string dirs = "a/b/c/d/e/f/g/h";
  const auto error = extract({{dirs + "/l", AE_IFLNK, "../../../../../../../../x"}, {"x", AE_IFREG, dirs + "/l",
                                                                                     0644, true}});
  EXPECT_NE(error.find("member \"x\" is a hard link to the symbolic link"), std::string::npos) << error;
  EXPECT_FALSE(fs::is_symlink(dest() + "/x"));
}

TEST_F(ArchiveExtract, FinalWalkFindsALinkMovedToAnotherDepth)
{
  // What a hard link to a symlink leaves: the same link at the top, where ".." leaves.
  fs::create_directories(dest() + "/a/b");
  fs::create_symlink("../../x", dest() + "/a/b/l");
  EXPECT_FALSE(fetch::find_link_outside(dest()));
  fs::create_hard_link(dest() + "/a/b/l", dest() + "/x");
  const auto escaping = fetch::find_link_outside(dest());
  ASSERT_TRUE(escaping);
  EXPECT_EQ(escaping->member, "x");
  EXPECT_EQ(escaping->target, "../../x");
}

TEST_F(ArchiveExtract, DotMembers)
{
  // "." as a file would replace the code folder with a file.
  auto error = extract({{".", AE_IFREG, ""}});
  EXPECT_NE(error.find("named like the code directory itself"), std::string::npos) << error;
  EXPECT_TRUE(fs::is_directory(dest()));
  // "." as a folder is the destination itself: skipped, its mode not applied.
  fs::permissions(dest(), fs::perms(0755));
  EXPECT_EQ(extract({{".", AE_IFDIR, "", 0}, {"train.py", AE_IFREG, ""}}), "");
  struct stat st
  {
  };
  ASSERT_EQ(::stat(dest().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755U);
  EXPECT_TRUE(fs::exists(dest() + "/train.py"));
}

} // namespace
