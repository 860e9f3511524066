#include "env/py_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fmt/format.h>
#include <vector>

namespace env {

namespace {

// Decode one code point from WTF-8 (UTF-8 that may hold lone surrogates); invalid bytes
// decode to themselves so that nothing is lost.
std::uint32_t
next_code_point(std::string_view s, std::size_t& i)
{
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 1;
  std::uint32_t cp = c;
  if (c >= 0xF0 && c < 0xF8) {
    len = 4;
    cp = c & 0x07u;
  } else if (c >= 0xE0) {
    len = 3;
    cp = c & 0x0Fu;
  } else if (c >= 0xC0) {
    len = 2;
    cp = c & 0x1Fu;
  }
  if (len == 1 || i + len > s.size()) {
    ++i;
    return c;
  }
  for (std::size_t k = 1; k < len; ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  }
  i += len;
  return cp;
}

void
append_hex(std::string& out, std::uint32_t value, int digits)
{
  static const char* hex = "0123456789abcdef";
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) {
    out += hex[(value >> shift) & 0xF];
  }
}

struct CodePointRange
{
  std::uint32_t first;
  std::uint32_t last;
};

struct UpperMapping
{
  std::uint32_t code_point;
  std::uint32_t upper[3]; // 0-terminated when shorter
};

#include "env/unicode_tables.inc"

// str.isprintable(), from CPython's own Unicode database (scripts/gen_unicode_tables.py).
bool
is_printable(std::uint32_t cp)
{
  const auto* end = std::end(k_non_printable);
  const auto* it = std::upper_bound(std::begin(k_non_printable), end, cp,
                                    [](std::uint32_t v, const CodePointRange& r) { return v < r.first; });
  return it == std::begin(k_non_printable) || cp > (it - 1)->last;
}

std::string
py_str_repr(std::string_view s)
{
  // CPython picks single quotes unless the text has ' and no ".
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  std::size_t i = 0;
  while (i < s.size()) {
    const std::uint32_t cp = next_code_point(s, i);
    if (cp == static_cast<std::uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (is_printable(cp)) {
      append_utf8(out, cp);
    } else if (cp <= 0xFF) {
      out += "\\x";
      append_hex(out, cp, 2);
    } else if (cp <= 0xFFFF) {
      out += "\\u";
      append_hex(out, cp, 4);
    } else {
      out += "\\U";
      append_hex(out, cp, 8);
    }
  }
  out += quote;
  return out;
}

void
repr_into(std::string& out, const Value& v)
{
  switch (v.kind()) {
  case Value::Kind::null:
    out += "None";
    return;
  case Value::Kind::boolean:
    out += v.as_bool() ? "True" : "False";
    return;
  case Value::Kind::integer:
    out += v.text();
    return;
  case Value::Kind::floating:
    out += py_float_repr(v.as_double());
    return;
  case Value::Kind::string:
    out += py_str_repr(v.text());
    return;
  case Value::Kind::array:
    out += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) {
        out += ", ";
      }
      repr_into(out, v.items()[i]);
    }
    out += ']';
    return;
  case Value::Kind::object:
    // A dict's repr keeps insertion order.
    out += '{';
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) {
        out += ", ";
      }
      out += py_str_repr(v.keys()[i]);
      out += ": ";
      repr_into(out, v.items()[i]);
    }
    out += '}';
    return;
  }
}

void
json_quote_into(std::string& out, std::string_view s)
{
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    // A run of printable ASCII that needs no escape goes in at once (most of SM_TRAINING_ENV).
    std::size_t plain = i;
    while (plain < s.size() && s[plain] >= 0x20 && s[plain] <= 0x7E && s[plain] != '"' && s[plain] != '\\') {
      ++plain;
    }
    if (plain > i) {
      out.append(s, i, plain - i);
      i = plain;
      continue;
    }
    const std::uint32_t cp = next_code_point(s, i);
    switch (cp) {
    case '"':
      out += "\\\"";
      continue;
    case '\\':
      out += "\\\\";
      continue;
    case '\n':
      out += "\\n";
      continue;
    case '\r':
      out += "\\r";
      continue;
    case '\t':
      out += "\\t";
      continue;
    case '\b':
      out += "\\b";
      continue;
    case '\f':
      out += "\\f";
      continue;
    default:
      break;
    }
    // ensure_ascii escapes everything outside ' '..'~', lowercase hex, surrogate pairs.
    if (cp >= 0x20 && cp <= 0x7E) {
      out += static_cast<char>(cp);
    } else if (cp >= 0x10000) {
      const std::uint32_t v = cp - 0x10000;
      out += "\\u";
      append_hex(out, 0xD800 + (v >> 10), 4);
      out += "\\u";
      append_hex(out, 0xDC00 + (v & 0x3FF), 4);
    } else {
      out += "\\u";
      append_hex(out, cp, 4);
    }
  }
  out += '"';
}

void
dumps_into(std::string& out, const Value& v, bool compact_sorted)
{
  switch (v.kind()) {
  case Value::Kind::null:
    out += "null";
    return;
  case Value::Kind::boolean:
    out += v.as_bool() ? "true" : "false";
    return;
  case Value::Kind::integer:
    out += v.text();
    return;
  case Value::Kind::floating: {
    const double d = v.as_double();
    if (std::isnan(d)) {
      out += "NaN";
    } else if (std::isinf(d)) {
      out += d > 0 ? "Infinity" : "-Infinity";
    } else {
      out += py_float_repr(d);
    }
    return;
  }
  case Value::Kind::string:
    json_quote_into(out, v.text());
    return;
  case Value::Kind::array:
    out += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) {
        out += compact_sorted ? "," : ", ";
      }
      dumps_into(out, v.items()[i], compact_sorted);
    }
    out += ']';
    return;
  case Value::Kind::object: {
    // sort_keys: Python compares str by code point, which is UTF-8 byte order.
    std::vector<std::size_t> order(v.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      order[i] = i;
    }
    if (compact_sorted) {
      std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v.keys()[a] < v.keys()[b]; });
    }
    out += '{';
    bool first = true;
    for (std::size_t i : order) {
      if (!first) {
        out += compact_sorted ? "," : ", ";
      }
      first = false;
      json_quote_into(out, v.keys()[i]);
      out += compact_sorted ? ":" : ": ";
      dumps_into(out, v.items()[i], compact_sorted);
    }
    out += '}';
    return;
  }
  }
}

} // namespace

std::string
py_float_repr(double value)
{
  if (std::isnan(value)) {
    return "nan";
  }
  if (std::isinf(value)) {
    return value > 0 ? "inf" : "-inf";
  }
  if (value == 0.0) {
    return std::signbit(value) ? "-0.0" : "0.0";
  }
  // fmt's shortest form holds the shortest digits that round-trip (Dragonbox), like
  // Python's repr; only its layout differs. (std::to_chars would do as well, but its
  // object brings libm into the binary for one long double function.)
  char buf[64];
  const auto result = fmt::format_to_n(buf, sizeof(buf), "{}", value);
  const std::string_view text(buf, std::min(result.size, sizeof(buf)));
  const std::size_t e_pos = std::min(text.find_first_of("eE"), text.size());
  int exponent = 0;
  if (e_pos < text.size()) {
    const char* first = text.data() + e_pos + 1 + (text[e_pos + 1] == '+' ? 1 : 0);
    std::from_chars(first, text.data() + text.size(), exponent);
  }
  std::string sign;
  std::string digits;
  int decpt = exponent; // value = 0.DIGITS * 10^decpt
  bool before_point = true;
  for (const char c : text.substr(0, e_pos)) {
    if (c == '-') {
      sign = "-";
    } else if (c == '.') {
      before_point = false;
    } else if (c == '0' && digits.empty()) {
      decpt -= before_point ? 0 : 1; // a leading zero: 0.001 is 0.1 * 10^-2
    } else {
      digits += c;
      decpt += before_point ? 1 : 0;
    }
  }
  while (digits.size() > 1 && digits.back() == '0') {
    digits.pop_back(); // zeros of the layout ("1000.0"), not of the digits
  }
  const int ndigits = static_cast<int>(digits.size());
  std::string out = sign;
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (ndigits > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    const int e = decpt - 1;
    out += e < 0 ? '-' : '+';
    const std::string e_digits = std::to_string(e < 0 ? -e : e);
    if (e_digits.size() < 2) {
      out += '0';
    }
    out += e_digits;
  } else if (decpt <= 0) {
    out += "0.";
    out += std::string(static_cast<std::size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= ndigits) {
    out += digits;
    out += std::string(static_cast<std::size_t>(decpt - ndigits), '0');
    out += ".0";
  } else {
    out += digits.substr(0, static_cast<std::size_t>(decpt));
    out += '.';
    out += digits.substr(static_cast<std::size_t>(decpt));
  }
  return out;
}

std::string
py_repr(const Value& value)
{
  std::string out;
  repr_into(out, value);
  return out;
}

std::string
py_str(const Value& value)
{
  return value.is_string() ? value.text() : py_repr(value);
}

std::string
py_json_dumps(const Value& value)
{
  std::string out;
  dumps_into(out, value, true);
  return out;
}

std::string
py_json_dumps_default(const Value& value)
{
  std::string out;
  dumps_into(out, value, false);
  return out;
}

std::string
py_json_quote(std::string_view utf8)
{
  std::string out;
  json_quote_into(out, utf8);
  return out;
}

std::string
py_upper(std::string_view utf8)
{
  std::string out;
  out.reserve(utf8.size());
  std::size_t i = 0;
  while (i < utf8.size()) {
    const std::uint32_t cp = next_code_point(utf8, i);
    if (cp < 0x80) {
      out += static_cast<char>((cp >= 'a' && cp <= 'z') ? cp - 32 : cp);
      continue;
    }
    const auto* end = std::end(k_upper);
    const auto* it = std::lower_bound(std::begin(k_upper), end, cp,
                                      [](const UpperMapping& m, std::uint32_t v) { return m.code_point < v; });
    if (it != end && it->code_point == cp) {
      for (std::uint32_t u : it->upper) {
        if (u != 0) {
          append_utf8(out, u);
        }
      }
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

} // namespace env
