#include "launcher/entry_point.hpp"

#include "base/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace launcher {

const char*
to_string(EntryPointType type)
{
  switch (type) {
  case EntryPointType::python_program:
    return "python_program";
  case EntryPointType::python_package:
    return "python_package";
  case EntryPointType::command:
    return "command";
  }
  return "?";
}

bool
CodeView::has(const std::string& relative) const
{
  struct stat st
  {
  };
  return !root.empty() && ::lstat((root + "/" + relative).c_str(), &st) == 0;
}

bool
CodeView::is_directory(const std::string& relative) const
{
  struct stat st
  {
  };
  return !root.empty() && ::stat((root + "/" + relative).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string
CodeView::read(const std::string& relative) const
{
  if (root.empty()) {
    return "";
  }
  // Regular files only, opened without blocking: a FIFO named pyproject.toml in a code/
  // that smlaunch kept (baked into the image) blocked planning forever, deaf to SIGTERM.
  const int fd = ::open((root + "/" + relative).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return "";
  }
  std::string text;
  struct stat st
  {
  };
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    text.resize(64 * 1024);
    std::size_t size = 0;
    ssize_t n = 0;
    while (size < text.size() && (n = ::read(fd, text.data() + size, text.size() - size)) > 0) {
      size += static_cast<std::size_t>(n);
    }
    text.resize(size);
  }
  ::close(fd);
  return text;
}

bool
is_installable_pyproject(const std::string& text)
{
  for (std::string line : base::split_lines(text)) {
    line.erase(0, line.find_first_not_of(" \t"));
    if (line.rfind("[build-system]", 0) == 0 || line.rfind("[project]", 0) == 0) {
      return true;
    }
  }
  return false;
}

EntryPointType
detect_entry_point_type(const std::string& name, const CodeView& code)
{
  if (name.ends_with(".sh")) {
    return EntryPointType::command;
  }
  if (code.has("setup.py")) {
    return EntryPointType::python_package;
  }
  if (name.ends_with(".py")) {
    return EntryPointType::python_program;
  }
  return EntryPointType::command;
}

std::optional<std::string>
entry_point_problem(const std::string& name, const CodeView& code)
{
  if (name.empty()) {
    return "is empty; expected the file name of the script in the code directory";
  }
  if (name[0] == '/') {
    return "\"" + name + "\" is absolute; expected a path relative to the code directory";
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto end = name.find('/', start);
    const std::string part = name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part == "..") {
      return "\"" + name + "\" contains '..'; expected a path inside the code directory";
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  if (code.is_directory(name)) {
    return "\"" + name + "\" is a directory; expected a script";
  }
  return std::nullopt;
}

std::string
module_for(const std::string& name)
{
  std::string module = name.ends_with(".py") ? name.substr(0, name.size() - 3) : name;
  for (char& c : module) {
    if (c == '/') {
      c = '.';
    }
  }
  return module;
}

std::vector<std::string>
script_argv(EntryPointType type, const std::string& name, const std::string& python, const std::string& code_dir,
            const std::vector<std::string>& args, PythonLaunch launch)
{
  std::vector<std::string> argv;
  std::vector<std::string> interpreter = {python};
  if (launch == PythonLaunch::mpi4py) {
    interpreter.insert(interpreter.end(), {"-m", "mpi4py"});
  }
  switch (type) {
  case EntryPointType::python_program:
    argv = interpreter;
    argv.push_back(name);
    break;
  case EntryPointType::python_package:
    argv = interpreter;
    argv.insert(argv.end(), {"-m", module_for(name)});
    break;
  case EntryPointType::command:
    // Run directly (its shebang decides), never re-split by a shell.
    argv = {code_dir + "/" + name};
    break;
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::optional<InstallCommand>
install_command(EntryPointType type, const CodeView& code, const std::string& python)
{
  const bool requirements = code.has("requirements.txt");
  const bool pyproject = code.has("pyproject.toml") && is_installable_pyproject(code.read("pyproject.toml"));
  if (type == EntryPointType::python_package || pyproject) {
    InstallCommand c{{python, "-m", "pip", "install", "."}, "InstallModuleError"};
    if (requirements) {
      c.argv.insert(c.argv.end(), {"-r", "requirements.txt"});
    }
    return c;
  }
  if (requirements) {
    return InstallCommand{{python, "-m", "pip", "install", "-r", "requirements.txt"}, "InstallRequirementsError"};
  }
  return std::nullopt;
}

} // namespace launcher
