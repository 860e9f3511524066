// A JSON value with Python's semantics, so that smlaunch reads and renders config
// exactly as the reference toolkit (json.loads / json.dumps / str()) does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace env {

class Value
{
public:
  enum class Kind { null, boolean, integer, floating, string, array, object };

  Value() = default;
  static Value boolean(bool b);
  // `digits` is a canonical decimal integer of any size ("-12", "0").
  static Value integer(std::string digits);
  static Value integer(long long i);
  static Value floating(double d);
  static Value string(std::string utf8);
  static Value array(std::vector<Value> items = {});
  static Value object();

  Kind
  kind() const
  {
    return m_kind;
  }
  bool
  is_null() const
  {
    return m_kind == Kind::null;
  }
  bool
  is_string() const
  {
    return m_kind == Kind::string;
  }
  bool
  is_array() const
  {
    return m_kind == Kind::array;
  }
  bool
  is_object() const
  {
    return m_kind == Kind::object;
  }

  bool
  as_bool() const
  {
    return m_bool;
  }
  double
  as_double() const
  {
    return m_double;
  }
  // The UTF-8 text of a string, or the digits of an integer.
  const std::string&
  text() const
  {
    return m_text;
  }

  // Arrays: the items. Objects: the values, in insertion order (see keys()).
  const std::vector<Value>&
  items() const
  {
    return m_items;
  }
  std::vector<Value>&
  items()
  {
    return m_items;
  }
  const std::vector<std::string>&
  keys() const
  {
    return m_keys;
  }
  std::size_t
  size() const
  {
    return m_items.size();
  }

  // Object access; find() returns nullptr when the key is absent.
  const Value* find(std::string_view key) const;
  // Insert or replace, keeping the position of the first insertion (as a dict does).
  void set(std::string key, Value value);
  // Append without checking for a duplicate key (the caller guarantees uniqueness).
  void append_unique(std::string key, Value value);

  // Python's bool(value).
  bool truthy() const;
  // The JSON type name, for error messages: "null", "boolean", "integer", "number",
  // "string", "list" or "object" (not Python's names).
  const char* type_name() const;

  bool operator==(const Value& other) const;

private:
  Kind m_kind = Kind::null;
  bool m_bool = false;
  double m_double = 0.0;
  std::string m_text;
  std::vector<std::string> m_keys;
  std::vector<Value> m_items;
};

struct JsonError : std::runtime_error
{
  JsonError(const std::string& message, std::size_t offset_, std::size_t line_, std::size_t column_,
            bool too_deep_ = false)
      : std::runtime_error(message), offset(offset_), line(line_), column(column_), too_deep(too_deep_)
  {
  }
  std::size_t offset;
  std::size_t line;
  std::size_t column;
  bool too_deep; // nested past k_max_json_depth: Python raises RecursionError, not a JSON error
};

// The deepest nesting parse_json() accepts. Python 3.11's json.loads raises RecursionError
// from 996 levels at a module's top level, a few levels sooner inside the toolkit.
constexpr int k_max_json_depth = 980;

// Parse `text` as Python's json.loads does: NaN/Infinity accepted, integers of any size
// (up to Python's 4300-digit limit), duplicate keys keep the last value, control
// characters inside strings rejected. `text` must be valid UTF-8; throws JsonError.
Value parse_json(std::string_view text);

// Append code point `cp` as UTF-8 (a lone surrogate as its 3-byte form, as Python keeps it).
void append_utf8(std::string& out, std::uint32_t cp);

// True when `text` is valid UTF-8 (surrogate code points excluded).
bool is_valid_utf8(std::string_view text);

} // namespace env
