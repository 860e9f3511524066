// The user's entry point: its type (as the reference detects it) and the command lines
// that install and run it. Pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace launcher {

enum class EntryPointType { python_program, python_package, command };

const char* to_string(EntryPointType type);

// What planning needs to know about the code directory's future contents.
struct CodeView
{
  std::string root; // the folder to look into; "" when unknown until fetched
  bool has(const std::string& relative) const;
  bool is_directory(const std::string& relative) const;
  // The first 64 KiB of a file, "" when it cannot be read.
  std::string read(const std::string& relative) const;
};

// True when pyproject.toml declares something pip can build ([build-system] or [project]),
// not just tool settings.
bool is_installable_pyproject(const std::string& text);

// The reference's order: ".sh" -> command; setup.py present -> package; ".py" ->
// program; anything else -> command.
EntryPointType detect_entry_point_type(const std::string& name, const CodeView& code);

// Check the sagemaker_program value; returns a message saying what is wrong, or nullopt.
std::optional<std::string> entry_point_problem(const std::string& name, const CodeView& code);

// `python -m module` for a package ("pkg/train.py" -> "pkg.train").
std::string module_for(const std::string& name);

// How Python runs the script: directly, or through mpi4py (every MPI rank: an uncaught
// exception then aborts all ranks). A command runs directly either way.
enum class PythonLaunch { direct, mpi4py };

// The script's argv.
std::vector<std::string> script_argv(EntryPointType type, const std::string& name, const std::string& python,
                                     const std::string& code_dir, const std::vector<std::string>& args,
                                     PythonLaunch launch = PythonLaunch::direct);

struct InstallCommand
{
  std::vector<std::string> argv;
  std::string error_class; // InstallModuleError or InstallRequirementsError
};

// pip for a package (`pip install . [-r requirements.txt]`: setup.py, or a pyproject.toml
// that declares a build) or for requirements.txt alone.
std::optional<InstallCommand> install_command(EntryPointType type, const CodeView& code, const std::string& python);

} // namespace launcher
