// Looking a program up in a PATH value, as execvp() would.
#pragma once

#include "env/env_map.hpp"

#include <optional>
#include <string>

namespace process {

// The first `dir/name` in the ':'-separated `path` that is executable; `name` itself
// when it holds a '/'; nullopt when there is none.
std::optional<std::string> find_executable(const std::string& name, const std::string& path);

// PATH when a variable map has none (execvp's own default).
inline constexpr const char* k_default_path = "/usr/local/bin:/usr/bin:/bin";

// `environment`'s PATH, or k_default_path when it has none.
std::string search_path(const env::EnvMap& environment);

// find_executable() along search_path(environment).
std::optional<std::string> find_executable(const std::string& name, const env::EnvMap& environment);

} // namespace process
