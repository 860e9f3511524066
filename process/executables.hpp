// Looking a program up in a PATH value, as execvp() would.
#pragma once

#include <optional>
#include <string>

namespace process {

// The first `dir/name` in the ':'-separated `path` that is executable; `name` itself
// when it holds a '/'; nullopt when there is none.
std::optional<std::string> find_executable(const std::string& name, const std::string& path);

// PATH when a variable map has none (execvp's own default).
inline constexpr const char* k_default_path = "/usr/local/bin:/usr/bin:/bin";

} // namespace process
