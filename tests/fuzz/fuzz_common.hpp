// Helpers shared by the libFuzzer targets: input splitting and property failures.
#pragma once

#include "env/json_value.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

// Check a property; the message (a std::string expression) is built only on failure.
#define FUZZ_CHECK(condition, message)                                                                                 \
  do {                                                                                                                 \
    if (!(condition)) {                                                                                                \
      ::fuzz::fail(message);                                                                                           \
    }                                                                                                                  \
  } while (false)

namespace fuzz {

inline std::string_view
as_text(const std::uint8_t* data, std::size_t size)
{
  return {reinterpret_cast<const char*>(data), size};
}

// Split `text` at each `separator`, into at most `max_parts` parts (the last keeps the rest).
inline std::vector<std::string_view>
split(std::string_view text, char separator, std::size_t max_parts)
{
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const auto at = text.find(separator);
    if (at == std::string_view::npos) {
      break;
    }
    parts.push_back(text.substr(0, at));
    text.remove_prefix(at + 1);
  }
  parts.push_back(text);
  return parts;
}

// Printable form of arbitrary bytes for failure messages.
inline std::string
escaped(std::string_view bytes)
{
  std::string out;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// A property does not hold: print why and abort, so libFuzzer saves the input.
[[noreturn]] inline void
fail(const std::string& what)
{
  std::fprintf(stderr, "\n==FUZZ PROPERTY FAILED== %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}


// `value` with every object's keys in byte order (as py_json_dumps writes them): what a
// parse of the dumped text must give back.
inline env::Value
sorted_keys(const env::Value& value)
{
  if (value.is_array()) {
    std::vector<env::Value> items;
    items.reserve(value.size());
    for (const auto& item : value.items()) {
      items.push_back(sorted_keys(item));
    }
    return env::Value::array(std::move(items));
  }
  if (!value.is_object()) {
    return value;
  }
  std::vector<std::size_t> order(value.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return value.keys()[a] < value.keys()[b]; });
  env::Value out = env::Value::object();
  for (const std::size_t i : order) {
    out.append_unique(value.keys()[i], sorted_keys(value.items()[i]));
  }
  return out;
}

} // namespace fuzz
