// fuzz_json: env::parse_json on arbitrary bytes, then every rendering of what it parsed.
// Properties:
//  - is_valid_utf8 never crashes; parse_json (on valid UTF-8 only, its precondition) either
//    returns or throws JsonError with a line and column >= 1;
//  - py_json_dumps is pure printable ASCII (ensure_ascii) and parses back to the same
//    value, object keys sorted (sort_keys=True; NaN == NaN in Value::operator==), and
//    dumping that again gives the same text;
//  - py_repr is valid UTF-8 (CPython escapes lone surrogates, which are not printable);
//  - py_str equals the text for a string and py_repr otherwise.
#include "env/json_value.hpp"
#include "env/py_format.hpp"
#include "fuzz_common.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view text = fuzz::as_text(data, size);
  if (!env::is_valid_utf8(text)) {
    return 0;
  }
  env::Value value;
  try {
    value = env::parse_json(text);
  } catch (const env::JsonError& e) {
    FUZZ_CHECK(e.line >= 1 && e.column >= 1 && e.offset <= size,
                std::string("JsonError with a bad position: ") + e.what());
    return 0;
  }

  const std::string dumped = env::py_json_dumps(value);
  for (const char c : dumped) {
    FUZZ_CHECK(c >= 0x20 && c <= 0x7E, "py_json_dumps wrote a non-printable or non-ASCII byte: " + fuzz::escaped(dumped));
  }
  env::Value back;
  try {
    back = env::parse_json(dumped);
  } catch (const env::JsonError& e) {
    fuzz::fail("py_json_dumps output does not parse (" + std::string(e.what()) + "): " + fuzz::escaped(dumped));
  }
  FUZZ_CHECK(back == fuzz::sorted_keys(value), "parse_json(py_json_dumps(v)) != v: " + fuzz::escaped(dumped));
  FUZZ_CHECK(env::py_json_dumps(back) == dumped, "py_json_dumps is not stable over a round trip: " + fuzz::escaped(dumped));

  const std::string repr = env::py_repr(value);
  FUZZ_CHECK(env::is_valid_utf8(repr), "py_repr is not valid UTF-8: " + fuzz::escaped(repr));
  const std::string str = env::py_str(value);
  FUZZ_CHECK(str == (value.is_string() ? value.text() : repr), "py_str is neither the text nor the repr");
  return 0;
}
