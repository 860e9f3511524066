#include "launcher/entry_point.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using launcher::CodeView;
using launcher::EntryPointType;

namespace {

class CodeDir : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    m_root = fs::temp_directory_path() / ("smlaunch-ep-" + std::to_string(getpid()));
    fs::create_directories(m_root / "sub");
  }
  void TearDown() override { fs::remove_all(m_root); }
  void
  touch(const std::string& name)
  {
    std::ofstream(m_root / name) << "x";
  }
  CodeView view() const { return CodeView{m_root.string()}; }

  fs::path m_root;
};

TEST_F(CodeDir, DetectsTypesInTheReferenceOrder)
{
  struct Case
  {
    const char* name;
    bool setup_py;
    EntryPointType expected;
  };
  const Case cases[] = {
    {"train.py", false, EntryPointType::python_program},
    {"train.sh", false, EntryPointType::command},
    {"train", false, EntryPointType::command},
    {"train.py", true, EntryPointType::python_package},
    {"train", true, EntryPointType::python_package},
    {"train.sh", true, EntryPointType::command}, // ".sh" is checked before setup.py
  };
  for (const auto& c : cases) {
    fs::remove(m_root / "setup.py");
    if (c.setup_py) {
      touch("setup.py");
    }
    EXPECT_EQ(launcher::detect_entry_point_type(c.name, view()), c.expected) << c.name << " setup.py=" << c.setup_py;
  }
}

TEST_F(CodeDir, CommandLines)
{
  const std::vector<std::string> args = {"--lr", "0.1", "--name", "a b"};
  EXPECT_EQ(launcher::script_argv(EntryPointType::python_program, "train.py", "/py", "/c", args),
            (std::vector<std::string>{"/py", "train.py", "--lr", "0.1", "--name", "a b"}));
  EXPECT_EQ(launcher::script_argv(EntryPointType::python_package, "pkg/train.py", "/py", "/c", {}),
            (std::vector<std::string>{"/py", "-m", "pkg.train"}));
  EXPECT_EQ(launcher::script_argv(EntryPointType::command, "run.sh", "/py", "/c", {"--x", "$(y)"}),
            (std::vector<std::string>{"/c/run.sh", "--x", "$(y)"}));
}

TEST_F(CodeDir, RankCommandLinesGoThroughMpi4py)
{
  using launcher::PythonLaunch;
  EXPECT_EQ(launcher::script_argv(EntryPointType::python_program, "train.py", "/py", "/c", {"--lr", "1"}, PythonLaunch::mpi4py),
            (std::vector<std::string>{"/py", "-m", "mpi4py", "train.py", "--lr", "1"}));
  EXPECT_EQ(launcher::script_argv(EntryPointType::python_package, "pkg/train.py", "/py", "/c", {}, PythonLaunch::mpi4py),
            (std::vector<std::string>{"/py", "-m", "mpi4py", "-m", "pkg.train"}));
  EXPECT_EQ(launcher::script_argv(EntryPointType::command, "run.sh", "/py", "/c", {}, PythonLaunch::mpi4py),
            (std::vector<std::string>{"/c/run.sh"}));
}

TEST_F(CodeDir, InstallCommands)
{
  EXPECT_FALSE(launcher::install_command(EntryPointType::python_program, view(), "/py"));
  touch("requirements.txt");
  const auto program = launcher::install_command(EntryPointType::python_program, view(), "/py");
  ASSERT_TRUE(program);
  EXPECT_EQ(program->argv, (std::vector<std::string>{"/py", "-m", "pip", "install", "-r", "requirements.txt"}));
  EXPECT_EQ(program->error_class, "InstallRequirementsError");
  const auto command = launcher::install_command(EntryPointType::command, view(), "/py");
  ASSERT_TRUE(command); // unlike the reference, shell entry points get their requirements too
  const auto package = launcher::install_command(EntryPointType::python_package, view(), "/py");
  ASSERT_TRUE(package);
  EXPECT_EQ(package->argv, (std::vector<std::string>{"/py", "-m", "pip", "install", ".", "-r", "requirements.txt"}));
  EXPECT_EQ(package->error_class, "InstallModuleError");
}

TEST_F(CodeDir, RejectsUnsafeOrWrongNames)
{
  EXPECT_TRUE(launcher::entry_point_problem("", view()));
  EXPECT_TRUE(launcher::entry_point_problem("/etc/passwd", view()));
  EXPECT_TRUE(launcher::entry_point_problem("../x.py", view()));
  EXPECT_TRUE(launcher::entry_point_problem("a/../../x.py", view()));
  EXPECT_TRUE(launcher::entry_point_problem("sub", view()));
  EXPECT_FALSE(launcher::entry_point_problem("sub/train.py", view()));
  EXPECT_FALSE(launcher::entry_point_problem("train..py", view()));
}

// A FIFO named pyproject.toml (in a code/ smlaunch kept as it was) is not a project file:
// reading it blocked the planning step forever, with no writer to come. Run in a child
// bounded by alarm(). A regular pyproject.toml is still read.
TEST_F(CodeDir, AFifoNamedPyprojectIsNotRead)
{
  ASSERT_EQ(::mkfifo((m_root / "pyproject.toml").c_str(), 0644), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(20);
    const bool none = !launcher::install_command(EntryPointType::python_program, view(), "/py");
    ::_exit(none ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
  fs::remove(m_root / "pyproject.toml");
  std::ofstream(m_root / "pyproject.toml") << "[project]\nname = 'x'\n";
  const auto project = launcher::install_command(EntryPointType::python_program, view(), "/py");
  ASSERT_TRUE(project);
  EXPECT_EQ(project->argv, (std::vector<std::string>{"/py", "-m", "pip", "install", "."}));
}

} // namespace
