// The launcher's own state files (<base>/.smlaunch/host.json, job-outcome.json, ...):
// written whole or not at all, so a reader on the same host never sees half a file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace base {

// Whether the file must also survive a crash of the machine (fsync before the rename), or
// only be seen whole by every reader on this machine (the rename alone).
enum class Durability {
  crash_safe,
  atomic_only,
};

// Write `text` to a temporary file in `path`'s folder (created when missing), fsync it
// when `durability` asks, then rename it over `path`. Throws SystemError naming the file
// and the failed call.
void write_file_atomically(const std::string& path, std::string_view text, mode_t mode,
                           Durability durability = Durability::crash_safe);

// `document` as JSON, atomically (above). Strings must be valid UTF-8: nlohmann throws
// on anything else, and a caller that may hold bytes (environment values) stores them
// with bytes_to_json() instead.
void write_json_atomically(const std::string& path, const nlohmann::ordered_json& document, mode_t mode,
                           Durability durability = Durability::crash_safe);

// A state file's JSON; throws std::runtime_error naming the file and the cause.
nlohmann::json read_json_state(const std::string& path);

// Bytes that need not be UTF-8 (an environment value may be any bytes but NUL), without
// loss: a string when they are valid UTF-8, else {"hex": "<two digits per byte>"}.
nlohmann::json bytes_to_json(const std::string& bytes);
// The inverse; throws std::runtime_error when `value` is neither form.
std::string bytes_from_json(const nlohmann::json& value);

} // namespace base
