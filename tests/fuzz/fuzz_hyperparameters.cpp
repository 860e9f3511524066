// fuzz_hyperparameters: the input is a hyperparameters.json text. Parsed (valid UTF-8
// only, as read_json_file requires); py_upper on every key; when it is an object,
// decode_hyperparameters and to_cmd_args. Properties:
//  - py_upper is idempotent and maps ASCII keys to ASCII of the same length;
//  - every key lands in exactly one of user / sagemaker (by is_platform_key), in the
//    file's order, and framework_params is sagemaker minus the reserved keys;
//  - a string value that is valid JSON decodes to parse_json(value), any other value
//    stays as it was;
//  - to_cmd_args gives a name and a value for every user key, sorted by key, with
//    "-" for a one-code-point key, "--" for longer ones and "" for the empty key.
#include "env/hyperparameters.hpp"
#include "env/json_value.hpp"
#include "env/py_format.hpp"
#include "fuzz_common.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace {

bool
is_ascii(std::string_view s)
{
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::size_t
code_points(std::string_view s)
{
  return static_cast<std::size_t>(
    std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void
check_upper(const std::string& key)
{
  const std::string upper = env::py_upper(key);
  FUZZ_CHECK(env::py_upper(upper) == upper, "py_upper is not idempotent on " + fuzz::escaped(key));
  if (is_ascii(key)) {
    FUZZ_CHECK(upper.size() == key.size() && is_ascii(upper), "py_upper changed an ASCII key's length: " + fuzz::escaped(key));
  }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view text = fuzz::as_text(data, size);
  if (!env::is_valid_utf8(text)) {
    return 0;
  }
  env::Value raw;
  try {
    raw = env::parse_json(text);
  } catch (const env::JsonError&) {
    return 0;
  }
  for (const auto& key : raw.keys()) {
    check_upper(key);
  }
  if (!raw.is_object()) {
    return 0;
  }

  env::Hyperparameters hps;
  try {
    hps = env::decode_hyperparameters(raw);
  } catch (const env::UndecodableHyperparameter&) {
    return 0; // nested past k_max_json_depth: refused, as the reference fails there
  }
  std::size_t user_at = 0;
  std::size_t sagemaker_at = 0;
  std::size_t framework_at = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::string& key = raw.keys()[i];
    const env::Value& value = raw.items()[i];
    const env::Value* decoded = nullptr;
    if (env::is_platform_key(key)) {
      FUZZ_CHECK(sagemaker_at < hps.sagemaker.size() && hps.sagemaker.keys()[sagemaker_at] == key,
                  "platform key missing from sagemaker, or out of order: " + fuzz::escaped(key));
      decoded = &hps.sagemaker.items()[sagemaker_at++];
      if (!env::is_reserved_key(key)) {
        FUZZ_CHECK(framework_at < hps.framework_params.size() && hps.framework_params.keys()[framework_at] == key &&
                      hps.framework_params.items()[framework_at] == *decoded,
                    "framework key missing from framework_params: " + fuzz::escaped(key));
        ++framework_at;
      }
    } else {
      FUZZ_CHECK(user_at < hps.user.size() && hps.user.keys()[user_at] == key,
                  "user key missing from user, or out of order: " + fuzz::escaped(key));
      decoded = &hps.user.items()[user_at++];
    }
    bool decodes = false;
    if (value.is_string()) {
      try {
        const env::Value expected = env::parse_json(value.text());
        decodes = true;
        FUZZ_CHECK(*decoded == expected, "decoded value differs from parse_json of it: " + fuzz::escaped(key));
      } catch (const env::JsonError&) {
        decodes = false;
      }
    }
    if (!decodes) {
      FUZZ_CHECK(*decoded == value, "a value that is not a JSON text changed: " + fuzz::escaped(key));
    }
  }
  FUZZ_CHECK(user_at == hps.user.size() && sagemaker_at == hps.sagemaker.size() &&
                framework_at == hps.framework_params.size(),
              "decode_hyperparameters invented keys");

  const std::vector<std::string> args = env::to_cmd_args(hps.user);
  FUZZ_CHECK(args.size() == 2 * hps.user.size(), "to_cmd_args did not give a name and a value per key");
  std::vector<std::string> keys = hps.user.keys();
  std::sort(keys.begin(), keys.end());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string& key = keys[i];
    const std::string expected = key.empty() ? "" : (code_points(key) > 1 ? "--" : "-") + key;
    FUZZ_CHECK(args[2 * i] == expected, "to_cmd_args name " + fuzz::escaped(args[2 * i]) + " for key " + fuzz::escaped(key));
    const env::Value& value = *hps.user.find(key);
    if (value.is_null()) {
      FUZZ_CHECK(args[2 * i + 1].empty(), "None did not give an empty argument");
    } else if (!value.is_object()) {
      FUZZ_CHECK(args[2 * i + 1] == env::py_str(value), "to_cmd_args value is not str(value) for " + fuzz::escaped(key));
    }
  }
  return 0;
}
