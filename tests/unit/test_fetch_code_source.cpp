// sagemaker_submit_directory: classifying the source, deciding what staging does, and
// copying a folder into code/ (links as links, modes kept).
#include "fetch/code_source.hpp"

#include "base/errors.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <fcntl.h>
#include <linux/fs.h>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using fetch::SourceKind;
using fetch::StagingAction;

namespace {

class LauncherCodeSource : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    m_base = fs::temp_directory_path() / ("smlaunch-cs-" + std::to_string(getpid()));
    fs::remove_all(m_base);
    fs::create_directories(m_base / "code");
    fs::create_directories(m_base / "src" / "sub");
    fs::create_directories(m_base / "src" / "empty");
    write(m_base / "src" / "train.py", "import sub.util\n");
    write(m_base / "src" / "sub" / "util.py", "X = 1\n");
    write(m_base / "src" / ".hidden", "dotfile\n");
    write(m_base / "src" / "run.sh", "#!/bin/sh\necho hi\n");
    fs::permissions(m_base / "src" / "run.sh", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                                 fs::perms::others_read | fs::perms::others_exec);
    fs::permissions(m_base / "src" / "train.py", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    fs::create_symlink("train.py", m_base / "src" / "link.py");              // relative, inside
    fs::create_symlink("sub", m_base / "src" / "sublink");                   // to a folder
    fs::create_symlink(m_base / "outside.txt", m_base / "src" / "outside");  // absolute, outside the tree
    fs::create_symlink("does-not-exist", m_base / "src" / "dangling");
    write(m_base / "outside.txt", "secret outside the code\n");
    write(m_base / "single.py", "print(1)\n");
    write(m_base / "bundle.tar.gz", "not really gzip");
    write(m_base / "bundle.tgz", "x");
    write(m_base / "bundle.tar", "x");
    fs::create_directory_symlink(m_base / "code", m_base / "code-link");
  }
  void TearDown() override { fs::remove_all(m_base); }

  static void
  write(const fs::path& p, const std::string& text)
  {
    std::ofstream(p) << text;
  }
  static std::string
  read(const fs::path& p)
  {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string path(const std::string& relative) const { return (m_base / relative).string(); }
  std::string code() const { return path("code"); }

  fs::path m_base;
};

TEST_F(LauncherCodeSource, Classify)
{
  struct Case
  {
    std::string module_dir;
    fetch::SourceKind kind;
    std::string local_path;
  };
  const std::string src = path("src");
  const Case cases[] = {
    {src, fetch::SourceKind::directory, src},
    {src + "/", fetch::SourceKind::directory, src},
    {src + "///", fetch::SourceKind::directory, src},
    {"file://" + src, fetch::SourceKind::directory, src},
    {"file://" + src + "/", fetch::SourceKind::directory, src},
    {"file://localhost" + src, fetch::SourceKind::directory, src},
    {"file://localhost" + src + "/", fetch::SourceKind::directory, src},
    {code(), fetch::SourceKind::code_dir, code()},
    {code() + "/", fetch::SourceKind::code_dir, code()},
    {"file://" + code(), fetch::SourceKind::code_dir, code()},
    {path("src/../code"), fetch::SourceKind::code_dir, path("src/../code")}, // another spelling
    {path("./code"), fetch::SourceKind::code_dir, path("./code")},
    {path("code-link"), fetch::SourceKind::code_dir, path("code-link")},     // a link to it
    {path("single.py"), fetch::SourceKind::file, path("single.py")},
    {"file://" + path("single.py"), fetch::SourceKind::file, path("single.py")},
    {path("bundle.tar.gz"), fetch::SourceKind::archive, path("bundle.tar.gz")},
    {path("bundle.tgz"), fetch::SourceKind::archive, path("bundle.tgz")},
    {path("bundle.tar"), fetch::SourceKind::archive, path("bundle.tar")},
    {"s3://bucket/job/source/sourcedir.tar.gz", fetch::SourceKind::s3, ""},
    {"s3://bucket/prefix/", fetch::SourceKind::s3, ""},
  };
  for (const auto& c : cases) {
    const auto s = fetch::classify_code_source(c.module_dir, code());
    EXPECT_EQ(fetch::to_string(s.kind), std::string(fetch::to_string(c.kind))) << c.module_dir;
    EXPECT_EQ(s.uri, c.module_dir);
    EXPECT_EQ(s.local_path, c.local_path) << c.module_dir;
  }
}

TEST_F(LauncherCodeSource, CodeDirThatDoesNotExistYet)
{
  fs::remove_all(m_base / "code");
  const auto s = fetch::classify_code_source(code(), code());
  EXPECT_EQ(s.kind, fetch::SourceKind::code_dir);
}

TEST_F(LauncherCodeSource, PlatformCodeDirMeansThisTreesCodeDir)
{
  // The SDK's local mode writes "/opt/ml/code"; with another base it is that base's code/.
  for (const std::string module_dir : {"/opt/ml/code", "/opt/ml/code/", "file:///opt/ml/code"}) {
    const auto s = fetch::classify_code_source(module_dir, code());
    EXPECT_EQ(s.kind, fetch::SourceKind::code_dir) << module_dir;
    EXPECT_EQ(s.local_path, code()) << module_dir;
  }
}

TEST_F(LauncherCodeSource, MissingPathIsAStagingError)
{
  struct Case
  {
    std::string module_dir;
    std::string named; // the path the message must name
  };
  const Case cases[] = {
    {path("nope"), path("nope")},
    {path("nope") + "/", path("nope")},
    {"file://" + path("nope"), path("nope")},
    {"file://localhost" + path("nope"), path("nope")},
    {path("sourcedir.tar.gz"), path("sourcedir.tar.gz")},
  };
  for (const auto& c : cases) {
    try {
      fetch::classify_code_source(c.module_dir, code());
      ADD_FAILURE() << "no StagingError for " << c.module_dir;
    } catch (const base::StagingError& e) {
      EXPECT_EQ(e.exit_code(), 66);
      EXPECT_EQ(e.error_class(), "StagingError");
      EXPECT_NE(std::string(e.what()).find(c.named), std::string::npos) << e.what();
    }
  }
}

TEST(LauncherCodeSourceDecide, Table)
{
  struct Case
  {
    fetch::SourceKind kind;
    bool has_files;
    bool staged_by_smlaunch; // code/ holds what an earlier run staged (the marker exists)
    fetch::StagingAction expected;
  };
  const Case cases[] = {
    {fetch::SourceKind::code_dir, false, false, fetch::StagingAction::none},
    {fetch::SourceKind::code_dir, true, false, fetch::StagingAction::none},
    {fetch::SourceKind::code_dir, true, true, fetch::StagingAction::none},
    {fetch::SourceKind::directory, false, false, fetch::StagingAction::copy_directory},
    {fetch::SourceKind::directory, true, false, fetch::StagingAction::keep_existing},
    {fetch::SourceKind::directory, true, true, fetch::StagingAction::copy_directory},
    {fetch::SourceKind::directory, false, true, fetch::StagingAction::copy_directory},
    {fetch::SourceKind::file, false, false, fetch::StagingAction::copy_file},
    {fetch::SourceKind::file, true, false, fetch::StagingAction::keep_existing},
    {fetch::SourceKind::file, true, true, fetch::StagingAction::copy_file},
    {fetch::SourceKind::archive, false, false, fetch::StagingAction::extract_archive},
    {fetch::SourceKind::archive, true, false, fetch::StagingAction::keep_existing},
    {fetch::SourceKind::archive, true, true, fetch::StagingAction::extract_archive},
    {fetch::SourceKind::s3, false, false, fetch::StagingAction::download_s3},
    {fetch::SourceKind::s3, true, false, fetch::StagingAction::keep_existing},
    {fetch::SourceKind::s3, true, true, fetch::StagingAction::download_s3},
  };
  for (const auto& c : cases) {
    fetch::CodeSource s;
    s.kind = c.kind;
    EXPECT_EQ(fetch::to_string(fetch::decide_staging(s, c.has_files, c.staged_by_smlaunch)),
              std::string(fetch::to_string(c.expected)))
      << fetch::to_string(c.kind) << " has_files=" << c.has_files << " staged=" << c.staged_by_smlaunch;
  }
}

TEST(LauncherCodeSourceDecide, CodeViewRoot)
{
  fetch::CodeSource s;
  s.kind = fetch::SourceKind::directory;
  s.local_path = "/src";
  EXPECT_EQ(fetch::code_view_root(s, StagingAction::none, "/ml/code"), "/ml/code");
  EXPECT_EQ(fetch::code_view_root(s, StagingAction::keep_existing, "/ml/code"), "/ml/code");
  EXPECT_EQ(fetch::code_view_root(s, StagingAction::copy_directory, "/ml/code"), "/src");
  EXPECT_EQ(fetch::code_view_root(s, StagingAction::copy_file, "/ml/code"), "");
  EXPECT_EQ(fetch::code_view_root(s, StagingAction::extract_archive, "/ml/code"), "");
  EXPECT_EQ(fetch::code_view_root(s, StagingAction::download_s3, "/ml/code"), "");
}

TEST_F(LauncherCodeSource, DirectoryHasFiles)
{
  EXPECT_FALSE(fetch::directory_has_files(code()));
  EXPECT_FALSE(fetch::directory_has_files(path("missing")));
  EXPECT_FALSE(fetch::directory_has_files(path("single.py")));
  write(m_base / "code" / ".keep", "");
  EXPECT_TRUE(fetch::directory_has_files(code()));
  EXPECT_TRUE(fetch::directory_has_files(path("src")));
}

fetch::StagingContext
context(const std::string& base_dir, const std::string& code_dir)
{
  fetch::StagingContext c;
  c.base_dir = base_dir;
  c.code_dir = code_dir;
  return c;
}

TEST_F(LauncherCodeSource, StageCopiesAFolder)
{
  const std::string base = path("opt/ml");
  const std::string target = base + "/code"; // created, with its parents
  const auto s = fetch::classify_code_source("file://" + path("src") + "/", target);
  ASSERT_EQ(fetch::decide_staging(s, fetch::directory_has_files(target), false), StagingAction::copy_directory);
  fetch::stage_code(s, StagingAction::copy_directory, context(base, target));
  const fs::path t = target;

  EXPECT_EQ(read(t / "train.py"), "import sub.util\n");
  EXPECT_EQ(read(t / "sub" / "util.py"), "X = 1\n");
  EXPECT_EQ(read(t / ".hidden"), "dotfile\n");
  EXPECT_TRUE(fs::is_directory(t / "empty"));

  // Modes are kept: the executable stays executable, the other does not become so.
  const auto run_perms = fs::status(t / "run.sh").permissions();
  EXPECT_NE(run_perms & fs::perms::owner_exec, fs::perms::none);
  EXPECT_NE(run_perms & fs::perms::others_exec, fs::perms::none);
  const auto py_perms = fs::status(t / "train.py").permissions();
  EXPECT_EQ(py_perms & (fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec), fs::perms::none);

  // Links are copied as links, never as their targets.
  struct Link
  {
    const char* name;
    fs::path target;
  };
  const Link links[] = {
    {"link.py", "train.py"}, {"sublink", "sub"}, {"outside", m_base / "outside.txt"}, {"dangling", "does-not-exist"}};
  for (const auto& l : links) {
    ASSERT_TRUE(fs::is_symlink(fs::symlink_status(t / l.name))) << l.name;
    EXPECT_EQ(fs::read_symlink(t / l.name), l.target) << l.name;
  }
  EXPECT_FALSE(fs::is_directory(fs::symlink_status(t / "sublink"))); // not a copied folder

  // Exactly the source's entries, and the source is untouched.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(t)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{".hidden", "dangling", "empty", "link.py", "outside", "run.sh", "sub",
                                             "sublink", "train.py"}));
  EXPECT_TRUE(fs::exists(m_base / "src" / "train.py"));
  // Nothing is left behind next to code/ but the marker.
  EXPECT_TRUE(fs::exists(fetch::staging_marker_path(base)));
}

// The copy's buffer grows with the largest file met (up to 1 MiB) and is reused: files on
// either side of a page and of the buffer's size, small after large, arrive byte for byte.
TEST_F(LauncherCodeSource, StageCopiesFilesOfEverySizeWhole)
{
  const std::vector<std::size_t> sizes = {0, 1, 4095, 4096, 4097, (1U << 20) - 1, 1U << 20, (1U << 20) + 1,
                                          (3U << 20) + 17, 5, 8191};
  fs::remove_all(m_base / "src");
  fs::create_directories(m_base / "src");
  std::vector<std::string> contents;
  std::uint32_t state = 12345;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::string bytes(sizes[i], '\0');
    for (char& c : bytes) {
      state = state * 1664525U + 1013904223U;
      c = static_cast<char>(state >> 24);
    }
    // Names sort in this order, the order the copy takes them in.
    std::ofstream(m_base / "src" / ("f" + std::to_string(10 + i)), std::ios::binary) << bytes;
    contents.push_back(std::move(bytes));
  }
  const auto s = fetch::classify_code_source(path("src"), code());
  fetch::stage_code(s, StagingAction::copy_directory, context(m_base.string(), code()));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const fs::path copied = m_base / "code" / ("f" + std::to_string(10 + i));
    ASSERT_EQ(fs::file_size(copied), sizes[i]) << copied;
    std::ifstream in(copied, std::ios::binary);
    const std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(back == contents[i]) << copied << " differs from its source";
  }
}

TEST_F(LauncherCodeSource, StageCopiesOneFile)
{
  const auto s = fetch::classify_code_source(path("single.py"), code());
  ASSERT_EQ(fetch::decide_staging(s, false, false), StagingAction::copy_file);
  fetch::stage_code(s, StagingAction::copy_file, context(m_base.string(), code()));
  EXPECT_EQ(read(m_base / "code" / "single.py"), "print(1)\n");
}

// Like a folder copy or an archive, a single file loses setuid and setgid.
TEST_F(LauncherCodeSource, StageCopiesOneFileWithoutSetuid)
{
  ASSERT_EQ(::chmod(path("single.py").c_str(), 06755), 0);
  const auto s = fetch::classify_code_source(path("single.py"), code());
  fetch::stage_code(s, StagingAction::copy_file, context(m_base.string(), code()));
  struct stat st
  {
  };
  ASSERT_EQ(::stat(path("code/single.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755U);
}

// A sparse file's holes stay holes: a 256 MiB file with 5 bytes of data is not written whole.
TEST_F(LauncherCodeSource, StageCopiesSparseFilesSparse)
{
  constexpr off_t size = off_t{1} << 28;
  {
    std::ofstream(m_base / "src" / "sparse.bin");
  }
  fs::resize_file(m_base / "src" / "sparse.bin", static_cast<std::uintmax_t>(size));
  {
    std::fstream f(m_base / "src" / "sparse.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(size / 2);
    f << "hello";
  }
  fetch::stage_code(fetch::classify_code_source(path("src"), code()), StagingAction::copy_directory,
                    context(m_base.string(), code()));
  struct stat st
  {
  };
  ASSERT_EQ(::stat(path("code/sparse.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, size);
  EXPECT_LT(st.st_blocks * 512, off_t{16} << 20) << "the holes were written as data";
  std::ifstream in(m_base / "code" / "sparse.bin", std::ios::binary);
  in.seekg(size / 2 - 1);
  std::string around(7, 'x');
  in.read(around.data(), 7);
  EXPECT_EQ(around, std::string("\0hello\0", 7));
}

// Sets or clears the immutable flag (chattr +i), which stops even root from removing or
// renaming; false where the file system or the capabilities do not allow it.
bool
set_immutable(const fs::path& p, bool on)
{
  const int fd = ::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  ok = ok && ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  ::close(fd);
  return ok;
}

// The old code/ is renamed aside before the new one moves in: a file in it that cannot
// be removed no longer stops the swap (it used to fail with "Success", the old code half
// removed).
TEST_F(LauncherCodeSource, OldCodeThatCannotBeRemovedDoesNotStopTheSwap)
{
  fs::create_directories(m_base / "code" / "stuck");
  write(m_base / "code" / "stuck" / "old.py", "old\n");
  if (!set_immutable(m_base / "code" / "stuck" / "old.py", true)) {
    GTEST_SKIP() << "cannot set the immutable flag here";
  }
  std::string error;
  try {
    fetch::stage_code(fetch::classify_code_source(path("src"), code()), StagingAction::copy_directory,
                      context(m_base.string(), code()));
  } catch (const base::StagingError& e) {
    error = e.what();
  }
  // The old copy is left in .smlaunch/ (with a warning); clear the flag before checking.
  std::vector<fs::path> stuck;
  for (const auto& e : fs::recursive_directory_iterator(m_base)) {
    if (e.path().filename() == "old.py") {
      stuck.push_back(e.path());
    }
  }
  for (const auto& p : stuck) {
    set_immutable(p, false);
  }
  EXPECT_EQ(error, "");
  EXPECT_EQ(read(m_base / "code" / "train.py"), "import sub.util\n");
  EXPECT_FALSE(fs::exists(m_base / "code" / "stuck"));
  EXPECT_TRUE(fs::exists(fetch::staging_marker_path(m_base.string())));
}

// When the swap fails, the message names the file and the cause (not "Success"), the old
// code is still there, and the marker is gone so the next start stages again.
TEST_F(LauncherCodeSource, FailedSwapKeepsTheOldCodeAndSaysWhy)
{
  const auto dir = fetch::classify_code_source(path("src"), code());
  fetch::stage_code(dir, StagingAction::copy_directory, context(m_base.string(), code()));
  ASSERT_TRUE(fs::exists(fetch::staging_marker_path(m_base.string())));
  write(m_base / "src" / "train.py", "new\n");
  if (!set_immutable(m_base, true)) { // code/ cannot be renamed nor removed
    GTEST_SKIP() << "cannot set the immutable flag here";
  }
  std::string error;
  try {
    fetch::stage_code(dir, StagingAction::copy_directory, context(m_base.string(), code()));
  } catch (const base::StagingError& e) {
    error = e.what();
  }
  set_immutable(m_base, false);
  EXPECT_NE(error.find(code()), std::string::npos) << error;
  EXPECT_NE(error.find("Operation not permitted"), std::string::npos) << error;
  EXPECT_EQ(error.find("Success"), std::string::npos) << error;
  EXPECT_EQ(read(m_base / "code" / "train.py"), "import sub.util\n");
  EXPECT_TRUE(fs::exists(m_base / "code" / "sub" / "util.py"));
  EXPECT_FALSE(fs::exists(fetch::staging_marker_path(m_base.string())));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(m_base / ".smlaunch")) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_TRUE(left.empty()) << left.front(); // no staging or old folder left behind
}

TEST_F(LauncherCodeSource, StageNoneAndKeepExisting)
{
  write(m_base / "code" / "mine.py", "kept\n");
  const auto dir = fetch::classify_code_source(path("src"), code());
  ASSERT_EQ(fetch::decide_staging(dir, fetch::directory_has_files(code()), false), StagingAction::keep_existing);
  fetch::stage_code(dir, StagingAction::keep_existing, context(m_base.string(), code()));
  EXPECT_EQ(read(m_base / "code" / "mine.py"), "kept\n");
  EXPECT_FALSE(fs::exists(m_base / "code" / "train.py"));

  const std::string fresh = path("fresh/code");
  fetch::stage_code(fetch::classify_code_source(fresh, fresh), StagingAction::none, context(path("fresh"), fresh));
  EXPECT_TRUE(fs::is_directory(fresh));
}

TEST_F(LauncherCodeSource, StageErrors)
{
  // A .tar.gz that is not one.
  const auto archive = fetch::classify_code_source(path("bundle.tar.gz"), code());
  EXPECT_THROW(fetch::stage_code(archive, StagingAction::extract_archive, context(m_base.string(), code())),
               base::StagingError);
  EXPECT_TRUE(fs::is_directory(code())); // a failure leaves code/ in place

  // code/ cannot be created: a file is in the way.
  write(m_base / "not-a-dir", "x");
  const auto s = fetch::classify_code_source(path("src"), path("not-a-dir"));
  EXPECT_THROW(fetch::stage_code(s, StagingAction::copy_directory, context(m_base.string(), path("not-a-dir"))),
               base::StagingError);
}

} // namespace
