#include "env/env_map.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

namespace env {

EnvMap
EnvMap::from_environ(char** envp)
{
  EnvMap map;
  std::size_t count = 0;
  for (char** p = envp; p != nullptr && *p != nullptr; ++p) {
    ++count;
  }
  map.m_entries.reserve(count);
  map.rebuild_index(count);
  for (char** p = envp; p != nullptr && *p != nullptr; ++p) {
    std::string_view entry(*p);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      continue;
    }
    map.set(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return map;
}

std::size_t
EnvMap::find_slot(std::string_view name) const
{
  // At most half full, so an empty slot ends every probe.
  const std::size_t mask = m_index.size() - 1;
  const std::size_t hash = std::hash<std::string_view>{}(name);
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const std::uint32_t at = m_index[i];
    if (at == 0 || m_entries[at - 1].first == name) {
      return i;
    }
  }
}

void
EnvMap::rebuild_index(std::size_t count)
{
  std::size_t slots = 16;
  while (slots < 2 * count) {
    slots *= 2;
  }
  m_index.assign(slots, 0);
  for (std::size_t i = 0; i < m_entries.size(); ++i) {
    m_index[find_slot(m_entries[i].first)] = static_cast<std::uint32_t>(i + 1);
  }
}

void
EnvMap::set(std::string name, std::string value)
{
  if (m_index.size() < 2 * (m_entries.size() + 1)) {
    rebuild_index(2 * (m_entries.size() + 1));
  }
  std::uint32_t& at = m_index[find_slot(name)];
  if (at != 0) {
    m_entries[at - 1].second = std::move(value);
    return;
  }
  m_entries.emplace_back(std::move(name), std::move(value));
  at = static_cast<std::uint32_t>(m_entries.size());
}

void
EnvMap::update(EnvMap&& other)
{
  for (auto& [name, value] : other.m_entries) {
    set(std::move(name), std::move(value));
  }
  other.m_entries.clear();
  other.m_index.clear();
}

void
EnvMap::erase(std::string_view name)
{
  std::erase_if(m_entries, [&](const Entry& e) { return e.first == name; });
  rebuild_index(m_entries.size());
}

const std::string*
EnvMap::get(std::string_view name) const
{
  if (m_index.empty()) {
    return nullptr;
  }
  const std::uint32_t at = m_index[find_slot(name)];
  return at == 0 ? nullptr : &m_entries[at - 1].second;
}

std::vector<std::string>
EnvMap::to_envp() const
{
  std::vector<std::string> out;
  out.reserve(m_entries.size());
  for (const auto& [k, v] : m_entries) {
    std::string& line = out.emplace_back();
    line.reserve(k.size() + 1 + v.size()); // one allocation, not one per operator+
    line.append(k).append(1, '=').append(v);
  }
  return out;
}

bool
is_secret_name(std::string_view name)
{
  // Whole words only (split at '_' and any other non-alphanumeric character), so that
  // AWS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID and HF_TOKEN are secrets but SM_HP_TOKENIZER
  // and SM_HP_MONKEY are not. Compared in place: every variable of every start passes here.
  const auto is_secret_word = [](std::string_view w) {
    const auto is = [&](std::string_view secret) {
      return w.size() == secret.size() && std::equal(w.begin(), w.end(), secret.begin(), [](char a, char b) {
               return std::toupper(static_cast<unsigned char>(a)) == b;
             });
    };
    return is("KEY") || is("SECRET") || is("TOKEN") || is("PASSWORD") || is("CREDENTIALS");
  };
  std::size_t start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || std::isalnum(static_cast<unsigned char>(name[i])) == 0) {
      if (is_secret_word(name.substr(start, i - start))) {
        return true;
      }
      start = i + 1;
    }
  }
  return false;
}

std::vector<std::string>
secret_values(const EnvMap& env)
{
  // Values shorter than 4 bytes ("1", "true") would redact unrelated text.
  constexpr std::size_t k_min_secret_length = 4;
  std::vector<std::string> secrets;
  for (const auto& [name, value] : env.entries()) {
    if (value.size() >= k_min_secret_length && is_secret_name(name)) {
      secrets.push_back(value);
    }
  }
  // Longest first, so a secret that contains another is hidden whole.
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return secrets;
}

std::string
redact_secrets(std::string text, const std::vector<std::string>& secrets)
{
  for (const auto& value : secrets) {
    for (auto pos = text.find(value); pos != std::string::npos; pos = text.find(value, pos + 4)) {
      text.replace(pos, value.size(), "****");
    }
  }
  return text;
}

std::string
redact_secrets(std::string text, const EnvMap& env)
{
  return redact_secrets(std::move(text), secret_values(env));
}

} // namespace env
