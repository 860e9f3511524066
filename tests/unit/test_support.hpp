// Small helpers shared by the unit tests.
#pragma once

#include <string>
#include <string_view>

namespace test_support {

// `s` with every byte outside printable ASCII shown as \xNN, for readable failure messages.
inline std::string
escaped(std::string_view s)
{
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    }
  }
  return out;
}

} // namespace test_support
