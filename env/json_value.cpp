#include "env/json_value.hpp"

#include <cmath>
#include <cstdlib>
#include <string>
#include <unordered_map>

namespace env {

Value
Value::boolean(bool b)
{
  Value v;
  v.m_kind = Kind::boolean;
  v.m_bool = b;
  return v;
}

Value
Value::integer(std::string digits)
{
  Value v;
  v.m_kind = Kind::integer;
  v.m_text = std::move(digits);
  return v;
}

Value
Value::integer(long long i)
{
  return integer(std::to_string(i));
}

Value
Value::floating(double d)
{
  Value v;
  v.m_kind = Kind::floating;
  v.m_double = d;
  return v;
}

Value
Value::string(std::string utf8)
{
  Value v;
  v.m_kind = Kind::string;
  v.m_text = std::move(utf8);
  return v;
}

Value
Value::array(std::vector<Value> items)
{
  Value v;
  v.m_kind = Kind::array;
  v.m_items = std::move(items);
  return v;
}

Value
Value::object()
{
  Value v;
  v.m_kind = Kind::object;
  return v;
}

const Value*
Value::find(std::string_view key) const
{
  for (std::size_t i = 0; i < m_keys.size(); ++i) {
    if (m_keys[i] == key) {
      return &m_items[i];
    }
  }
  return nullptr;
}

void
Value::set(std::string key, Value value)
{
  for (std::size_t i = 0; i < m_keys.size(); ++i) {
    if (m_keys[i] == key) {
      m_items[i] = std::move(value);
      return;
    }
  }
  append_unique(std::move(key), std::move(value));
}

void
Value::append_unique(std::string key, Value value)
{
  m_keys.push_back(std::move(key));
  m_items.push_back(std::move(value));
}

bool
Value::truthy() const
{
  switch (m_kind) {
  case Kind::null:
    return false;
  case Kind::boolean:
    return m_bool;
  case Kind::integer:
    return m_text != "0";
  case Kind::floating:
    return m_double != 0.0; // NaN is truthy in Python too
  case Kind::string:
    return !m_text.empty();
  case Kind::array:
  case Kind::object:
    return !m_items.empty();
  }
  return false;
}

const char*
Value::type_name() const
{
  switch (m_kind) {
  case Kind::null:
    return "null";
  case Kind::boolean:
    return "boolean";
  case Kind::integer:
    return "integer";
  case Kind::floating:
    return "number";
  case Kind::string:
    return "string";
  case Kind::array:
    return "list";
  case Kind::object:
    return "object";
  }
  return "?";
}

bool
Value::operator==(const Value& other) const
{
  if (m_kind != other.m_kind) {
    return false;
  }
  switch (m_kind) {
  case Kind::null:
    return true;
  case Kind::boolean:
    return m_bool == other.m_bool;
  case Kind::floating:
    return m_double == other.m_double || (std::isnan(m_double) && std::isnan(other.m_double));
  case Kind::integer:
  case Kind::string:
    return m_text == other.m_text;
  case Kind::array:
  case Kind::object:
    return m_keys == other.m_keys && m_items == other.m_items;
  }
  return false;
}

void
append_utf8(std::string& out, std::uint32_t cp)
{
  // Lone surrogates are kept (as Python does) and stored as 3-byte sequences.
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// Python refuses to convert integers longer than this (sys.int_info.default_max_str_digits);
// json.loads then raises ValueError, so the reference keeps such a value as a raw string.
constexpr std::size_t k_max_int_digits = 4300;

class Parser
{
public:
  explicit Parser(std::string_view text) : m_text(text) {}

  Value
  parse_document()
  {
    skip_whitespace();
    Value v = parse_value(0);
    skip_whitespace();
    if (m_pos != m_text.size()) {
      fail("Extra data");
    }
    return v;
  }

private:
  [[noreturn]] void
  fail(const std::string& what) const
  {
    fail_at(what, m_pos);
  }

  // Python counts characters, not bytes: UTF-8 continuation bytes are skipped.
  [[noreturn]] void
  fail_at(const std::string& what, std::size_t pos, bool too_deep = false) const
  {
    std::size_t line = 1;
    std::size_t column = 1;
    std::size_t chars = 0;
    for (std::size_t i = 0; i < pos && i < m_text.size(); ++i) {
      if ((static_cast<unsigned char>(m_text[i]) & 0xC0) == 0x80) {
        continue;
      }
      ++chars;
      if (m_text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw JsonError(what + ": line " + std::to_string(line) + " column " + std::to_string(column) + " (char " +
                        std::to_string(chars) + ")",
                    chars, line, column, too_deep);
  }

  void
  skip_whitespace()
  {
    while (m_pos < m_text.size() &&
           (m_text[m_pos] == ' ' || m_text[m_pos] == '\t' || m_text[m_pos] == '\n' || m_text[m_pos] == '\r')) {
      ++m_pos;
    }
  }

  bool
  consume_literal(std::string_view literal)
  {
    if (m_text.substr(m_pos, literal.size()) == literal) {
      m_pos += literal.size();
      return true;
    }
    return false;
  }

  Value
  parse_value(int depth)
  {
    if (depth > k_max_json_depth) {
      // Deeper nesting makes Python raise RecursionError; we refuse it with a clear message.
      fail_at("Nesting deeper than " + std::to_string(k_max_json_depth) + " levels", m_pos, true);
    }
    if (m_pos >= m_text.size()) {
      fail("Expecting value");
    }
    const char c = m_text[m_pos];
    switch (c) {
    case '{':
      return parse_object(depth);
    case '[':
      return parse_array(depth);
    case '"':
      return Value::string(parse_string());
    default:
      break;
    }
    if (consume_literal("null")) {
      return {};
    }
    if (consume_literal("true")) {
      return Value::boolean(true);
    }
    if (consume_literal("false")) {
      return Value::boolean(false);
    }
    if (consume_literal("NaN")) {
      return Value::floating(std::nan(""));
    }
    if (consume_literal("Infinity")) {
      return Value::floating(HUGE_VAL);
    }
    if (consume_literal("-Infinity")) {
      return Value::floating(-HUGE_VAL);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      return parse_number();
    }
    fail("Expecting value");
  }

  static bool
  is_digit(char c)
  {
    return c >= '0' && c <= '9';
  }

  Value
  parse_number()
  {
    // Python's NUMBER_RE: (-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?
    const std::size_t start = m_pos;
    if (m_text[m_pos] == '-') {
      ++m_pos;
    }
    if (m_pos >= m_text.size() || !is_digit(m_text[m_pos])) {
      m_pos = start;
      fail("Expecting value");
    }
    if (m_text[m_pos] == '0') {
      ++m_pos;
    } else {
      while (m_pos < m_text.size() && is_digit(m_text[m_pos])) {
        ++m_pos;
      }
    }
    const std::size_t int_end = m_pos;
    bool is_float = false;
    if (m_pos + 1 < m_text.size() && m_text[m_pos] == '.' && is_digit(m_text[m_pos + 1])) {
      is_float = true;
      m_pos += 2;
      while (m_pos < m_text.size() && is_digit(m_text[m_pos])) {
        ++m_pos;
      }
    }
    if (m_pos < m_text.size() && (m_text[m_pos] == 'e' || m_text[m_pos] == 'E')) {
      std::size_t p = m_pos + 1;
      if (p < m_text.size() && (m_text[p] == '+' || m_text[p] == '-')) {
        ++p;
      }
      if (p < m_text.size() && is_digit(m_text[p])) {
        is_float = true;
        while (p < m_text.size() && is_digit(m_text[p])) {
          ++p;
        }
        m_pos = p;
      }
    }
    const std::string literal(m_text.substr(start, m_pos - start));
    if (is_float) {
      return Value::floating(std::strtod(literal.c_str(), nullptr));
    }
    std::string digits(m_text.substr(start, int_end - start));
    const std::size_t ndigits = digits.size() - (digits[0] == '-' ? 1 : 0);
    if (ndigits > k_max_int_digits) {
      m_pos = start;
      fail("Integer longer than " + std::to_string(k_max_int_digits) + " digits");
    }
    if (digits == "-0") {
      digits = "0";
    }
    return Value::integer(std::move(digits));
  }

  unsigned
  parse_hex4()
  {
    const std::size_t escape_at = m_pos - 1; // Python points at the 'u'
    if (m_pos + 4 > m_text.size()) {
      fail_at("Invalid \\uXXXX escape", escape_at);
    }
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = m_text[m_pos + static_cast<std::size_t>(i)];
      v <<= 4;
      if (h >= '0' && h <= '9') {
        v |= static_cast<unsigned>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= static_cast<unsigned>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= static_cast<unsigned>(h - 'A' + 10);
      } else {
        fail_at("Invalid \\uXXXX escape", escape_at);
      }
    }
    m_pos += 4;
    return v;
  }

  std::string
  parse_string()
  {
    const std::size_t start = m_pos;
    ++m_pos; // opening quote
    std::string out;
    while (true) {
      if (m_pos >= m_text.size()) {
        fail_at("Unterminated string starting at", start);
      }
      const auto c = static_cast<unsigned char>(m_text[m_pos]);
      if (c == '"') {
        ++m_pos;
        return out;
      }
      if (c < 0x20) {
        fail("Invalid control character at");
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++m_pos;
        continue;
      }
      ++m_pos;
      if (m_pos >= m_text.size()) {
        fail_at("Unterminated string starting at", start);
      }
      const char e = m_text[m_pos++];
      switch (e) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        std::uint32_t cp = parse_hex4();
        // A high surrogate followed by \u low surrogate forms one code point.
        if (cp >= 0xD800 && cp <= 0xDBFF && m_text.substr(m_pos, 2) == "\\u") {
          const std::size_t save = m_pos;
          m_pos += 2;
          const unsigned low = parse_hex4();
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else {
            m_pos = save;
          }
        }
        append_utf8(out, cp);
        break;
      }
      default:
        fail_at("Invalid \\escape", m_pos - 2);
      }
    }
  }

  Value
  parse_array(int depth)
  {
    ++m_pos;
    Value arr = Value::array();
    skip_whitespace();
    if (m_pos < m_text.size() && m_text[m_pos] == ']') {
      ++m_pos;
      return arr;
    }
    while (true) {
      skip_whitespace();
      arr.items().push_back(parse_value(depth + 1));
      skip_whitespace();
      if (m_pos < m_text.size() && m_text[m_pos] == ',') {
        ++m_pos;
        continue;
      }
      if (m_pos < m_text.size() && m_text[m_pos] == ']') {
        ++m_pos;
        return arr;
      }
      fail("Expecting ',' delimiter");
    }
  }

  Value
  parse_object(int depth)
  {
    ++m_pos;
    Value obj = Value::object();
    // Index used to merge duplicate keys without quadratic cost on large objects.
    std::unordered_map<std::string, std::size_t> index;
    skip_whitespace();
    if (m_pos < m_text.size() && m_text[m_pos] == '}') {
      ++m_pos;
      return obj;
    }
    while (true) {
      skip_whitespace();
      if (m_pos >= m_text.size() || m_text[m_pos] != '"') {
        fail("Expecting property name enclosed in double quotes");
      }
      std::string key = parse_string();
      skip_whitespace();
      if (m_pos >= m_text.size() || m_text[m_pos] != ':') {
        fail("Expecting ':' delimiter");
      }
      ++m_pos;
      skip_whitespace();
      Value v = parse_value(depth + 1);
      auto [it, inserted] = index.emplace(key, obj.size());
      if (inserted) {
        obj.append_unique(std::move(key), std::move(v));
      } else {
        obj.items()[it->second] = std::move(v);
      }
      skip_whitespace();
      if (m_pos < m_text.size() && m_text[m_pos] == ',') {
        ++m_pos;
        continue;
      }
      if (m_pos < m_text.size() && m_text[m_pos] == '}') {
        ++m_pos;
        return obj;
      }
      fail("Expecting ',' delimiter");
    }
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
};

} // namespace

Value
parse_json(std::string_view text)
{
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    throw JsonError("Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)", 0, 1, 1);
  }
  return Parser(text).parse_document();
}

bool
is_valid_utf8(std::string_view text)
{
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > text.size()) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

} // namespace env
