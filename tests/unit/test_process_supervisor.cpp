// Supervisor: exit statuses decoded once, and stop signals never lost, including those that
// arrive while a finished child's process group is being cleaned up.
#include "process/supervisor.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <fstream>
#include <sstream>

#include <chrono>
#include <ctime>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;

TEST(ProcessSupervisorDecode, ExitCodesAndSignals)
{
  for (int code : {0, 1, 2, 64, 126, 127, 255}) {
    const auto s = process::decode_wait_status(W_EXITCODE(code, 0));
    EXPECT_EQ(s.code, code);
    EXPECT_EQ(s.term_signal, 0);
  }
  const auto killed = process::decode_wait_status(W_EXITCODE(0, SIGKILL));
  EXPECT_EQ(killed.code, 128 + SIGKILL);
  EXPECT_EQ(killed.term_signal, SIGKILL);
}

// The child exits at once, leaving in its group a process that ignores SIGTERM, so the
// supervisor spends 2 s ending that group. A SIGTERM sent to the launcher meanwhile must
// stop the job (before: it was collected by the clean-up's wait and dropped, and the next
// phase started anyway).
TEST(ProcessSupervisorStop, AStopSignalDuringTheGroupCleanUpIsKept)
{
  const std::string ready = ::testing::TempDir() + "smlaunch-cleanup-ready-" + std::to_string(::getpid());
  std::remove(ready.c_str());
  process::Supervisor supervisor(process::Supervisor::Options{});
  process::ChildSpec spec;
  // (The child waits until the leftover ignores SIGTERM: the clean-up starts with one.)
  spec.argv = {"/bin/sh", "-c", "(trap '' TERM; : >\"$1\"; exec sleep 4) & while [ ! -e \"$1\" ]; do sleep 0.01; done",
               "sh", ready};
  spec.envp = {"PATH=/usr/bin:/bin"};
  spec.output = process::OutputMode::capture;
  // Created after the supervisor: the thread inherits its blocked signal mask, so the
  // signal stays pending for the supervisor's signalfd. It is sent once the leftover
  // process ignores SIGTERM, and its parent has had time to exit (on a loaded machine too).
  std::thread sender([&ready] {
    for (int i = 0; i < 500 && ::access(ready.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(300ms);
    ::kill(::getpid(), SIGTERM);
  });
  const process::ChildResult result = supervisor.run(spec);
  sender.join();
  std::remove(ready.c_str());
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.stop_signal, SIGTERM);
  EXPECT_EQ(supervisor.poll_stop_signal(), SIGTERM);
}

// Runs `script` (sh, $1 = a file it creates once its traps are set) under `supervisor` and
// sends the launcher `sig` once that file exists.
process::ChildResult
run_signalled(process::Supervisor& supervisor, process::ChildSpec spec, const std::string& script, int sig)
{
  const std::string ready = ::testing::TempDir() + "smlaunch-signal-ready-" + std::to_string(::getpid());
  std::remove(ready.c_str());
  spec.argv = {"/bin/sh", "-c", script, "sh", ready};
  spec.envp = {"PATH=/usr/bin:/bin"};
  spec.output = process::OutputMode::capture;
  std::thread sender([&ready, sig] {
    for (int i = 0; i < 500 && ::access(ready.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    ::kill(::getpid(), sig);
  });
  const process::ChildResult result = supervisor.run(spec);
  sender.join();
  std::remove(ready.c_str());
  return result;
}

// mpirun's case: SIGTERM reaches the child as term_as (SIGTERM itself would make mpirun kill
// the ranks at once); the grace period still starts.
TEST(ProcessSupervisorStop, TermAsSendsItsSignalInPlaceOfSigterm)
{
  process::Supervisor::Options options;
  options.grace_period = 30s;
  process::Supervisor supervisor(options);
  process::ChildSpec spec;
  spec.term_as = SIGURG;
  const auto r = run_signalled(
      supervisor, spec, "trap 'exit 3' URG; trap 'exit 4' TERM; : >\"$1\"; for i in $(seq 400); do sleep 0.05; done",
      SIGTERM);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.stop_signal, SIGTERM);
  EXPECT_FALSE(r.killed_after_grace);
  EXPECT_FALSE(r.terminated_after_grace);
}

// When the grace period ends, a term_as child gets SIGTERM itself (and SIGKILL only later).
TEST(ProcessSupervisorStop, TermAsSendsSigtermWhenTheGracePeriodEnds)
{
  process::Supervisor::Options options;
  options.grace_period = 200ms;
  process::Supervisor supervisor(options);
  process::ChildSpec spec;
  spec.term_as = SIGURG;
  const auto r = run_signalled(
      supervisor, spec, "trap '' URG; trap 'exit 4' TERM; : >\"$1\"; for i in $(seq 400); do sleep 0.05; done",
      SIGTERM);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.stop_signal, SIGTERM);
  EXPECT_FALSE(r.killed_after_grace);
  EXPECT_TRUE(r.terminated_after_grace);
}

// The rank step's case: term_alias is taken as SIGTERM, which the child gets.
TEST(ProcessSupervisorStop, TermAliasIsHandledAsSigterm)
{
  process::Supervisor::Options options;
  options.term_alias = SIGURG;
  process::Supervisor supervisor(options);
  const auto r = run_signalled(
      supervisor, process::ChildSpec{},
      "trap 'exit 3' URG; trap 'exit 4' TERM; : >\"$1\"; for i in $(seq 400); do sleep 0.05; done", SIGURG);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.stop_signal, SIGTERM);
}

// A child that closes its output and goes on running: the pipe hangs up with nothing to
// read. The supervisor then waits for the child's exit alone (no relay thread for a
// silent script, and no poll spinning on the hung-up pipe for the child's whole life),
// while a child that wrote before closing is still relayed whole.
TEST(ProcessSupervisorOutput, AClosedOutputIsWaitedOutWithoutSpinning)
{
  struct Case
  {
    const char* script;
    const char* captured;
    int code;
  };
  const Case cases[] = {{"exec >&- 2>&-; sleep 0.6; exit 3", "", 3},
                        {"printf 'said '; sleep 0.1; printf 'this'; exec >&- 2>&-; sleep 0.6; exit 4", "said this", 4}};
  for (const auto& c : cases) {
    process::Supervisor supervisor(process::Supervisor::Options{});
    process::ChildSpec spec;
    spec.argv = {"/bin/sh", "-c", c.script};
    spec.envp = {"PATH=/usr/bin:/bin"};
    spec.output = process::OutputMode::capture;
    timespec cpu_before{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_before);
    const process::ChildResult result = supervisor.run(spec);
    timespec cpu_after{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_after);
    const double cpu_seconds = static_cast<double>(cpu_after.tv_sec - cpu_before.tv_sec) +
                               static_cast<double>(cpu_after.tv_nsec - cpu_before.tv_nsec) / 1e9;
    EXPECT_EQ(result.exit_code, c.code) << c.script;
    EXPECT_EQ(result.captured, c.captured) << c.script;
    // Spinning on the pipe would burn most of the child's 0.6 s here.
    EXPECT_LT(cpu_seconds, 0.3) << c.script;
  }
}

// `smlaunch rank`'s line relay is a mode of the one runner: the same exec rules as every
// child (ENOTDIR -> 127, a script without a shebang runs with /bin/sh), and the output
// reaches ours whole.
TEST(ProcessSupervisorLines, SameExecRulesAndWholeOutput)
{
  const std::string dir = ::testing::TempDir() + "smlaunch-lines-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string script = dir + "/noshebang";
  {
    std::ofstream out(script);
    out << "printf 'partial '; sleep 0.1; printf 'line\\n'; printf 'err\\n' >&2; exit 3\n";
  }
  ::chmod(script.c_str(), 0755);
  const std::string captured = dir + "/stdout";
  const int saved_stdout = ::dup(STDOUT_FILENO);
  const int file = ::open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  ::dup2(file, STDOUT_FILENO);
  ::close(file);
  process::ChildResult script_result;
  process::ChildResult missing_result;
  {
    process::Supervisor supervisor(process::Supervisor::Options{});
    process::ChildSpec spec;
    spec.envp = {"PATH=/usr/bin:/bin"};
    spec.output = process::OutputMode::lines;
    spec.die_with_parent = true;
    spec.argv = {script};
    script_result = supervisor.run(spec);
    spec.argv = {script + "/not-a-directory"};
    missing_result = supervisor.run(spec);
  }
  ::dup2(saved_stdout, STDOUT_FILENO);
  ::close(saved_stdout);
  EXPECT_EQ(script_result.exit_code, 3);
  EXPECT_EQ(script_result.exec_errno, 0);
  EXPECT_EQ(missing_result.exit_code, 127);
  EXPECT_EQ(missing_result.exec_errno, ENOTDIR);
  std::ifstream in(captured);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "partial line\n");
  std::remove(captured.c_str());
  std::remove(script.c_str());
  ::rmdir(dir.c_str());
}

// One end of life: a daemon the job started in its own session (out of the child's
// process group, so the group clean-up misses it), ignoring SIGTERM, ends with the
// supervisor.
TEST(ProcessSupervisorEndOfLife, ASetsidDaemonThatIgnoresSigtermEndsWithTheSupervisor)
{
  const std::string pid_file = ::testing::TempDir() + "smlaunch-daemon-" + std::to_string(::getpid());
  std::remove(pid_file.c_str());
  pid_t daemon = 0;
  {
    process::Supervisor supervisor(process::Supervisor::Options{});
    process::ChildSpec spec;
    spec.argv = {"/bin/sh", "-c",
                 "setsid sh -c 'trap \"\" TERM; echo $$ >\"$1\"; exec sleep 30' sh \"$1\" >/dev/null 2>&1 </dev/null &"
                 " while [ ! -s \"$1\" ]; do sleep 0.01; done",
                 "sh", pid_file};
    spec.envp = {"PATH=/usr/bin:/bin"};
    spec.output = process::OutputMode::capture;
    EXPECT_EQ(supervisor.run(spec).exit_code, 0);
    std::ifstream in(pid_file);
    in >> daemon;
    ASSERT_GT(daemon, 0);
    EXPECT_EQ(::kill(daemon, 0), 0) << "the daemon should outlive the child's process group";
  }
  EXPECT_EQ(::kill(daemon, 0), -1) << "the daemon outlived the supervisor";
  EXPECT_EQ(errno, ESRCH);
  std::remove(pid_file.c_str());
}

// A serving worker inherits its channel and nothing else of the launcher's (the listening
// socket, client connections); other children keep what is not close-on-exec, as before.
TEST(ProcessSupervisorDescriptors, OnlyTheNamedDescriptorIsInheritedWhenAsked)
{
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  ASSERT_EQ(::dup2(null_fd, 50), 50); // dup2: not close-on-exec
  ASSERT_EQ(::dup2(null_fd, 51), 51);
  ::close(null_fd);
  std::string only_51;
  std::string both;
  {
    process::Supervisor supervisor(process::Supervisor::Options{});
    process::ChildSpec spec;
    spec.argv = {"/bin/sh", "-c", "for fd in 50 51; do [ -e /proc/self/fd/$fd ] && echo $fd; done; true"};
    spec.envp = {"PATH=/usr/bin:/bin"};
    spec.output = process::OutputMode::capture;
    spec.only_inherited_fd = 51;
    only_51 = supervisor.run(spec).captured;
    spec.only_inherited_fd = -1;
    both = supervisor.run(spec).captured;
  }
  ::close(50);
  ::close(51);
  EXPECT_EQ(only_51, "51\n");
  EXPECT_EQ(both, "50\n51\n");
}

} // namespace
