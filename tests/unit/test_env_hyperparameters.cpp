// Hyperparameters: decoding (json.loads or the raw string), the platform/user split, and
// mapping.to_cmd_args. Expected values come from CPython 3.11 running the reference's
// read_hyperparameters / split_by_criteria / to_cmd_args (see
// tests/unit/gen_training_env_expectations.py for the Python those one-liners call).
#include "env/hyperparameters.hpp"
#include "env/json_value.hpp"
#include "env/py_format.hpp"

#include "tests/unit/test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

using env::Value;
using namespace std::string_view_literals;
using Strings = std::vector<std::string>;

using test_support::escaped;

// ---------------------------------------------------------------------------------------
// decode_hyperparameter
// ---------------------------------------------------------------------------------------

struct DecodeCase
{
  std::string_view raw;
  Value::Kind kind;
  std::string_view repr; // repr() of the decoded value
  bool kept_raw;         // json.loads failed and the raw string was kept
};

// def dec(v):
//     try: return json.loads(v)
//     except (ValueError, TypeError): return v
// print(type(dec(R)).__name__, repr(dec(R)), isinstance(dec(R), str) and dec(R) == R)
const DecodeCase k_decode_cases[] = {
    {"10"sv, Value::Kind::integer, "10"sv, false},
    {"0.001"sv, Value::Kind::floating, "0.001"sv, false},
    {"1.50"sv, Value::Kind::floating, "1.5"sv, false},
    {"1e16"sv, Value::Kind::floating, "1e+16"sv, false},
    {" 5 "sv, Value::Kind::integer, "5"sv, false},
    {"true"sv, Value::Kind::boolean, "True"sv, false},
    {"false"sv, Value::Kind::boolean, "False"sv, false},
    {"null"sv, Value::Kind::null, "None"sv, false},
    {"NaN"sv, Value::Kind::floating, "nan"sv, false},
    {"Infinity"sv, Value::Kind::floating, "inf"sv, false},
    {"-Infinity"sv, Value::Kind::floating, "-inf"sv, false},
    {"[1, \"x\"]"sv, Value::Kind::array, "[1, 'x']"sv, false},
    {"{\"b\": 1, \"a\": {\"z\": true}}"sv, Value::Kind::object, "{'b': 1, 'a': {'z': True}}"sv, false},
    {"True"sv, Value::Kind::string, "'True'"sv, true},
    {"False"sv, Value::Kind::string, "'False'"sv, true},
    {"None"sv, Value::Kind::string, "'None'"sv, true},
    {"007"sv, Value::Kind::string, "'007'"sv, true},
    {"some text"sv, Value::Kind::string, "'some text'"sv, true},
    {""sv, Value::Kind::string, "''"sv, true},
    {" "sv, Value::Kind::string, "' '"sv, true},
    {"\"quoted\""sv, Value::Kind::string, "'quoted'"sv, false},
    {"\"\""sv, Value::Kind::string, "''"sv, false},
    {"'single'"sv, Value::Kind::string, "\"'single'\""sv, true},
    {"01"sv, Value::Kind::string, "'01'"sv, true},
    {"1."sv, Value::Kind::string, "'1.'"sv, true},
    {".5"sv, Value::Kind::string, "'.5'"sv, true},
    {"-0"sv, Value::Kind::integer, "0"sv, false},
    {"-0.0"sv, Value::Kind::floating, "-0.0"sv, false},
    {"1e400"sv, Value::Kind::floating, "inf"sv, false},
    {"\"\\u00e9\""sv, Value::Kind::string, "'é'"sv, false},
    {"é"sv, Value::Kind::string, "'é'"sv, true},
    {"\"a b\""sv, Value::Kind::string, "'a b'"sv, false},
    {"a b"sv, Value::Kind::string, "'a b'"sv, true},
    {"123456789012345678901234567890"sv, Value::Kind::integer, "123456789012345678901234567890"sv, false},
    {"[1,]"sv, Value::Kind::string, "'[1,]'"sv, true},
    {"{'a':1}"sv, Value::Kind::string, "\"{'a':1}\""sv, true},
    {"\"a\nb\""sv, Value::Kind::string, "'\"a\\nb\"'"sv, true},
    {"\357\273\2775"sv, Value::Kind::string, "'\\ufeff5'"sv, true},
    {"s3://bucket/key"sv, Value::Kind::string, "'s3://bucket/key'"sv, true},
    {"\"s3://bucket/key\""sv, Value::Kind::string, "'s3://bucket/key'"sv, false},
    {"train.py"sv, Value::Kind::string, "'train.py'"sv, true},
    {"\"train.py\""sv, Value::Kind::string, "'train.py'"sv, false},
    {"nan"sv, Value::Kind::string, "'nan'"sv, true},
    {"inf"sv, Value::Kind::string, "'inf'"sv, true},
    {"1 2"sv, Value::Kind::string, "'1 2'"sv, true},
    {"[]"sv, Value::Kind::array, "[]"sv, false},
    {"{}"sv, Value::Kind::object, "{}"sv, false},
    {"0"sv, Value::Kind::integer, "0"sv, false},
    {"-5"sv, Value::Kind::integer, "-5"sv, false},
    {"3e-05"sv, Value::Kind::floating, "3e-05"sv, false},
};

TEST(DecodeHyperparameter, EveryJsonTypeAndTheOddCases)
{
  for (const auto& c : k_decode_cases) {
    const Value raw = Value::string(std::string(c.raw));
    const Value v = env::decode_hyperparameter(raw);
    EXPECT_EQ(v.kind(), c.kind) << "raw " << escaped(c.raw);
    EXPECT_EQ(env::py_repr(v), c.repr) << "raw " << escaped(c.raw) << " got " << escaped(env::py_repr(v));
    if (c.kept_raw) {
      EXPECT_EQ(v, raw) << "raw " << escaped(c.raw);
    }
  }
}

TEST(DecodeHyperparameter, IntegerBeyondPythonDigitLimitStaysAString)
{
  // json.loads("1" * 4301) raises ValueError in Python 3.11, so the raw text is kept;
  // json.loads("1" * 4300) is an int.
  const Value too_long = Value::string(std::string(4301, '1'));
  EXPECT_EQ(env::decode_hyperparameter(too_long), too_long);
  const Value longest = Value::string(std::string(4300, '1'));
  const Value decoded = env::decode_hyperparameter(longest);
  EXPECT_EQ(decoded.kind(), Value::Kind::integer);
  EXPECT_EQ(decoded.text(), std::string(4300, '1'));
}

TEST(DecodeHyperparameter, NestingIsDecodedAsDeepAsPythonDecodesIt)
{
  // json.loads decodes 600 levels (it raises RecursionError only near 990): a nested value,
  // not the raw text.
  const auto nested = [](int levels) {
    return Value::string(std::string(static_cast<std::size_t>(levels), '[') +
                         std::string(static_cast<std::size_t>(levels), ']'));
  };
  EXPECT_EQ(env::decode_hyperparameter(nested(600)).kind(), Value::Kind::array);
  EXPECT_EQ(env::decode_hyperparameter(nested(env::k_max_json_depth)).kind(), Value::Kind::array);
  // Deeper, the reference's job fails with RecursionError: refused naming the key, never
  // passed on as text.
  Value raw = Value::object();
  raw.append_unique("deep", nested(1000));
  try {
    (void)env::decode_hyperparameters(raw);
    ADD_FAILURE() << "1000 levels were accepted";
  } catch (const env::UndecodableHyperparameter& e) {
    EXPECT_EQ(e.key, "deep");
    EXPECT_NE(std::string(e.what()).find("RecursionError"), std::string::npos) << e.what();
  }
}

TEST(DecodeHyperparameter, NonStringValuesAreKeptAsTheyAre)
{
  // json.loads(5), json.loads(True), json.loads(None), json.loads([1]), json.loads({})
  // all raise TypeError, so read_hyperparameters keeps the value itself.
  const Value values[] = {
      Value::integer(5),       Value::boolean(true), Value(), Value::floating(1.5),
      Value::array({Value::string("10")}), Value::object(),
  };
  for (const auto& v : values) {
    EXPECT_EQ(env::decode_hyperparameter(v), v) << env::py_repr(v);
  }
}

// ---------------------------------------------------------------------------------------
// Platform / reserved keys and the split
// ---------------------------------------------------------------------------------------

TEST(HyperparameterKeys, PlatformAndReserved)
{
  // k in params.SAGEMAKER_HYPERPARAMETERS (reserved); reserved or k.startswith("sagemaker_") (platform)
  struct Case
  {
    std::string_view key;
    bool platform;
    bool reserved;
  };
  const Case cases[] = {
      {"sagemaker_program"sv, true, true},
      {"sagemaker_submit_directory"sv, true, true},
      {"sagemaker_enable_cloudwatch_metrics"sv, true, true},
      {"sagemaker_region"sv, true, true},
      {"sagemaker_container_log_level"sv, true, true},
      {"sagemaker_job_name"sv, true, true},
      {"default_user_module_name"sv, true, true},
      {"_tuning_objective_metric"sv, true, true},
      {"sagemaker_s3_output"sv, true, true},
      {"sagemaker_mpi_enabled"sv, true, false},
      {"sagemaker_distribution_instance_groups"sv, true, false},
      {"sagemaker_"sv, true, false},
      {"sagemaker"sv, false, false},
      {"Sagemaker_x"sv, false, false},
      {"SAGEMAKER_PROGRAM"sv, false, false},
      {"_tuning_objective_metric_x"sv, false, false},
      {"tuning_objective_metric"sv, false, false},
      {"xsagemaker_y"sv, false, false},
      {"epochs"sv, false, false},
      {""sv, false, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(env::is_platform_key(c.key), c.platform) << c.key;
    EXPECT_EQ(env::is_reserved_key(c.key), c.reserved) << c.key;
  }
}

TEST(DecodeHyperparameters, SplitKeepsInsertionOrder)
{
  // raw = json.loads(TEXT); hps = read_hyperparameters(raw)
  // sm, user = split_by_criteria(hps, SAGEMAKER_HYPERPARAMETERS, "sagemaker_")
  // fw = [k for k in sm if k not in SAGEMAKER_HYPERPARAMETERS]
  const std::string text =
      R"json({"epochs": "10", "sagemaker_program": "\"train.py\"", "sagemaker_mpi_enabled": "true", "_tuning_objective_metric": "\"loss\"", "sagemaker_job_name": "\"j\"", "default_user_module_name": "\"m\"", "sagemaker_s3_output": "\"s3://b\"", "sagemaker_custom_thing": "5", "sagemaker": "1", "Sagemaker_x": "2", "sagemaker_": "3", "lr": "x y", "_tuning_objective_metric_x": "4", "SAGEMAKER_PROGRAM": "p", "sagemaker_region": "\"us-east-1\"", "sagemaker_container_log_level": "10", "sagemaker_submit_directory": "/code", "sagemaker_enable_cloudwatch_metrics": "false", "sagemaker_distribution_instance_groups": "[\"g\"]"})json";
  const env::Hyperparameters hps = env::decode_hyperparameters(env::parse_json(text));
  EXPECT_EQ(hps.user.keys(),
            (Strings{"epochs", "sagemaker", "Sagemaker_x", "lr", "_tuning_objective_metric_x", "SAGEMAKER_PROGRAM"}));
  EXPECT_EQ(hps.sagemaker.keys(),
            (Strings{"sagemaker_program", "sagemaker_mpi_enabled", "_tuning_objective_metric", "sagemaker_job_name",
                     "default_user_module_name", "sagemaker_s3_output", "sagemaker_custom_thing", "sagemaker_",
                     "sagemaker_region", "sagemaker_container_log_level", "sagemaker_submit_directory",
                     "sagemaker_enable_cloudwatch_metrics", "sagemaker_distribution_instance_groups"}));
  EXPECT_EQ(hps.framework_params.keys(),
            (Strings{"sagemaker_mpi_enabled", "sagemaker_custom_thing", "sagemaker_",
                     "sagemaker_distribution_instance_groups"}));
  // repr(user), repr({k: sm[k] for k in fw})
  EXPECT_EQ(env::py_repr(hps.user),
            "{'epochs': 10, 'sagemaker': 1, 'Sagemaker_x': 2, 'lr': 'x y', '_tuning_objective_metric_x': 4, "
            "'SAGEMAKER_PROGRAM': 'p'}");
  EXPECT_EQ(env::py_repr(hps.framework_params),
            "{'sagemaker_mpi_enabled': True, 'sagemaker_custom_thing': 5, 'sagemaker_': 3, "
            "'sagemaker_distribution_instance_groups': ['g']}");
  ASSERT_NE(hps.sagemaker.find("sagemaker_program"), nullptr);
  EXPECT_EQ(env::py_repr(*hps.sagemaker.find("sagemaker_program")), "'train.py'");
  EXPECT_EQ(env::py_repr(*hps.sagemaker.find("sagemaker_container_log_level")), "10");
  EXPECT_EQ(env::py_repr(*hps.sagemaker.find("sagemaker_enable_cloudwatch_metrics")), "False");
}

TEST(DecodeHyperparameters, EmptyObject)
{
  const env::Hyperparameters hps = env::decode_hyperparameters(env::parse_json("{}"));
  EXPECT_TRUE(hps.user.is_object());
  EXPECT_TRUE(hps.sagemaker.is_object());
  EXPECT_TRUE(hps.framework_params.is_object());
  EXPECT_EQ(hps.user.size(), 0u);
  EXPECT_TRUE(env::to_cmd_args(hps.user).empty());
}

// ---------------------------------------------------------------------------------------
// to_cmd_args
// ---------------------------------------------------------------------------------------

struct CmdArgsCase
{
  const char* name;
  std::string_view hyperparameters_json; // as hyperparameters.json delivers it
  Strings args;
};

// user = split_by_criteria(read_hyperparameters(json.loads(TEXT)), ...).excluded
// print(mapping.to_cmd_args(user))
const CmdArgsCase k_cmd_args_cases[] = {
    // training-toolkit.md section 5, "Verified output" (keys deliberately unsorted in the file).
    {"reference_example",
     R"json({"x": "q", "lr": "0.001", "Name": "\"a b\"", "none": "null", "big": "1e16", "d": "{\"b\": 1, \"a\": {\"z\": true}}", "uni": "\"\\u00e9\"", "epochs": "10", "f": "1.5", "flag": "true", "lst": "[1, \"x\"]", "nan": "NaN", "plain": "some text", "sp": " 5 ", "lead": "007"})json"sv,
     {"--Name", "a b", "--big", "1e+16", "-d", "a={'z': True},b=1", "--epochs", "10", "-f", "1.5", "--flag", "True",
      "--lead", "007", "--lr", "0.001", "--lst", "[1, 'x']", "--nan", "nan", "--none", "", "--plain", "some text",
      "--sp", "5", "--uni", "é", "-x", "q"}},
    // Code-point order (uppercase before '_' before lowercase before non-ASCII), an empty key,
    // one-character non-ASCII keys ("é", "😀" have len() 1).
    {"key_order_and_names",
     R"json({"b": "1", "B": "2", "a": "3", "A": "4", "_": "5", "Z": "6", "": "7", "\u00e9": "8", "\u00e9a": "9", "\ud83d\ude00": "10", "ab": "11", "a-b": "12", "\u00c9": "13"})json"sv,
     {"", "7", "-A", "4", "-B", "2", "-Z", "6", "-_", "5", "-a", "3", "--a-b", "12", "--ab", "11", "-b", "1", "-É", "13",
      "-é", "8", "--éa", "9", "-😀", "10"}},
    // Nested dict inside a list, dict values of every type, non-ASCII dict keys, empty containers.
    {"values",
     R"json({"nested": "[{\"b\": 1, \"a\": [2, {\"c\": null}]}]", "dict": "{\"s\": \"x y\", \"n\": null, \"f\": 0.1, \"l\": [1], \"t\": true, \"e\": \"\\u00e9\", \"q\": \"it's\", \"d\": {\"k\": \"v\"}}", "keys": "{\"\\u00e9\": 1, \"z\": 2, \"A\": 3, \"a\": 4}", "empty_dict": "{}", "empty_list": "[]", "empty_str": "\"\"", "multiline": "\"line1\\nline2\"", "huge": "123456789012345678901234567890", "neg": "-0.0", "tiny": "1e-07", "inf": "Infinity", "false": "false", "quote": "\"say \\\"hi\\\" it's\""})json"sv,
     {"--dict", "d={'k': 'v'},e=é,f=0.1,l=[1],n=None,q=it's,s=x y,t=True", "--empty_dict", "", "--empty_list", "[]",
      "--empty_str", "", "--false", "False", "--huge", "123456789012345678901234567890", "--inf", "inf", "--keys",
      "A=3,a=4,z=2,é=1", "--multiline", "line1\nline2", "--neg", "-0.0", "--nested",
      "[{'b': 1, 'a': [2, {'c': None}]}]", "--quote", "say \"hi\" it's", "--tiny", "1e-07"}},
    // Platform keys never reach the arguments.
    {"platform_keys_dropped",
     R"json({"epochs": "10", "sagemaker_program": "\"train.py\"", "sagemaker_mpi_enabled": "true", "_tuning_objective_metric": "\"loss\"", "sagemaker_job_name": "\"j\"", "default_user_module_name": "\"m\"", "sagemaker_s3_output": "\"s3://b\"", "sagemaker_custom_thing": "5", "sagemaker": "1", "Sagemaker_x": "2", "sagemaker_": "3", "lr": "x y", "_tuning_objective_metric_x": "4", "SAGEMAKER_PROGRAM": "p", "sagemaker_region": "\"us-east-1\"", "sagemaker_container_log_level": "10", "sagemaker_submit_directory": "/code", "sagemaker_enable_cloudwatch_metrics": "false", "sagemaker_distribution_instance_groups": "[\"g\"]"})json"sv,
     {"--SAGEMAKER_PROGRAM", "p", "--Sagemaker_x", "2", "--_tuning_objective_metric_x", "4", "--epochs", "10", "--lr",
      "x y", "--sagemaker", "1"}},
};

class ToCmdArgs : public ::testing::TestWithParam<CmdArgsCase>
{
};

TEST_P(ToCmdArgs, MatchesReference)
{
  const CmdArgsCase& c = GetParam();
  const env::Hyperparameters hps = env::decode_hyperparameters(env::parse_json(c.hyperparameters_json));
  EXPECT_EQ(env::to_cmd_args(hps.user), c.args);
}

INSTANTIATE_TEST_SUITE_P(Golden, ToCmdArgs, ::testing::ValuesIn(k_cmd_args_cases),
                         [](const ::testing::TestParamInfo<CmdArgsCase>& param_info) { return std::string(param_info.param.name); });

TEST(ToCmdArgsDirect, ValuesNotFromJson)
{
  // mapping.to_cmd_args({"k": None, "b": True, "s": "", "i": 0, "x": [], "é": {"z": None}})
  Value hps = Value::object();
  Value inner = Value::object();
  inner.set("z", Value());
  hps.set("k", Value());
  hps.set("b", Value::boolean(true));
  hps.set("s", Value::string(""));
  hps.set("i", Value::integer(0));
  hps.set("x", Value::array());
  hps.set("é", inner);
  EXPECT_EQ(env::to_cmd_args(hps), (Strings{"-b", "True", "-i", "0", "-k", "", "-s", "", "-x", "[]", "-é", "z=None"}));
}

} // namespace
