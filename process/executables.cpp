#include "process/executables.hpp"

#include <sys/stat.h>
#include <unistd.h>

namespace process {

std::optional<std::string>
find_executable(const std::string& name, const std::string& path)
{
  if (name.empty()) {
    return std::nullopt;
  }
  if (name.find('/') != std::string::npos) {
    return name;
  }
  std::size_t start = 0;
  while (true) {
    const auto end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) {
      dir = ".";
    }
    const std::string candidate = dir + "/" + name;
    struct stat st
    {
    };
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (end == std::string::npos) {
      return std::nullopt;
    }
    start = end + 1;
  }
}

std::string
search_path(const env::EnvMap& environment)
{
  const std::string* path = environment.get("PATH");
  return path != nullptr ? *path : k_default_path;
}

std::optional<std::string>
find_executable(const std::string& name, const env::EnvMap& environment)
{
  return find_executable(name, search_path(environment));
}

} // namespace process
