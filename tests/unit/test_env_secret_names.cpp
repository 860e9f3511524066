#include "env/env_map.hpp"

#include <gtest/gtest.h>

namespace {

struct SecretNameCase
{
  const char* name;
  bool secret;
};

// A variable is secret when one of its words (split at '_', '-', '.') is KEY, SECRET,
// TOKEN, PASSWORD or CREDENTIALS; a word that merely contains one is not.
const SecretNameCase k_cases[] = {
    {"AWS_SECRET_ACCESS_KEY", true}, {"AWS_ACCESS_KEY_ID", true},   {"HF_TOKEN", true},
    {"AWS_SESSION_TOKEN", true},     {"DB_PASSWORD", true},         {"SM_HP_API_KEY", true},
    {"SM_HP_API-KEY", true},         {"GOOGLE_CREDENTIALS", true},  {"secret", true},
    {"key", true},                   {"SM_HP_TOKENIZER", false},    {"SM_HP_MONKEY", false},
    {"SM_HP_KEYBOARD", false},       {"SM_HP_SECRETARY", false},    {"PASSWORDLESS", false},
    {"SM_NUM_GPUS", false},          {"", false},                   {"SM_HP_TOKENS", false},
};

class SecretNames : public ::testing::TestWithParam<SecretNameCase>
{
};

TEST_P(SecretNames, WholeWordsOnly)
{
  EXPECT_EQ(env::is_secret_name(GetParam().name), GetParam().secret) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(Env, SecretNames, ::testing::ValuesIn(k_cases));

} // namespace
