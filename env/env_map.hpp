// An ordered set of environment variables: children get exactly this map (no setenv()
// on the launcher), and the order is kept so logs and `mpirun -x` lists are stable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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

  // Every entry of `other` set in order, moved (a dict's update()).
  void update(EnvMap&& other);

  // "NAME=value" strings for execve().
  std::vector<std::string> to_envp() const;

private:
  // The slot of m_index that holds `name`, or the empty slot where it would go.
  std::size_t find_slot(std::string_view name) const;
  // m_index sized for `count` entries (at most half full) and filled from m_entries.
  void rebuild_index(std::size_t count);

  std::vector<Entry> m_entries;
  // Open addressing over m_entries (position + 1; 0 is an empty slot), a power of two in
  // size: a start sets some 300 variables, and a node and a copy of the name per entry
  // were a third of the launcher's allocations.
  std::vector<std::uint32_t> m_index;
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
