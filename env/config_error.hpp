// The error every bad input ends in: it names the file, the key and what was expected.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace env {

struct Problem
{
  std::string file; // path of the offending file, or the variable/option name
  std::string key;  // JSON-pointer-like path inside it ("/hosts/2"), empty for the whole file
  std::string message;

  std::string describe() const;
};

class ConfigError : public std::runtime_error
{
public:
  explicit ConfigError(std::vector<Problem> problems);
  ConfigError(std::string file, std::string key, std::string message);

  const std::vector<Problem>&
  problems() const
  {
    return m_problems;
  }

private:
  std::vector<Problem> m_problems;
};

} // namespace env
