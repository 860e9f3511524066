#include "env/config_error.hpp"

namespace env {

std::string
Problem::describe() const
{
  std::string out = file;
  if (!key.empty()) {
    out += ": key \"" + key + "\"";
  }
  out += ": " + message;
  return out;
}

namespace {

std::string
join_problems(const std::vector<Problem>& problems)
{
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) {
      out += "\n";
    }
    out += p.describe();
  }
  return out;
}

} // namespace

ConfigError::ConfigError(std::vector<Problem> problems)
  : std::runtime_error(join_problems(problems)), m_problems(std::move(problems))
{
}

ConfigError::ConfigError(std::string file, std::string key, std::string message)
  : ConfigError(std::vector<Problem>{Problem{std::move(file), std::move(key), std::move(message)}})
{
}

} // namespace env
