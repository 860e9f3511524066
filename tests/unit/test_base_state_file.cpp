// The launcher's state files: atomic writes with checked errors, and bytes kept exactly.
#include "base/errors.hpp"
#include "base/state_file.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

class StateFileTest : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    std::string name = (fs::temp_directory_path() / "state-file-XXXXXX").string();
    ASSERT_NE(::mkdtemp(name.data()), nullptr);
    m_dir = name;
  }
  void
  TearDown() override
  {
    fs::remove_all(m_dir);
  }

  static std::string
  read(const std::string& path)
  {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::string m_dir;
};

TEST_F(StateFileTest, WritesWholeWithItsModeAndLeavesNoTemporaryFile)
{
  const std::string path = m_dir + "/sub/state.json";
  base::write_file_atomically(path, "first", 0600);
  base::write_file_atomically(path, "second", 0644);
  EXPECT_EQ(read(path), "second");
  struct stat st
  {
  };
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644U);
  EXPECT_EQ(std::distance(fs::directory_iterator(m_dir + "/sub"), fs::directory_iterator()), 1);
}

// Without the fsync (the staging marker) the write is as whole and as atomic.
TEST_F(StateFileTest, AtomicOnlyWritesWholeWithItsModeAndLeavesNoTemporaryFile)
{
  const std::string path = m_dir + "/marker.json";
  base::write_file_atomically(path, "first", 0600, base::Durability::atomic_only);
  base::write_file_atomically(path, "second\n", 0644, base::Durability::atomic_only);
  EXPECT_EQ(read(path), "second\n");
  struct stat st
  {
  };
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644U);
  EXPECT_EQ(std::distance(fs::directory_iterator(m_dir), fs::directory_iterator()), 1);
}

TEST_F(StateFileTest, AFolderThatCannotBeMadeIsASystemErrorNamingIt)
{
  base::write_file_atomically(m_dir + "/file", "x", 0600);
  try {
    base::write_file_atomically(m_dir + "/file/state.json", "x", 0600);
    FAIL() << "no error";
  } catch (const base::SystemError& e) {
    EXPECT_NE(std::string(e.what()).find(m_dir + "/file"), std::string::npos) << e.what();
  }
}

TEST(StateFileJson, BytesRoundTripAsTextWhenUtf8ElseHex)
{
  EXPECT_EQ(base::bytes_to_json("caf\xc3\xa9"), nlohmann::json("caf\xc3\xa9"));
  EXPECT_EQ(base::bytes_to_json(std::string("caf\xe9", 4)), (nlohmann::json{{"hex", "636166e9"}}));
  for (const std::string& bytes : {std::string(), std::string("plain"), std::string("\xff\xfe\x80", 3),
                                   std::string("\xed\xa0\x80", 3) /* a lone surrogate */}) {
    EXPECT_EQ(base::bytes_from_json(nlohmann::json::parse(base::bytes_to_json(bytes).dump())), bytes);
  }
  EXPECT_THROW((void)base::bytes_from_json(nlohmann::json{{"hex", "6"}}), std::runtime_error);
  EXPECT_THROW((void)base::bytes_from_json(nlohmann::json{{"hex", "zz"}}), std::runtime_error);
  EXPECT_THROW((void)base::bytes_from_json(nlohmann::json(3)), std::runtime_error);
}

} // namespace
