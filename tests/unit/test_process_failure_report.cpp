// output/failure: the CONTRACT's format, and the message that says what went wrong.
// The Python tracebacks below are real CPython 3.11 stderr, captured once by running the
// scripts shown in k_scripts with /usr/bin/python3 (paths rewritten to /opt/ml/code/); a
// live test runs the same scripts with the python3 on PATH, when there is one.
#include "base/shell.hpp"
#include "process/failure_report.hpp"

#include "process/supervisor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using process::ChildResult;

namespace {

bool
starts_with(const std::string& text, const std::string& prefix)
{
  return text.rfind(prefix, 0) == 0;
}

std::string
first_line(const std::string& text)
{
  return text.substr(0, text.find('\n'));
}

// ---------------------------------------------------------------------------------------
// format_failure / join_command

TEST(LauncherFailureFormat, ExactText)
{
  struct Case
  {
    const char* error_class;
    int code;
    const char* message;
    const char* command;
    const char* expected;
  };
  const Case cases[] = {
    {"ExecuteUserScriptError", 1, "ValueError: learning rate must be positive", "/usr/bin/python3 train.py --lr -1",
     "ExecuteUserScriptError:\nExitCode 1\nErrorMessage \"ValueError: learning rate must be positive\"\n"
     "Command \"/usr/bin/python3 train.py --lr -1\"\n"},
    {"ConfigError", 65, "", "smlaunch train",
     "ConfigError:\nExitCode 65\nErrorMessage \"\"\nCommand \"smlaunch train\"\n"},
    {"ExecuteUserScriptError", 137, "killed by SIGKILL (signal 9)\nline two", "/c/run.sh",
     "ExecuteUserScriptError:\nExitCode 137\nErrorMessage \"killed by SIGKILL (signal 9)\nline two\"\n"
     "Command \"/c/run.sh\"\n"},
    {"InstallRequirementsError", 67, "say \"hi\"", "", // quotes are kept as the reference keeps them
     "InstallRequirementsError:\nExitCode 67\nErrorMessage \"say \"hi\"\"\nCommand \"\"\n"},
    // smlaunch's own classes say on the first line what is wrong (its first line only).
    {"ConfigError", 65, "/opt/ml/input/config/resourceconfig.json: key \"/hosts\": is empty\nmore", "smlaunch train",
     "ConfigError: /opt/ml/input/config/resourceconfig.json: key \"/hosts\": is empty\nExitCode 65\n"
     "ErrorMessage \"/opt/ml/input/config/resourceconfig.json: key \"/hosts\": is empty\nmore\"\n"
     "Command \"smlaunch train\"\n"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(process::format_failure(c.error_class, c.code, c.message, c.command), c.expected) << c.error_class;
  }
}

TEST(LauncherFailureFormat, JoinCommand)
{
  struct Case
  {
    std::vector<std::string> argv;
    const char* expected;
  };
  const Case cases[] = {
    {{}, ""},
    {{"/usr/bin/python3"}, "/usr/bin/python3"},
    {{"/usr/bin/python3", "train.py", "--lr", "0.1"}, "/usr/bin/python3 train.py --lr 0.1"},
    {{"/py", "train.py", "--name", "a b"}, "/py train.py --name a b"}, // not quoted, as the reference shows it
    {{"/py", "-m", "pip", "install", "-r", "requirements.txt"}, "/py -m pip install -r requirements.txt"},
    {{"/c/run.sh", "--x", ""}, "/c/run.sh --x "},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(base::join_command(c.argv), c.expected) << c.expected;
  }
}

// ---------------------------------------------------------------------------------------
// python_error_summary on real CPython tracebacks

struct Traceback
{
  const char* name;
  const char* script;    // what produced `stderr` (run again by the live test)
  const char* stderr_text;
  const char* exception; // what the summary must start with
  const char* absent;    // text the summary must not contain, or nullptr
};

const Traceback k_tracebacks[] = {
  {"plain",
   "def check(lr):\n    if lr < 0:\n        raise ValueError(\"learning rate must be positive\")\ncheck(-1)\n",
   R"tb(Traceback (most recent call last):
  File "/opt/ml/code/plain.py", line 4, in <module>
    check(-1)
  File "/opt/ml/code/plain.py", line 3, in check
    raise ValueError("learning rate must be positive")
ValueError: learning rate must be positive
)tb",
   "ValueError: learning rate must be positive", nullptr},
  {"chained",
   "def load():\n    try:\n        {}[\"missing\"]\n    except KeyError:\n        raise RuntimeError(\"bad config file\")\nload()\n",
   R"tb(Traceback (most recent call last):
  File "/opt/ml/code/chained.py", line 3, in load
    {}["missing"]
    ~~^^^^^^^^^^^
KeyError: 'missing'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/opt/ml/code/chained.py", line 6, in <module>
    load()
  File "/opt/ml/code/chained.py", line 5, in load
    raise RuntimeError("bad config file")
RuntimeError: bad config file
)tb",
   "RuntimeError: bad config file", "During handling"},
  {"multiline", "raise ValueError(\"first line of the message\\nsecond line\\nthird line\")\n",
   R"tb(Traceback (most recent call last):
  File "/opt/ml/code/multiline.py", line 1, in <module>
    raise ValueError("first line of the message\nsecond line\nthird line")
ValueError: first line of the message
second line
third line
)tb",
   "ValueError: first line of the message\nsecond line\nthird line", nullptr},
  // A syntax error in an imported module: a traceback, then the caret lines.
  {"syntax_error_in_module", nullptr,
   R"tb(Traceback (most recent call last):
  File "/opt/ml/code/synimp.py", line 1, in <module>
    import synmod_bad
  File "/opt/ml/code/synmod_bad.py", line 1
    def f(:
          ^
SyntaxError: invalid syntax
)tb",
   "SyntaxError: invalid syntax", nullptr},
  {"keyboard_interrupt", "def loop():\n    raise KeyboardInterrupt\nloop()\n",
   R"tb(Traceback (most recent call last):
  File "/opt/ml/code/kbd.py", line 3, in <module>
    loop()
  File "/opt/ml/code/kbd.py", line 2, in loop
    raise KeyboardInterrupt
KeyboardInterrupt
)tb",
   "KeyboardInterrupt", nullptr},
  // An atexit handler writes to stderr after the traceback.
  {"more_stderr_after",
   "import sys, atexit\natexit.register(lambda: print(\"cleanup: closing 3 workers\", file=sys.stderr))\n"
   "raise OSError(28, \"No space left on device\")\n",
   R"tb(Traceback (most recent call last):
  File "/opt/ml/code/after.py", line 3, in <module>
    raise OSError(28, "No space left on device")
OSError: [Errno 28] No space left on device
cleanup: closing 3 workers
)tb",
   "OSError: [Errno 28] No space left on device", nullptr},
  {"two_tracebacks_last_wins",
   "import traceback, sys\ntry:\n    raise ZeroDivisionError(\"first failure, handled\")\nexcept ZeroDivisionError:\n"
   "    traceback.print_exc()\nprint(\"retrying\", file=sys.stderr)\ndef g():\n    raise TypeError(\"second failure "
   "wins\")\ng()\n",
   R"tb(Traceback (most recent call last):
  File "/opt/ml/code/two.py", line 3, in <module>
    raise ZeroDivisionError("first failure, handled")
ZeroDivisionError: first failure, handled
retrying
Traceback (most recent call last):
  File "/opt/ml/code/two.py", line 9, in <module>
    g()
  File "/opt/ml/code/two.py", line 8, in g
    raise TypeError("second failure wins")
TypeError: second failure wins
)tb",
   "TypeError: second failure wins", "ZeroDivisionError"},
};

// Real tracebacks that the summary gets wrong (see LauncherFailureSummaryBug below).
const Traceback k_indented_message = {
  "message_with_indented_lines",
  "raise ValueError(\"2 validation errors for Config\\nlr\\n  Input should be greater than 0 "
  "[input_value=-1]\\nepochs\\n  Field required\")\n",
  R"tb(Traceback (most recent call last):
  File "/opt/ml/code/indentmsg.py", line 1, in <module>
    raise ValueError("2 validation errors for Config\nlr\n  Input should be greater than 0 [input_value=-1]\nepochs\n  Field required")
ValueError: 2 validation errors for Config
lr
  Input should be greater than 0 [input_value=-1]
epochs
  Field required
)tb",
  "ValueError: 2 validation errors for Config", nullptr};

const Traceback k_indented_after = {
  "indented_stderr_after",
  "import sys, atexit\natexit.register(lambda: print(\"shutting down:\\n  worker 1 stopped\\n  worker 2 stopped\", "
  "file=sys.stderr))\nraise RuntimeError(\"CUDA error: device-side assert triggered\")\n",
  R"tb(Traceback (most recent call last):
  File "/opt/ml/code/afterindent.py", line 3, in <module>
    raise RuntimeError("CUDA error: device-side assert triggered")
RuntimeError: CUDA error: device-side assert triggered
shutting down:
  worker 1 stopped
  worker 2 stopped
)tb",
  "RuntimeError: CUDA error: device-side assert triggered", nullptr};

// A syntax error in the script itself: CPython prints no "Traceback" header.
const char* const k_main_syntax_error = R"tb(  File "/opt/ml/code/syntax.py", line 2
    def f(:
          ^
SyntaxError: invalid syntax
)tb";

void
check_summary(const std::string& name, const std::string& stderr_text, const std::string& exception, const char* absent)
{
  for (const std::size_t max : {std::size_t{2048}, std::size_t{1024}, std::size_t{200}, std::size_t{80},
                                exception.size() + 1, exception.size(), std::size_t{20}, std::size_t{1}}) {
    const std::string s = process::python_error_summary(stderr_text, max);
    SCOPED_TRACE(name + " max_bytes=" + std::to_string(max) + " summary=\n" + s);
    EXPECT_LE(s.size(), max);
    EXPECT_TRUE(starts_with(s, exception.substr(0, std::min(max, exception.size()))));
    if (max > exception.size()) {
      // The whole exception, then (room permitting) the end of the traceback.
      EXPECT_TRUE(s == exception || starts_with(s, exception + "\n"));
    }
    if (absent != nullptr) {
      EXPECT_EQ(s.find(absent), std::string::npos);
    }
  }
  // With room, the end of the traceback follows: the innermost frame is there.
  const std::string big = process::python_error_summary(stderr_text, 2048);
  EXPECT_NE(big.find("  File \"/opt/ml/code/"), std::string::npos) << name << "\n" << big;
}

TEST(LauncherFailureSummary, RealTracebacksStartWithTheExceptionAndFit)
{
  for (const auto& t : k_tracebacks) {
    check_summary(t.name, t.stderr_text, t.exception, t.absent);
  }
}

TEST(LauncherFailureSummary, ExactLayoutExceptionThenTracebackEnd)
{
  const std::string tb = k_tracebacks[0].stderr_text;
  const std::string exception = "ValueError: learning rate must be positive";
  EXPECT_EQ(process::python_error_summary(tb, 2048), exception + "\n" + tb.substr(0, tb.size() - 1));
  // Less room: the exception, then the last whole lines that fit.
  const std::string raise = "    raise ValueError(\"learning rate must be positive\")";
  const std::size_t room = exception.size() + 1 + raise.size() + 1 + exception.size();
  EXPECT_EQ(process::python_error_summary(tb, room), exception + "\n" + raise + "\n" + exception);
  EXPECT_EQ(process::python_error_summary(tb, room - 1), exception + "\n" + exception);
}

TEST(LauncherFailureSummary, EmptyWithoutATraceback)
{
  const char* const cases[] = {
    "",
    "epoch 1 loss 0.5\nepoch 2 loss 0.4\n",
    "Segmentation fault (core dumped)\n",
    "ValueError: printed by hand, no traceback\n",
    "Traceback (most recent call last):\n  File \"/opt/ml/code/t.py\", line 1, in <module>\n", // cut off
  };
  for (const char* c : cases) {
    EXPECT_EQ(process::python_error_summary(c, 2048), "") << c;
  }
}

TEST(LauncherFailureSummary, CrLfLineEnds)
{
  std::string tb = k_tracebacks[0].stderr_text;
  std::string crlf;
  for (char ch : tb) {
    crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  }
  const std::string s = process::python_error_summary(crlf, 2048);
  EXPECT_TRUE(starts_with(s, "ValueError: learning rate must be positive\n")) << s;
  EXPECT_EQ(s.find('\r'), std::string::npos);
}

TEST(LauncherFailureSummaryBug, MessageWithIndentedLines)
{
  const auto& t = k_indented_message;
  const std::string s = process::python_error_summary(t.stderr_text, 2048);
  if (!starts_with(s, t.exception)) {
    FAIL() << "regression: python_error_summary takes the exception to start after the last indented line, so a "
                    "multi-line exception message with indented lines (pydantic-style) yields \""
                 << s << "\" instead of a summary starting with \"" << t.exception << "\"";
  }
  check_summary(t.name, t.stderr_text, t.exception, t.absent);
}

TEST(LauncherFailureSummaryBug, IndentedStderrAfterTheTraceback)
{
  const auto& t = k_indented_after;
  const std::string s = process::python_error_summary(t.stderr_text, 2048);
  if (!starts_with(s, t.exception)) {
    FAIL() << "regression: indented stderr lines written after the traceback (an atexit handler) hide the "
                    "exception: summary is \""
                 << s << "\" instead of starting with \"" << t.exception << "\"";
  }
  check_summary(t.name, t.stderr_text, t.exception, t.absent);
}

// The same scripts, run now by the python3 on PATH (whatever its version).
std::string
run_python(const fs::path& dir, const std::string& name, const std::string& script)
{
  const fs::path file = dir / (name + ".py");
  std::ofstream(file) << script;
  const std::string command = "cd '" + dir.string() + "' && python3 '" + file.string() + "' 2>&1 >/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return "";
  }
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    out.append(buffer, n);
  }
  ::pclose(pipe);
  return out;
}

TEST(LauncherFailureSummary, LiveCPythonTracebacks)
{
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no python3 on PATH";
  }
  const fs::path dir = fs::temp_directory_path() / ("smlaunch-fr-py-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "synmod_bad.py") << "def f(:\n    pass\n";
  std::vector<Traceback> cases(std::begin(k_tracebacks), std::end(k_tracebacks));
  for (auto& t : cases) {
    if (std::string(t.name) == "syntax_error_in_module") {
      t.script = "import synmod_bad\n";
    }
  }
  for (const auto& t : cases) {
    const std::string stderr_text = run_python(dir, t.name, t.script);
    ASSERT_NE(stderr_text.find("Traceback (most recent call last):"), std::string::npos) << t.name << stderr_text;
    const std::string s = process::python_error_summary(stderr_text, 2048);
    SCOPED_TRACE(std::string(t.name) + " stderr=\n" + stderr_text + "summary=\n" + s);
    EXPECT_LE(s.size(), 2048u);
    if (std::string(t.name) == "syntax_error_in_module") {
      EXPECT_TRUE(starts_with(s, "SyntaxError: ")); // the wording differs between versions
    } else {
      EXPECT_TRUE(starts_with(s, t.exception));
    }
    if (t.absent != nullptr) {
      EXPECT_EQ(s.find(t.absent), std::string::npos);
    }
    EXPECT_LE(process::python_error_summary(stderr_text, 40).size(), 40u);
  }
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------
// last_lines

TEST(LauncherFailureLastLines, Table)
{
  const std::string huge = std::string(10000, 'x') + "END";
  struct Case
  {
    std::string name;
    std::string output;
    std::size_t max;
    std::string expected;
  };
  const Case cases[] = {
    {"all fit", "a\nb\nc\n", 100, "a\nb\nc"},
    {"limit keeps the last lines", "a\nb\nc", 3, "b\nc"},
    {"limit one short", "a\nb\nc", 4, "b\nc"},
    {"limit exact", "a\nb\nc", 5, "a\nb\nc"},
    {"longer lines", "first line\nsecond line\nthird line\n", 22, "second line\nthird line"},
    {"huge single line: its end", huge, 100, std::string(97, 'x') + "END"},
    {"huge last line after short ones", "short\n" + huge + "\n", 100, std::string(97, 'x') + "END"},
    {"trailing blank lines dropped", "error: boom\n\n\n  \n\t\n", 100, "error: boom"},
    {"trailing blanks do not use the budget", "a\nerror: boom\n\n\n\n\n\n\n\n\n", 13, "a\nerror: boom"},
    {"inner blank line kept", "a\n\nb\n", 100, "a\n\nb"},
    {"CRLF", "a\r\nb\r\nc\r\n", 100, "a\nb\nc"},
    {"CRLF limit", "aaaa\r\nbbbb\r\n", 6, "bbbb"},
    {"empty", "", 100, ""},
    {"only blank lines", "\n\n \n", 100, ""},
    {"zero budget", "a\nb\n", 0, ""},
  };
  for (const auto& c : cases) {
    const std::string got = process::last_lines(c.output, c.max);
    EXPECT_EQ(got, c.expected) << c.name;
    EXPECT_LE(got.size(), c.max) << c.name;
  }
}

// ---------------------------------------------------------------------------------------
// describe_script_failure

process::ChildResult
result(int exit_code, const std::string& tail = "")
{
  ChildResult r;
  r.exit_code = exit_code;
  r.output_tail = tail;
  r.relayed_bytes = tail.size();
  return r;
}

TEST(LauncherFailureDescribe, ExitCodeOnly)
{
  EXPECT_EQ(process::describe_script_failure(result(3), "/c/run.sh", 60), "exited with code 3 and wrote nothing to stderr");
  EXPECT_EQ(process::describe_script_failure(result(1, "\n\n"), "/c/run.sh", 60),
            "exited with code 1 and wrote nothing to stderr");
  // Non-Python stderr: its last lines.
  EXPECT_EQ(process::describe_script_failure(result(2, "step 1\nfatal: disk full\n"), "/c/run.sh", 60),
            "step 1\nfatal: disk full");
  // A Python traceback: the exception first.
  const std::string tb = std::string("epoch 1\n") + k_tracebacks[1].stderr_text;
  const std::string m = process::describe_script_failure(result(1, tb), "/usr/bin/python3", 60);
  EXPECT_TRUE(starts_with(m, "RuntimeError: bad config file\n")) << m;
}

TEST(LauncherFailureDescribe, SigkillMentionsOutOfMemory)
{
  process::ChildResult r = result(137, "loading batch 12\n");
  r.term_signal = SIGKILL;
  const std::string m = process::describe_script_failure(r, "/usr/bin/python3", 60);
  EXPECT_TRUE(starts_with(m, "killed by SIGKILL (signal 9)")) << m;
  EXPECT_NE(m.find("out of memory"), std::string::npos) << m;
  EXPECT_NE(m.find("loading batch 12"), std::string::npos) << m;

  // Another signal: no OOM guess.
  ChildResult segv = result(139);
  segv.term_signal = SIGSEGV;
  const std::string s = process::describe_script_failure(segv, "/usr/bin/python3", 60);
  EXPECT_EQ(s, "killed by SIGSEGV (signal 11)");
}

TEST(LauncherFailureDescribe, KilledAfterGrace)
{
  struct Case
  {
    int stop_signal;
    double grace;
    const char* grace_text;
    const char* stop_name;
  };
  const Case cases[] = {{SIGTERM, 60, "60 s grace period", "SIGTERM"}, {SIGINT, 5, "5 s grace period", "SIGINT"}};
  for (const auto& c : cases) {
    process::ChildResult r = result(137, "saving checkpoint...\n");
    r.term_signal = SIGKILL;
    r.stop_signal = c.stop_signal;
    r.killed_after_grace = true;
    const std::string m = process::describe_script_failure(r, "/usr/bin/python3", c.grace);
    EXPECT_TRUE(starts_with(m, "killed by SIGKILL (signal 9)")) << m;
    EXPECT_NE(m.find(c.grace_text), std::string::npos) << m;
    EXPECT_NE(m.find(c.stop_name), std::string::npos) << m;
    EXPECT_EQ(m.find("out of memory"), std::string::npos) << m; // we killed it, not the OOM killer
    EXPECT_NE(m.find("saving checkpoint..."), std::string::npos) << m;
  }
}

TEST(LauncherFailureDescribeBug, FractionalGracePeriod)
{
  process::ChildResult r = result(137);
  r.term_signal = SIGKILL;
  r.stop_signal = SIGTERM;
  r.killed_after_grace = true;
  const std::string m = process::describe_script_failure(r, "/usr/bin/python3", 0.5);
  if (m.find("0.5 s grace period") == std::string::npos) {
    FAIL() << "regression: --grace-period 0.5 (accepted by the CLI) is reported as: " << m;
  }
}

// mpirun (a ChildSpec::term_as child) exits on its own after the SIGTERM that ends the grace
// period: the reason says the grace period ran out, not only that SIGTERM was forwarded.
TEST(LauncherFailureDescribe, TerminatedAfterGrace)
{
  process::ChildResult r = result(1, "mpirun: Forwarding signal 15 to job\n");
  r.stop_signal = SIGTERM;
  r.terminated_after_grace = true;
  const std::string m = process::describe_script_failure(r, "/usr/bin/mpirun", 20);
  EXPECT_TRUE(starts_with(m, "exited with code 1 after it did not end within the 20 s grace period that followed "
                             "SIGTERM (smlaunch then sent it SIGTERM)"))
      << m;
  EXPECT_NE(m.find("Forwarding signal 15"), std::string::npos) << m;
}

TEST(LauncherFailureDescribe, ForwardedStopSignal)
{
  process::ChildResult r = result(1, "interrupted\n");
  r.stop_signal = SIGTERM;
  EXPECT_EQ(process::describe_script_failure(r, "/usr/bin/python3", 60),
            "exited with code 1 after smlaunch forwarded SIGTERM\ninterrupted");
}

TEST(LauncherFailureDescribe, ExecFailure)
{
  process::ChildResult enoent = result(127);
  enoent.exec_errno = ENOENT;
  EXPECT_EQ(process::describe_script_failure(enoent, "/opt/ml/code/run.sh", 60), "/opt/ml/code/run.sh: not found");
  ChildResult eacces = result(126);
  eacces.exec_errno = EACCES;
  EXPECT_EQ(process::describe_script_failure(eacces, "/opt/ml/code/run.sh", 60),
            "/opt/ml/code/run.sh: Permission denied");
  // A shebang naming a missing interpreter also fails with ENOENT: any stderr follows.
  ChildResult shebang = result(127, "bad interpreter\n");
  shebang.exec_errno = ENOENT;
  EXPECT_EQ(process::describe_script_failure(shebang, "/c/x", 60), "/c/x: not found\nbad interpreter");
}

TEST(LauncherFailureDescribe, TailStartingMidLineDropsThePartialLine)
{
  struct Case
  {
    unsigned long long relayed;
    const char* expected;
  };
  const std::string tail = "ial line of an earlier message\nreal line 1\nreal line 2\n";
  const Case cases[] = {
    {tail.size() + 5000, "real line 1\nreal line 2"},                               // the ring buffer wrapped
    {tail.size(), "ial line of an earlier message\nreal line 1\nreal line 2"}, // it did not: all kept
  };
  for (const auto& c : cases) {
    process::ChildResult r = result(2, tail);
    r.relayed_bytes = c.relayed;
    EXPECT_EQ(process::describe_script_failure(r, "/c/run.sh", 60), c.expected) << c.relayed;
  }
  // A traceback whose "Traceback" header is the partial first line is not misread.
  process::ChildResult r = result(1, std::string("back (most recent call last):\n  File \"x\", line 1\nplain end\n"));
  r.relayed_bytes = 100000;
  EXPECT_EQ(process::describe_script_failure(r, "/c/run.sh", 60), "  File \"x\", line 1\nplain end");
}

TEST(LauncherFailureDescribe, FirstKilobyteSaysWhatHappened)
{
  // 60 KiB of logs, then a traceback: the exception is in the failure file's first 1024 bytes.
  std::string tail;
  for (int i = 0; i < 2000; ++i) {
    tail += "epoch " + std::to_string(i) + " step loss=0.123456789\n";
  }
  tail += k_tracebacks[0].stderr_text;
  const std::string m = process::describe_script_failure(result(1, tail), "/usr/bin/python3", 60);
  EXPECT_LE(m.size(), 2048u);
  const std::string text = process::format_failure("ExecuteUserScriptError", 1, m, "/usr/bin/python3 train.py");
  EXPECT_NE(text.substr(0, 1024).find("ValueError: learning rate must be positive"), std::string::npos) << text;

  // Without a traceback: the end of stderr, bounded.
  std::string logs;
  for (int i = 0; i < 5000; ++i) {
    logs += "line " + std::to_string(i) + "\n";
  }
  const std::string l = process::describe_script_failure(result(1, logs), "/c/run.sh", 60);
  EXPECT_LE(l.size(), 2048u);
  EXPECT_TRUE(l.ends_with("line 4999")) << l.substr(l.size() - 50);
}

TEST(LauncherFailureDescribeBug, MainScriptSyntaxErrorStartsWithTheException)
{
  // README: "For a Python script the message starts with the exception line".
  const std::string m = process::describe_script_failure(result(1, k_main_syntax_error), "/usr/bin/python3", 60);
  EXPECT_NE(m.find("SyntaxError: invalid syntax"), std::string::npos) << m;
  if (!starts_with(m, "SyntaxError: invalid syntax")) {
    FAIL() << "regression: a SyntaxError in the script itself (CPython prints no \"Traceback\" header) is "
                    "described as its raw stderr, starting with \""
                 << first_line(m) << "\", not with the exception line";
  }
}

// ---------------------------------------------------------------------------------------
// describe_install_failure (pip 23.0.1 output, captured from a venv)

TEST(LauncherFailureInstall, KeepsPipErrorLines)
{
  const std::string error1 =
    "ERROR: Could not find a version that satisfies the requirement smlaunch-nope==1 (from versions: none)";
  const std::string error2 = "ERROR: No matching distribution found for smlaunch-nope==1";
  struct Case
  {
    const char* name;
    std::string tail;
  };
  const Case cases[] = {
    {"stderr only", error1 + "\n" + error2 + "\n"},
    {"stdout and stderr together", "Looking in links: /opt/wheels\n" + error1 + "\n" + error2 + "\n"},
    {"CRLF", "Looking in links: /opt/wheels\r\n" + error1 + "\r\n" + error2 + "\r\n"},
  };
  for (const auto& c : cases) {
    const std::string m = process::describe_install_failure(result(1, c.tail));
    EXPECT_EQ(m, "pip exited with code 1\n" + error1 + "\n" + error2) << c.name;
  }
}

TEST(LauncherFailureInstall, WithoutErrorLinesShowsTheEnd)
{
  // pip 23 reports a failing setup.py with lower-case "error:" lines.
  const std::string tail = R"pip(Looking in links: /opt/wheels
Processing /tmp/tb/badpkg
  Preparing metadata (setup.py): started
  Preparing metadata (setup.py): finished with status 'error'
  error: subprocess-exited-with-error
  
  × python setup.py egg_info did not run successfully.
  │ exit code: 1
  ╰─> [6 lines of output]
      Traceback (most recent call last):
        File "<string>", line 2, in <module>
        File "<pip-setuptools-caller>", line 34, in <module>
        File "/tmp/tb/badpkg/setup.py", line 1, in <module>
          raise RuntimeError("cannot build: missing CUDA_HOME")
      RuntimeError: cannot build: missing CUDA_HOME
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
error: metadata-generation-failed

× Encountered error while generating package metadata.
╰─> See above for output.

note: This is an issue with the package mentioned above, not pip.
hint: See above for details.
)pip";
  const std::string m = process::describe_install_failure(result(1, tail));
  EXPECT_TRUE(starts_with(m, "pip exited with code 1\n")) << m;
  EXPECT_NE(m.find("RuntimeError: cannot build: missing CUDA_HOME"), std::string::npos) << m;
  EXPECT_TRUE(m.ends_with("hint: See above for details.")) << m;
  EXPECT_EQ(process::describe_install_failure(result(2)), "pip exited with code 2");
}

// pip killed by a signal did not "exit with code 137": the signal is named, and for a
// SIGKILL the usual cause (before: "pip exited with code 137" and nothing else).
TEST(LauncherFailureInstall, KilledBySignal)
{
  ChildResult killed = result(137, "Collecting torch\n");
  killed.term_signal = SIGKILL;
  const std::string m = process::describe_install_failure(killed);
  EXPECT_TRUE(starts_with(m, "pip was killed by SIGKILL (signal 9): the likely cause is running out of memory")) << m;
  EXPECT_NE(m.find("Collecting torch"), std::string::npos) << m;
  ChildResult segv = result(139);
  segv.term_signal = SIGSEGV;
  EXPECT_EQ(process::describe_install_failure(segv), "pip was killed by SIGSEGV (signal 11)");
}

TEST(LauncherFailureInstall, ExecFailureAndBounds)
{
  process::ChildResult r = result(127);
  r.exec_errno = ENOENT;
  EXPECT_EQ(process::describe_install_failure(r), "cannot run pip: No such file or directory");
  EXPECT_EQ(process::describe_install_failure(r, "/opt/missing/python3"),
            "cannot run pip: /opt/missing/python3: No such file or directory (the Python set by --python / "
            "SMLAUNCH_PYTHON)");

  // Many ERROR lines: bounded, the first ones kept.
  std::string tail;
  for (int i = 0; i < 500; ++i) {
    tail += "ERROR: problem number " + std::to_string(i) + "\n";
  }
  const std::string m = process::describe_install_failure(result(1, tail));
  EXPECT_LE(m.size(), 2048u);
  EXPECT_NE(m.find("ERROR: problem number 0\n"), std::string::npos);

  // The partial first line of a wrapped tail is dropped, even when it looks like an error.
  ChildResult wrapped = result(1, "ERROR: ...tail of an older line\nERROR: real one\n");
  wrapped.relayed_bytes = 1 << 20;
  EXPECT_EQ(process::describe_install_failure(wrapped), "pip exited with code 1\nERROR: real one");
}

// ---------------------------------------------------------------------------------------
// write_failure_file

class LauncherFailureFile : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    m_dir = fs::temp_directory_path() / ("smlaunch-ff-" + std::to_string(getpid()));
    fs::remove_all(m_dir);
    fs::create_directories(m_dir);
  }
  void TearDown() override { fs::remove_all(m_dir); }
  static std::string
  read(const fs::path& p)
  {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path m_dir;
};

TEST_F(LauncherFailureFile, WritesOnceAndNeverOverwrites)
{
  const fs::path path = m_dir / "failure";
  const std::string text = process::format_failure("ExecuteUserScriptError", 1, "boom", "/py train.py");
  EXPECT_TRUE(process::write_failure_file(path.string(), text));
  EXPECT_EQ(read(path), text);
  EXPECT_FALSE(process::write_failure_file(path.string(), "second\n"));
  EXPECT_EQ(read(path), text);
}

TEST_F(LauncherFailureFile, KeepsTheScriptsOwnFile)
{
  const fs::path path = m_dir / "failure";
  std::ofstream(path) << "my own reason";
  EXPECT_FALSE(process::write_failure_file(path.string(), "launcher text"));
  EXPECT_EQ(read(path), "my own reason");
  // Even an empty one.
  const fs::path empty = m_dir / "empty";
  std::ofstream{empty};
  EXPECT_FALSE(process::write_failure_file(empty.string(), "launcher text"));
  EXPECT_EQ(read(empty), "");
}

TEST_F(LauncherFailureFile, MissingDirectoryFails)
{
  EXPECT_FALSE(process::write_failure_file((m_dir / "no" / "failure").string(), "x"));
  EXPECT_FALSE(fs::exists(m_dir / "no"));
}

TEST_F(LauncherFailureFile, LargeTextWrittenWhole)
{
  const fs::path path = m_dir / "failure";
  const std::string text(1 << 20, 'z');
  EXPECT_TRUE(process::write_failure_file(path.string(), text));
  EXPECT_EQ(read(path), text);
}

// The outcome files are smlaunch's own, inside the tree: a symbolic link left at one of
// their names (by whoever prepared the tree, or a script) is replaced, never written
// through. Before, a successful job truncated the target of output/success and filled the
// target of .smlaunch/failure-reserve with 64 KiB of zeros, outside --base-dir.
TEST_F(LauncherFailureFile, OutcomeFilesAreNeverWrittenThroughALink)
{
  const env::Paths paths = env::Paths::under((m_dir / "ml").string());
  fs::create_directories(paths.output);
  fs::create_directories(paths.base + "/.smlaunch");
  const std::vector<std::string> names = {paths.success_file, paths.base + "/.smlaunch/outcome",
                                          paths.base + "/.smlaunch/failure-reserve"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    const fs::path outside = m_dir / ("outside-" + std::to_string(i));
    std::ofstream(outside) << "precious";
    fs::create_symlink(outside, names[i]);
  }
  const fs::path dangling = m_dir / "created-outside";
  process::OutcomeFiles outcome = process::prepare_outcome(paths);
  EXPECT_EQ(process::record_outcome(outcome, 0, "", "", "/py train.py", env::EnvMap{}), 0);
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(read(m_dir / ("outside-" + std::to_string(i))), "precious") << names[i];
  }
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(paths.success_file)));
  // A dangling link: O_CREAT would have made its target. (Without the marker of the
  // success above, which has prepare_outcome remove output/success itself.)
  fs::remove(paths.base + "/.smlaunch/outcome");
  fs::remove(paths.success_file);
  fs::create_symlink(dangling, paths.success_file);
  outcome = process::prepare_outcome(paths);
  EXPECT_EQ(process::record_outcome(outcome, 0, "", "", "/py train.py", env::EnvMap{}), 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(dangling)));
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(paths.success_file)));
}

// A FIFO at output/success: opening it for writing waited for a reader forever, so the
// launcher hung after a successful job. Run in a child bounded by alarm().
TEST_F(LauncherFailureFile, AFifoAtTheSuccessFileDoesNotBlock)
{
  const env::Paths paths = env::Paths::under((m_dir / "ml").string());
  fs::create_directories(paths.output);
  ASSERT_EQ(::mkfifo(paths.success_file.c_str(), 0644), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(20);
    process::OutcomeFiles outcome = process::prepare_outcome(paths);
    process::record_outcome(outcome, 0, "", "", "/py train.py", env::EnvMap{});
    ::_exit(fs::is_regular_file(fs::symlink_status(paths.success_file)) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
}

} // namespace

// What mpirun --tag-output printed when rank 1 raised under PYTHONUNBUFFERED=1 (Open MPI
// 4.1.4, mpi4py 3.1.4; copied from a real run): tags also inside lines, a JOB MAP first.
TEST(LauncherFailureSummary, MpiTaggedTracebackOfTheFailingRank)
{
  const std::string output = " Data for node: algo-1\tNum slots: 1\tMax slots: 0\tNum procs: 1\n"
                             " =============================================================\n"
                             "[1,0]<stdout>:fine[1,0]<stdout>:\n"
                             "[1,1]<stderr>:Traceback (most recent call last):\n"
                             "[1,1]<stderr>:  File \"/usr/lib/python3/dist-packages/mpi4py/__main__.py\", line 7, in <module>\n"
                             "[1,1]<stderr>:    [1,1]<stderr>:main()[1,1]<stderr>:\n"
                             "[1,0]<stderr>:unrelated noise from rank 0\n"
                             "[1,1]<stderr>:  File \"train.py\", line 3, in <module>\n"
                             "[1,1]<stderr>:    raise RuntimeError(\"algo-2 ran out of data\")\n"
                             "[1,1]<stderr>:RuntimeError: algo-2 ran out of data\n"
                             "--------------------------------------------------------------------------\n"
                             "Primary job  terminated normally, but 1 process returned\n";
  EXPECT_EQ(process::untag_mpi_output(output),
            "Traceback (most recent call last):\n"
            "  File \"/usr/lib/python3/dist-packages/mpi4py/__main__.py\", line 7, in <module>\n"
            "    main()\n"
            "  File \"train.py\", line 3, in <module>\n"
            "    raise RuntimeError(\"algo-2 ran out of data\")\n"
            "RuntimeError: algo-2 ran out of data\n");
  process::ChildResult r;
  r.exit_code = 1;
  r.output_tail = output;
  r.relayed_bytes = output.size();
  const std::string message = process::describe_script_failure(r, "mpirun", 60);
  EXPECT_EQ(message.substr(0, message.find('\n')), "RuntimeError: algo-2 ran out of data");
  EXPECT_EQ(process::untag_mpi_output("no tags\nhere\n"), "no tags\nhere\n");
}

// The failure file is UTF-8 text (SageMaker's FailureReason): escapes and cuts.
TEST(LauncherFailureFormat, ControlCharactersAndInvalidUtf8AreEscaped)
{
  const char raw[] = "a\0b\x1b[0m\xff\xc3(\n\té"; // a NUL inside: its length is sizeof - 1
  const std::string text =
    process::format_failure("ExecuteUserScriptError", 1, std::string(raw, sizeof raw - 1), "x");
  EXPECT_NE(text.find("a\\x00b\\x1b[0m\\xff\\xc3(\n\té"), std::string::npos) << text;
}

TEST(LauncherFailureFormat, CutAt2048BytesBetweenCharacters)
{
  std::string message;
  for (int i = 0; i < 1500; ++i) {
    message += "é"; // two bytes each
  }
  const std::string text = process::format_failure("ExecuteUserScriptError", 1, "x" + message, "cmd");
  const auto start = text.find("ErrorMessage \"") + 14;
  const auto end = text.find("\"\nCommand");
  EXPECT_EQ(end - start, 2047U); // "x" and 1023 two-byte characters
}

TEST(LauncherFailureFormat, ALongCommandIsShortened)
{
  const std::string text = process::format_failure("ConfigError", 65, "m", std::string(5000, 'c'));
  EXPECT_NE(text.find(std::string(1024, 'c') + " ... (5000 bytes in all)\"\n"), std::string::npos);
}

TEST(LauncherFailureLastLines, OneHugeLineIsCutBetweenCharacters)
{
  std::string line;
  for (int i = 0; i < 100; ++i) {
    line += "é";
  }
  EXPECT_EQ(process::last_lines(line, 9), "éééé");
}
