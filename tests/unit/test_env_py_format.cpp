// Python renderings (repr, str, json.dumps, str.upper) of env::Value, checked against
// values computed with CPython 3.11 (see the one-liners above each table).
#include "env/json_value.hpp"
#include "env/py_format.hpp"

#include "tests/unit/test_support.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>

namespace {

using env::Value;
using namespace std::string_view_literals;

// Show the bytes of a string so a failing comparison of control characters is readable.
using test_support::escaped;

// ---------------------------------------------------------------------------------------
// py_float_repr
// ---------------------------------------------------------------------------------------

struct FloatCase
{
  double value;
  const char* expected;
};

// python3 -c 'for s in NAMES: d = float(s); print(d.hex(), repr(d))'
// random ones: random.seed(20240521); doubles from 64 random bits, uniform(-1000, 1000),
// random() * 10 ** randint(-8, 20); input written as float.hex(), expected repr(d).
const FloatCase k_float_cases[] = {
    {0x1.999999999999ap-4, "0.1"}, // 0.1
    {0x1.8000000000000p+0, "1.5"}, // 1.5
    {0x1.1c37937e08000p+53, "1e+16"}, // 1e16
    {0x1.c6bf526340000p+49, "1000000000000000.0"}, // 1e15
    {0x1.4f8b588e368f1p-17, "1e-05"}, // 1e-05
    {0x1.a36e2eb1c432dp-14, "0.0001"}, // 0.0001
    {0x1.a36e2eb1c432ep-14, "0.00010000000000000002"}, // 0.00010000000000000002
    {0x1.a36e2eb1c432cp-14, "9.999999999999999e-05"}, // 9.999999999999999e-05
    {0x1.b69b4ba630f35p+56, "1.2345678901234568e+17"}, // 123456789012345678.0
    {0x1.fffffffffffffp+1023, "1.7976931348623157e+308"}, // 1.7976931348623157e308
    {0x1.0c6f7a0b5ed8dp-22, "2.5e-07"}, // 2.5e-07
    {0x1.0f0cf064dd592p+73, "1e+22"}, // 1e22
    {0x1.9000000000000p+6, "100.0"}, // 100.0
    {0x1.3333333333334p-2, "0.30000000000000004"}, // 0.30000000000000004
    {0x1.0000000000000p+0, "1.0"}, // 1.0
    {0x1.0000000000000p-1, "0.5"}, // 0.5
    {0x1.0000000000000p+1, "2.0"}, // 2.0
    {0x1.4000000000000p+3, "10.0"}, // 10.0
    {0x1.249ad2594c37dp+332, "1e+100"}, // 1e+100
    {0x1.bff2ee48e0530p-333, "1e-100"}, // 1e-100
    {0x1.1c37937e07fffp+53, "9999999999999998.0"}, // 9999999999999998.0
    {0x1.6345785d8a000p+56, "1e+17"}, // 1e17
    {0x1.18b54f22aeb00p+50, "1234567890123456.0"}, // 1234567890123456.0
    {0x1.5ee2a2eb5a5c4p+53, "1.2345678901234568e+16"}, // 12345678901234567.0
    {0x1.0624dd2f1a9fcp-10, "0.001"}, // 0.001
    {0x1.f75104d551d69p-16, "3e-05"}, // 3e-05
    {-0x1.8000000000000p+0, "-1.5"}, // -1.5
    {-0x1.ad7f29abcaf48p-24, "-1e-07"}, // -1e-07
    {0x1.edd2f1a9fbe77p+6, "123.456"}, // 123.456
    {0x1.52d02c7e14af6p+76, "1e+23"}, // 1e23
    {0x1.0000000000000p-1022, "2.2250738585072014e-308"}, // 2.2250738585072014e-308
    {0x0.0000000000001p-1022, "5e-324"}, // 4.9406564584124654e-324
    {0x1.a36e2eb1c432dp-14, "0.0001"}, // 0.1e-3
    {0x1.a36e2eb1c432dp-14, "0.0001"}, // 1e-4
    {0x1.01f31f46ed246p-13, "0.000123"}, // 0.000123
    {0x1.fe185ca57c517p+78, "6.02214076e+23"}, // 6.02214076e23
    {0x1.921fb54442d18p+1, "3.141592653589793"}, // 3.141592653589793
    {-0x1.5bf0a8b145769p+1, "-2.718281828459045"}, // -2.718281828459045
    {0x1.b1ae4d6e2ef50p+69, "1e+21"}, // 1e21
    {0x0.0000000000001p-1022, "5e-324"}, // 5e-324
    {-0x1.24517b84b2606p+838, "-2.0929188623217127e+252"},
    {0x1.cd802f9c7e094p+112, "9.360346767068324e+33"},
    {0x1.214468beddf91p+84, "2.1856413437766832e+25"},
    {-0x1.c20ac82f722dep-851, "-1.1708112415555915e-256"},
    {-0x1.0989a0b09659ap+190, "-1.6277408018824334e+57"},
    {-0x1.be2edda15b6f3p+914, "-2.413732612114521e+275"},
    {0x1.681e501b54559p-560, "3.7274153265399957e-169"},
    {-0x1.66a7e716642c6p+154, "-3.1993172671257886e+46"},
    {-0x1.4fbc37509a07fp+495, "-1.3415435946505644e+149"},
    {0x1.383794d5b0a19p-964, "7.821695786384867e-291"},
    {0x1.27b12be58c391p-566, "4.782138779525589e-171"},
    {0x1.77e119d9a5f36p+903, "9.928748946149226e+271"},
    {0x1.4aca8ca139cc2p+9, "661.5824166805471"},
    {0x1.6267bea472910p+9, "708.8105054435164"},
    {0x1.6752f42b30428p+8, "359.3240382187673"},
    {-0x1.8e036e0c6581ap+8, "-398.0133979556864"},
    {0x1.452d0f9401c16p+9, "650.3520379074641"},
    {-0x1.981499ae289bap+8, "-408.0804699753895"},
    {0x1.9a510530fecbcp+15, "52520.51013942945"},
    {0x1.ce4c1b72ccc5cp-8, "0.007054096890715202"},
    {0x1.073bae67dea6cp+36, "70661105277.91571"},
    {0x1.ee937d74018a8p+22, "8103135.3632871285"},
};

TEST(PyFloatRepr, MatchesPythonRepr)
{
  for (const auto& c : k_float_cases) {
    EXPECT_EQ(env::py_float_repr(c.value), c.expected) << "value " << c.expected;
  }
}

TEST(PyFloatRepr, SpecialValues)
{
  // repr(-0.0), repr(0.0), repr(float('nan')), repr(float('-nan')), repr(float('inf')), repr(float('-inf'))
  EXPECT_EQ(env::py_float_repr(0.0), "0.0");
  EXPECT_EQ(env::py_float_repr(-0.0), "-0.0");
  EXPECT_EQ(env::py_float_repr(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(env::py_float_repr(-std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(env::py_float_repr(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(env::py_float_repr(-std::numeric_limits<double>::infinity()), "-inf");
  // repr(sys.float_info.min), repr(-sys.float_info.max), repr(sys.float_info.epsilon)
  EXPECT_EQ(env::py_float_repr(std::numeric_limits<double>::min()), "2.2250738585072014e-308");
  EXPECT_EQ(env::py_float_repr(std::numeric_limits<double>::lowest()), "-1.7976931348623157e+308");
  EXPECT_EQ(env::py_float_repr(std::numeric_limits<double>::epsilon()), "2.220446049250313e-16");
}

TEST(PyFloatRepr, DecimalExponentBoundaries)
{
  // Python switches to exponent form below 1e-4 and from 1e16 on:
  // [repr(x) for x in (1e-4, 1e-5, 9.9e-5, 1e15, 9999999999999998.0, 1e16, 1.5e16)]
  EXPECT_EQ(env::py_float_repr(1e-4), "0.0001");
  EXPECT_EQ(env::py_float_repr(1e-5), "1e-05");
  EXPECT_EQ(env::py_float_repr(9.9e-5), "9.9e-05");
  EXPECT_EQ(env::py_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(env::py_float_repr(9999999999999998.0), "9999999999999998.0");
  EXPECT_EQ(env::py_float_repr(1e16), "1e+16");
  EXPECT_EQ(env::py_float_repr(1.5e16), "1.5e+16");
}

// ---------------------------------------------------------------------------------------
// py_repr / py_str of strings
// ---------------------------------------------------------------------------------------

struct StringCase
{
  std::string_view text;
  std::string_view repr;
  std::string_view str;
};

// python3 -c 'for s in STRS: print(s, repr(s), str(s))'
const StringCase k_string_cases[] = {
    {""sv, "''"sv, ""sv},
    {"plain"sv, "'plain'"sv, "plain"sv},
    {"it's"sv, "\"it's\""sv, "it's"sv},
    {"say \"hi\""sv, "'say \"hi\"'"sv, "say \"hi\""sv},
    {"both ' and \""sv, "'both \\' and \"'"sv, "both ' and \""sv},
    {"back\\slash"sv, "'back\\\\slash'"sv, "back\\slash"sv},
    {"new\nline"sv, "'new\\nline'"sv, "new\nline"sv},
    {"tab\there"sv, "'tab\\there'"sv, "tab\there"sv},
    {"cr\rx"sv, "'cr\\rx'"sv, "cr\rx"sv},
    {"\000nul"sv, "'\\x00nul'"sv, "\000nul"sv},
    {"\001\037"sv, "'\\x01\\x1f'"sv, "\001\037"sv},
    {"bell\007"sv, "'bell\\x07'"sv, "bell\007"sv},
    {"del\177"sv, "'del\\x7f'"sv, "del\177"sv},
    {"nel\302\205"sv, "'nel\\x85'"sv, "nel\302\205"sv},
    {"nbsp\302\240"sv, "'nbsp\\xa0'"sv, "nbsp\302\240"sv},
    {"shy\302\255"sv, "'shy\\xad'"sv, "shy\302\255"sv},
    {"ls\342\200\250ps\342\200\251"sv, "'ls\\u2028ps\\u2029'"sv, "ls\342\200\250ps\342\200\251"sv},
    {"zwsp\342\200\213"sv, "'zwsp\\u200b'"sv, "zwsp\342\200\213"sv},
    {"bom\357\273\277"sv, "'bom\\ufeff'"sv, "bom\357\273\277"sv},
    {"é"sv, "'é'"sv, "é"sv},
    {"日本"sv, "'日本'"sv, "日本"sv},
    {"😀"sv, "'😀'"sv, "😀"sv},
    {"Ωμέγα"sv, "'Ωμέγα'"sv, "Ωμέγα"sv},
    {"mix é\n日\t😀'"sv, "\"mix é\\n日\\t😀'\""sv, "mix é\n日\t😀'"sv},
    {"\356\200\200"sv, "'\\ue000'"sv, "\356\200\200"sv},
    {"\364\217\277\277"sv, "'\\U0010ffff'"sv, "\364\217\277\277"sv},
    {"\343\200\200"sv, "'\\u3000'"sv, "\343\200\200"sv},
    {" "sv, "' '"sv, " "sv},
    {"~"sv, "'~'"sv, "~"sv},
    {"a\\'b"sv, "\"a\\\\'b\""sv, "a\\'b"sv},
    {"\\n"sv, "'\\\\n'"sv, "\\n"sv},
};

TEST(PyRepr, StringsMatchPython)
{
  for (const auto& c : k_string_cases) {
    const Value v = Value::string(std::string(c.text));
    EXPECT_EQ(env::py_repr(v), c.repr) << "text " << escaped(c.text) << " got " << escaped(env::py_repr(v));
    EXPECT_EQ(env::py_str(v), c.str) << "text " << escaped(c.text);
  }
}

// Characters that str.isprintable() rejects although they are not in the usual control,
// separator or private-use ranges: an unassigned code point (U+0378), a format character
// (U+061C ARABIC LETTER MARK) and a tag character (U+E0001). python3 -c 'print(repr(s))'
const StringCase k_other_unprintable_cases[] = {
    {"\315\270"sv, "'\\u0378'"sv, "\315\270"sv},
    {"\330\234"sv, "'\\u061c'"sv, "\330\234"sv},
    {"\363\240\200\201"sv, "'\\U000e0001'"sv, "\363\240\200\201"sv},
};

TEST(PyRepr, OtherNonPrintableCharactersAreEscaped)
{
  for (const auto& c : k_other_unprintable_cases) {
    const Value v = Value::string(std::string(c.text));
    EXPECT_EQ(env::py_repr(v), c.repr) << "text " << escaped(c.text) << " got " << escaped(env::py_repr(v));
  }
}

TEST(PyRepr, Scalars)
{
  // repr(None), repr(True), repr(False), repr(10), repr(-3), repr(10**30), repr(1.5)
  EXPECT_EQ(env::py_repr(Value()), "None");
  EXPECT_EQ(env::py_repr(Value::boolean(true)), "True");
  EXPECT_EQ(env::py_repr(Value::boolean(false)), "False");
  EXPECT_EQ(env::py_repr(Value::integer(10)), "10");
  EXPECT_EQ(env::py_repr(Value::integer(-3)), "-3");
  EXPECT_EQ(env::py_repr(Value::integer("1000000000000000000000000000000")), "1000000000000000000000000000000");
  EXPECT_EQ(env::py_repr(Value::floating(1.5)), "1.5");
  EXPECT_EQ(env::py_str(Value()), "None");
  EXPECT_EQ(env::py_str(Value::boolean(true)), "True");
  EXPECT_EQ(env::py_str(Value::floating(1e16)), "1e+16");
  EXPECT_EQ(env::py_str(Value::floating(std::nan(""))), "nan");
}

TEST(PyRepr, ContainersBuiltByHand)
{
  // repr({'b': [1, 'x', None], 'a': {'z': True}, 'é': 0.5}) -- dicts keep insertion order
  Value inner = Value::object();
  inner.set("z", Value::boolean(true));
  Value obj = Value::object();
  obj.set("b", Value::array({Value::integer(1), Value::string("x"), Value()}));
  obj.set("a", inner);
  obj.set("é", Value::floating(0.5));
  EXPECT_EQ(env::py_repr(obj), "{'b': [1, 'x', None], 'a': {'z': True}, 'é': 0.5}");
  EXPECT_EQ(env::py_str(obj), "{'b': [1, 'x', None], 'a': {'z': True}, 'é': 0.5}");
  // json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=True)
  EXPECT_EQ(env::py_json_dumps(obj), "{\"a\":{\"z\":true},\"b\":[1,\"x\",null],\"\\u00e9\":0.5}");
  // set() of an existing key replaces the value in place: {'b': 2, 'a': {'z': True}, 'é': 0.5}
  obj.set("b", Value::integer(2));
  EXPECT_EQ(env::py_repr(obj), "{'b': 2, 'a': {'z': True}, 'é': 0.5}");
}

// ---------------------------------------------------------------------------------------
// Nested values: repr, str and json.dumps
// ---------------------------------------------------------------------------------------

struct NestedCase
{
  std::string_view json;
  std::string_view repr;
  std::string_view str;
  std::string_view dumps;
};

// v = json.loads(J); print(repr(v), str(v),
//     json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True))
const NestedCase k_nested_cases[] = {
    {"[1, \"x\"]"sv,
     "[1, 'x']"sv,
     "[1, 'x']"sv,
     "[1,\"x\"]"sv},
    {"[]"sv,
     "[]"sv,
     "[]"sv,
     "[]"sv},
    {"{}"sv,
     "{}"sv,
     "{}"sv,
     "{}"sv},
    {"[[]]"sv,
     "[[]]"sv,
     "[[]]"sv,
     "[[]]"sv},
    {"{\"a\": {}}"sv,
     "{'a': {}}"sv,
     "{'a': {}}"sv,
     "{\"a\":{}}"sv},
    {"null"sv,
     "None"sv,
     "None"sv,
     "null"sv},
    {"true"sv,
     "True"sv,
     "True"sv,
     "true"sv},
    {"false"sv,
     "False"sv,
     "False"sv,
     "false"sv},
    {"10"sv,
     "10"sv,
     "10"sv,
     "10"sv},
    {"-0"sv,
     "0"sv,
     "0"sv,
     "0"sv},
    {"1.50"sv,
     "1.5"sv,
     "1.5"sv,
     "1.5"sv},
    {"1e16"sv,
     "1e+16"sv,
     "1e+16"sv,
     "1e+16"sv},
    {"123456789012345678901234567890"sv,
     "123456789012345678901234567890"sv,
     "123456789012345678901234567890"sv,
     "123456789012345678901234567890"sv},
    {"{\"b\": 1, \"a\": {\"z\": true}}"sv,
     "{'b': 1, 'a': {'z': True}}"sv,
     "{'b': 1, 'a': {'z': True}}"sv,
     "{\"a\":{\"z\":true},\"b\":1}"sv},
    {"{\"z\": [1, 2.5, null, false, \"s\"], \"a\": {\"y\": \"it's\", \"x\": \"\\\"q\\\"\"}}"sv,
     "{'z': [1, 2.5, None, False, 's'], 'a': {'y': \"it's\", 'x': '\"q\"'}}"sv,
     "{'z': [1, 2.5, None, False, 's'], 'a': {'y': \"it's\", 'x': '\"q\"'}}"sv,
     "{\"a\":{\"x\":\"\\\"q\\\"\",\"y\":\"it's\"},\"z\":[1,2.5,null,false,\"s\"]}"sv},
    {"[\"tab\\t\", \"nl\\n\", \"bs\\\\\", \"quote's\", \"\\u0001\", \"\\u007f\", \"\\u0085\", \"\\u00a0\", \"\\u2028\"]"sv,
     "['tab\\t', 'nl\\n', 'bs\\\\', \"quote's\", '\\x01', '\\x7f', '\\x85', '\\xa0', '\\u2028']"sv,
     "['tab\\t', 'nl\\n', 'bs\\\\', \"quote's\", '\\x01', '\\x7f', '\\x85', '\\xa0', '\\u2028']"sv,
     "[\"tab\\t\",\"nl\\n\",\"bs\\\\\",\"quote's\",\"\\u0001\",\"\\u007f\",\"\\u0085\",\"\\u00a0\",\"\\u2028\"]"sv},
    {"{\"\\u00e9\": \"\\u65e5\\u672c\", \"e\": \"\\ud83d\\ude00\", \"E\": 1, \"\\u00c9\": 2, \"_\": 3, \"\": 4}"sv,
     "{'é': '日本', 'e': '😀', 'E': 1, 'É': 2, '_': 3, '': 4}"sv,
     "{'é': '日本', 'e': '😀', 'E': 1, 'É': 2, '_': 3, '': 4}"sv,
     "{\"\":4,\"E\":1,\"_\":3,\"e\":\"\\ud83d\\ude00\",\"\\u00c9\":2,\"\\u00e9\":\"\\u65e5\\u672c\"}"sv},
    {"[NaN, Infinity, -Infinity, 1e-05, 0.0001, 1e400, -0.0]"sv,
     "[nan, inf, -inf, 1e-05, 0.0001, inf, -0.0]"sv,
     "[nan, inf, -inf, 1e-05, 0.0001, inf, -0.0]"sv,
     "[NaN,Infinity,-Infinity,1e-05,0.0001,Infinity,-0.0]"sv},
    {"{\"k\": [{\"b\": [1, {\"d\": 2, \"c\": 3}]}, \"v\"]}"sv,
     "{'k': [{'b': [1, {'d': 2, 'c': 3}]}, 'v']}"sv,
     "{'k': [{'b': [1, {'d': 2, 'c': 3}]}, 'v']}"sv,
     "{\"k\":[{\"b\":[1,{\"c\":3,\"d\":2}]},\"v\"]}"sv},
    {"\"\\ud83d\\ude00 \\u00e9 \\u65e5\""sv,
     "'😀 é 日'"sv,
     "😀 é 日"sv,
     "\"\\ud83d\\ude00 \\u00e9 \\u65e5\""sv},
    {"[\"\\ud800\", \"\\udfff\", \"\\ud800x\"]"sv,
     "['\\ud800', '\\udfff', '\\ud800x']"sv,
     "['\\ud800', '\\udfff', '\\ud800x']"sv,
     "[\"\\ud800\",\"\\udfff\",\"\\ud800x\"]"sv},
    {"{\"ctl\": \"\\u0000\\u001f\\b\\f\\r/\"}"sv,
     "{'ctl': '\\x00\\x1f\\x08\\x0c\\r/'}"sv,
     "{'ctl': '\\x00\\x1f\\x08\\x0c\\r/'}"sv,
     "{\"ctl\":\"\\u0000\\u001f\\b\\f\\r/\"}"sv},
    {"{\"Zeta\": 1, \"alpha\": 2, \"Alpha\": 3, \"beta\": 4, \"\\u00df\": 5, \"\\u0100\": 6, \"\\ud83d\\ude00\": 7, \"\\uffff\": 8}"sv,
     "{'Zeta': 1, 'alpha': 2, 'Alpha': 3, 'beta': 4, 'ß': 5, 'Ā': 6, '😀': 7, '\\uffff': 8}"sv,
     "{'Zeta': 1, 'alpha': 2, 'Alpha': 3, 'beta': 4, 'ß': 5, 'Ā': 6, '😀': 7, '\\uffff': 8}"sv,
     "{\"Alpha\":3,\"Zeta\":1,\"alpha\":2,\"beta\":4,\"\\u00df\":5,\"\\u0100\":6,\"\\uffff\":8,\"\\ud83d\\ude00\":7}"sv},
};

TEST(PyRepr, NestedValuesMatchPython)
{
  for (const auto& c : k_nested_cases) {
    const Value v = env::parse_json(c.json);
    EXPECT_EQ(env::py_repr(v), c.repr) << "json " << escaped(c.json) << " got " << escaped(env::py_repr(v));
    EXPECT_EQ(env::py_str(v), c.str) << "json " << escaped(c.json);
  }
}

TEST(PyJsonDumps, NestedValuesMatchPython)
{
  for (const auto& c : k_nested_cases) {
    const Value v = env::parse_json(c.json);
    EXPECT_EQ(env::py_json_dumps(v), c.dumps) << "json " << escaped(c.json);
  }
}

TEST(PyJsonDumps, FloatsAndSpecials)
{
  // json.dumps(x) for x in (float('nan'), float('inf'), -float('inf'), 1e16, 3e-05, -0.0, 100.0)
  EXPECT_EQ(env::py_json_dumps(Value::floating(std::nan(""))), "NaN");
  EXPECT_EQ(env::py_json_dumps(Value::floating(std::numeric_limits<double>::infinity())), "Infinity");
  EXPECT_EQ(env::py_json_dumps(Value::floating(-std::numeric_limits<double>::infinity())), "-Infinity");
  EXPECT_EQ(env::py_json_dumps(Value::floating(1e16)), "1e+16");
  EXPECT_EQ(env::py_json_dumps(Value::floating(3e-05)), "3e-05");
  EXPECT_EQ(env::py_json_dumps(Value::floating(-0.0)), "-0.0");
  EXPECT_EQ(env::py_json_dumps(Value::floating(100.0)), "100.0");
  // json.dumps(None), json.dumps(True), json.dumps(False), json.dumps([]), json.dumps({})
  EXPECT_EQ(env::py_json_dumps(Value()), "null");
  EXPECT_EQ(env::py_json_dumps(Value::boolean(true)), "true");
  EXPECT_EQ(env::py_json_dumps(Value::boolean(false)), "false");
  EXPECT_EQ(env::py_json_dumps(Value::array()), "[]");
  EXPECT_EQ(env::py_json_dumps(Value::object()), "{}");
}

struct QuoteCase
{
  std::string_view text;
  std::string_view quoted;
};

// python3 -c 'print(json.dumps(s, ensure_ascii=True))'
const QuoteCase k_quote_cases[] = {
    {""sv, "\"\""sv},
    {"plain"sv, "\"plain\""sv},
    {"q\"uote"sv, "\"q\\\"uote\""sv},
    {"back\\"sv, "\"back\\\\\""sv},
    {"\n\r\t\010\014"sv, "\"\\n\\r\\t\\b\\f\""sv},
    {"\000\001\037"sv, "\"\\u0000\\u0001\\u001f\""sv},
    {"\177"sv, "\"\\u007f\""sv},
    {"é"sv, "\"\\u00e9\""sv},
    {"日本"sv, "\"\\u65e5\\u672c\""sv},
    {"😀"sv, "\"\\ud83d\\ude00\""sv},
    {"\364\217\277\277"sv, "\"\\udbff\\udfff\""sv},
    {"\342\200\250"sv, "\"\\u2028\""sv},
    {"/"sv, "\"/\""sv},
    {"~"sv, "\"~\""sv},
    {"\355\240\200"sv, "\"\\ud800\""sv},
    {"a\355\260\200b"sv, "\"a\\udc00b\""sv},
};

TEST(PyJsonQuote, MatchesPython)
{
  for (const auto& c : k_quote_cases) {
    EXPECT_EQ(env::py_json_quote(c.text), c.quoted) << "text " << escaped(c.text);
    EXPECT_EQ(env::py_json_dumps(Value::string(std::string(c.text))), c.quoted) << "text " << escaped(c.text);
  }
}

// ---------------------------------------------------------------------------------------
// py_upper
// ---------------------------------------------------------------------------------------

struct UpperCase
{
  std::string_view text;
  std::string_view upper;
};

// python3 -c 'print(s.upper())'  (Python 3.11, Unicode 14.0)
const UpperCase k_upper_cases[] = {
    {""sv, ""sv}, // 
    {"abc"sv, "ABC"sv}, // U+0061 U+0062 U+0063
    {"model-name"sv, "MODEL-NAME"sv}, // U+006D U+006F U+0064 U+0065 U+006C U+002D U+006E U+0061 U+006D U+0065
    {"lr_0.5"sv, "LR_0.5"sv}, // U+006C U+0072 U+005F U+0030 U+002E U+0035
    {"MiXeD"sv, "MIXED"sv}, // U+004D U+0069 U+0058 U+0065 U+0044
    {"a b"sv, "A B"sv}, // U+0061 U+0020 U+0062
    {"é"sv, "É"sv}, // U+00E9
    {"tráin"sv, "TRÁIN"sv}, // U+0074 U+0072 U+00E1 U+0069 U+006E
    {"ß"sv, "SS"sv}, // U+00DF
    {"straße"sv, "STRASSE"sv}, // U+0073 U+0074 U+0072 U+0061 U+00DF U+0065
    {"αβγδ"sv, "ΑΒΓΔ"sv}, // U+03B1 U+03B2 U+03B3 U+03B4
    {"ς"sv, "Σ"sv}, // U+03C2
    {"Ωμέγα"sv, "ΩΜΈΓΑ"sv}, // U+03A9 U+03BC U+03AD U+03B3 U+03B1
    {"ŉ"sv, "ʼN"sv}, // U+0149
    {"ﬁ"sv, "FI"sv}, // U+FB01
    {"ǆ"sv, "Ǆ"sv}, // U+01C6
    {"ǅ"sv, "Ǆ"sv}, // U+01C5
    {"ÿ"sv, "Ÿ"sv}, // U+00FF
    {"ı"sv, "I"sv}, // U+0131
    {"i"sv, "I"sv}, // U+0069
    {"ſ"sv, "S"sv}, // U+017F
    {"µ"sv, "Μ"sv}, // U+00B5
    {"日本"sv, "日本"sv}, // U+65E5 U+672C
    {"😀"sv, "😀"sv}, // U+1F600
    {"ȿ"sv, "Ȿ"sv}, // U+023F
    {"ɐ"sv, "Ɐ"sv}, // U+0250
    {"ꙁ"sv, "Ꙁ"sv}, // U+A641
    {"ⓐ"sv, "Ⓐ"sv}, // U+24D0
    {"𐐨"sv, "𐐀"sv}, // U+10428
};

TEST(PyUpper, MatchesPython)
{
  for (const auto& c : k_upper_cases) {
    EXPECT_EQ(env::py_upper(c.text), c.upper) << "text " << escaped(c.text) << " got " << escaped(env::py_upper(c.text));
  }
}

// Full case mappings that expand one character into several (SpecialCasing.txt) beyond the
// ones the library special-cases (ß, ŉ, the ﬀ-ﬆ ligatures). python3 -c 'print(s.upper())'
const UpperCase k_upper_expanding_cases[] = {
    {"ΐ"sv, "Ϊ́"sv}, // U+0390
    {"ǰ"sv, "J̌"sv}, // U+01F0
    {"և"sv, "ԵՒ"sv}, // U+0587
    {"ΰ"sv, "Ϋ́"sv}, // U+03B0
    {"ᾳ"sv, "ΑΙ"sv}, // U+1FB3
};

TEST(PyUpper, ExpandingFullCaseMappings)
{
  for (const auto& c : k_upper_expanding_cases) {
    EXPECT_EQ(env::py_upper(c.text), c.upper) << "text " << escaped(c.text) << " got " << escaped(env::py_upper(c.text));
  }
}

} // namespace
