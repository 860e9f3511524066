// An ordered set of environment variables: children get exactly this map (no setenv()
// on the launcher), and the order is kept so logs and `mpirun -x` lists are stable.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace env {

class EnvMap
{
public:
  using Entry = std::pair<std::string, std::string>;

  static EnvMap from_environ(char** envp);

  // Insert, or replace the value in place (a dict's semantics).
  void set(std::string name, std::string value);
  void erase(std::string_view name);
  const std::string* get(std::string_view name) const;
  bool
  contains(std::string_view name) const
  {
    return get(name) != nullptr;
  }

  const std::vector<Entry>&
  entries() const
  {
    return m_entries;
  }
  std::size_t
  size() const
  {
    return m_entries.size();
  }

  // "NAME=value" strings for execve().
  std::vector<std::string> to_envp() const;

private:
  // Looked up by std::string_view without making a std::string of it.
  struct NameHash
  {
    using is_transparent = void;
    std::size_t
    operator()(std::string_view name) const noexcept
    {
      return std::hash<std::string_view>{}(name);
    }
  };
  std::vector<Entry> m_entries;
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> m_index; // name -> position in m_entries
};

// True when a variable's value must never be shown: its name contains KEY, SECRET,
// TOKEN or PASSWORD (case-insensitive).
bool is_secret_name(std::string_view name);

// The values of `env` that must never be shown (see is_secret_name), longest first.
std::vector<std::string> secret_values(const EnvMap& env);

// Replace every secret value of `env` that occurs in `text` with "****".
std::string redact_secrets(std::string text, const EnvMap& env);
std::string redact_secrets(std::string text, const std::vector<std::string>& secrets);

} // namespace env
