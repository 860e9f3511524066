// The launcher's aborting failures: one small hierarchy, caught once in app.cpp and
// turned into a documented exit code and an output/failure file. One type per failure
// class (README: "Exit status"); the class name is the failure file's first word.
#pragma once

#include <stdexcept>
#include <string>

namespace base {

// Exit codes of the launcher's own failures (README: "Exit status"). A script's own
// code, 128+N for a signal and 126/127 for exec failures pass through unchanged.
enum class ExitCode : int {
  success = 0,
  usage = 64,      // bad command line or SMLAUNCH_* variable
  config = 65,     // bad files under input/config
  staging = 66,    // the user's code could not be found, fetched or unpacked
  install = 67,    // pip failed on requirements.txt or the package
  cluster = 68,    // hosts never became reachable, MPI set-up failed
  model_load = 69, // serve: the user's module or model_fn failed in a worker at start
  internal = 70,   // a bug or an unexpected system error
  serve_bind = 71, // serve: the port could not be bound (in use, no permission)
  not_executable = 126,
  not_found = 127,
};

constexpr int
to_int(ExitCode code)
{
  return static_cast<int>(code);
}

class LauncherError : public std::runtime_error
{
public:
  // `error_class` is the first line of output/failure ("ConfigError").
  LauncherError(std::string error_class, ExitCode code, const std::string& message)
      : std::runtime_error(message), m_error_class(std::move(error_class)), m_exit_code(to_int(code))
  {
  }
  LauncherError(std::string error_class, int exit_code, const std::string& message)
      : std::runtime_error(message), m_error_class(std::move(error_class)), m_exit_code(exit_code)
  {
  }

  const std::string&
  error_class() const
  {
    return m_error_class;
  }
  int
  exit_code() const
  {
    return m_exit_code;
  }
  // The command that failed (output/failure's Command line); the launcher's own argv
  // when empty.
  const std::string&
  command() const
  {
    return m_command;
  }
  LauncherError&
  with_command(std::string command)
  {
    m_command = std::move(command);
    return *this;
  }

private:
  std::string m_error_class;
  int m_exit_code;
  std::string m_command;
};

struct UsageError : LauncherError
{
  explicit UsageError(const std::string& message) : LauncherError("UsageError", ExitCode::usage, message) {}
};

struct StagingError : LauncherError
{
  explicit StagingError(const std::string& message) : LauncherError("StagingError", ExitCode::staging, message) {}
};

// The system's text for errno value `err` ("No space left on device").
std::string errno_text(int err);

// A system call failed: names the call and the object it acted on.
struct SystemError : LauncherError
{
  SystemError(const std::string& call, const std::string& what, int err);
};

// The base directory is not a SageMaker tree (the config files' own errors are
// env::ConfigError, with their JSON paths).
struct BaseDirectoryError : LauncherError
{
  explicit BaseDirectoryError(const std::string& message) : LauncherError("ConfigError", ExitCode::config, message) {}
};

// The script's command line or environment is over the kernel's limits for exec.
struct ExecLimitError : LauncherError
{
  ExecLimitError(const std::string& message, std::string command)
      : LauncherError("ConfigError", ExitCode::config, message)
  {
    with_command(std::move(command));
  }
};

// pip failed; `error_class` is the reference's InstallRequirementsError or InstallModuleError.
struct InstallError : LauncherError
{
  InstallError(std::string error_class, const std::string& message)
      : LauncherError(std::move(error_class), ExitCode::install, message)
  {
  }
};

// An archive could not be written (smlaunch local's model.tar.gz and output.tar.gz).
struct ArchiveError : LauncherError
{
  explicit ArchiveError(const std::string& message) : LauncherError("ArchiveError", ExitCode::internal, message) {}
};

// `smlaunch local` could not set up its hosts (keys, network namespaces).
struct ClusterError : LauncherError
{
  explicit ClusterError(const std::string& message) : LauncherError("ClusterError", ExitCode::cluster, message) {}
};

// The hosts of resourceconfig.json never resolved.
struct HostResolutionError : LauncherError
{
  explicit HostResolutionError(const std::string& message)
      : LauncherError("HostResolutionError", ExitCode::cluster, message)
  {
  }
};

// A host never answered (no SSH login, no sshd).
struct HostUnreachableError : LauncherError
{
  explicit HostUnreachableError(const std::string& message)
      : LauncherError("HostUnreachableError", ExitCode::cluster, message)
  {
  }
};

// This host's sshd could not start or exited.
struct SshdError : LauncherError
{
  explicit SshdError(const std::string& message) : LauncherError("SshdError", ExitCode::cluster, message) {}
};

// A stop signal (TERM, INT, HUP, QUIT) ended the job in `phase` ("staging", "installing
// requirements", ...): exit status 128+N, class "Stopped", message "stopped by SIGTERM
// while <phase>". The one channel for a stop in any phase before the script.
struct StoppedError : LauncherError
{
  StoppedError(int signo, const std::string& phase);
  int
  signal() const
  {
    return m_signal;
  }

private:
  int m_signal;
};

// "SIGTERM" for 15.
std::string signal_name(int signo);

} // namespace base
