// Renderings of env::Value exactly as CPython 3 prints them. User scripts parse these
// strings, so they must match the reference toolkit byte for byte.
#pragma once

#include "env/json_value.hpp"

#include <string>
#include <string_view>

namespace env {

// repr(float): shortest round-trip digits, exponent form below 1e-4 and from 1e16 on.
std::string py_float_repr(double value);

// repr(value): 'text' strings, True/False/None, [1, 'x'], {'k': 1.5}.
std::string py_repr(const Value& value);

// str(value): the text itself for a string, repr() for everything else.
std::string py_str(const Value& value);

// json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).
std::string py_json_dumps(const Value& value);

// json.dumps(value) with Python's defaults: insertion order, separators (", ", ": "),
// ensure_ascii=True (how the SageMaker SDK writes its JSON files).
std::string py_json_dumps_default(const Value& value);

// json.dumps of a plain string (quoted, \uXXXX-escaped).
std::string py_json_quote(std::string_view utf8);

// str.upper() for UTF-8 text: CPython's full case mapping ("ß" -> "SS").
std::string py_upper(std::string_view utf8);

} // namespace env
