#include "env/config_error.hpp"

namespace env {

namespace {

// Names from a file may hold control characters (a NUL would even cut the message short):
// show them as \xNN.
std::string
printable(const std::string& text)
{
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

} // namespace

std::string
Problem::describe() const
{
  std::string out = printable(file);
  if (!key.empty()) {
    out += ": key \"" + printable(key) + "\"";
  }
  out += ": " + printable(message);
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
