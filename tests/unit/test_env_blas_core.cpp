#include "env/blas_core.hpp"

#include <gtest/gtest.h>

using env::BlasCoreType;
using env::VectorIsa;

TEST(BlasCore, FollowsTheWidestVectorInstructions)
{
  const env::EnvMap none;
  const BlasCoreType avx512 = env::blas_core_type(VectorIsa::avx512, none);
  EXPECT_EQ(avx512.value, "SkylakeX");
  EXPECT_EQ(avx512.origin, env::BlasCoreOrigin::cpu);
  EXPECT_EQ(env::blas_core_type(VectorIsa::avx2, none).value, "Haswell");
  const BlasCoreType other = env::blas_core_type(VectorIsa::other, none);
  EXPECT_EQ(other.value, "");
  EXPECT_EQ(other.origin, env::BlasCoreOrigin::none);
}

TEST(BlasCore, TheUsersValueIsKeptEvenEmpty)
{
  env::EnvMap user;
  user.set("OPENBLAS_CORETYPE", "Zen");
  const BlasCoreType core = env::blas_core_type(VectorIsa::avx512, user);
  EXPECT_EQ(core.value, "Zen");
  EXPECT_EQ(core.origin, env::BlasCoreOrigin::user);
  user.set("OPENBLAS_CORETYPE", "");
  EXPECT_EQ(env::blas_core_type(VectorIsa::avx2, user).origin, env::BlasCoreOrigin::user);
}

TEST(BlasCore, ApplySetsOnlyWhatSmlaunchChoseAndNeverReplaces)
{
  env::EnvMap environment;
  env::apply_blas_core_type(env::blas_core_type(VectorIsa::avx2, environment), environment);
  ASSERT_NE(environment.get("OPENBLAS_CORETYPE"), nullptr);
  EXPECT_EQ(*environment.get("OPENBLAS_CORETYPE"), "Haswell");

  env::EnvMap mine;
  mine.set("OPENBLAS_CORETYPE", "Sandybridge");
  env::apply_blas_core_type(env::blas_core_type(VectorIsa::avx512, env::EnvMap{}), mine);
  EXPECT_EQ(*mine.get("OPENBLAS_CORETYPE"), "Sandybridge");

  env::EnvMap untouched;
  env::apply_blas_core_type(env::blas_core_type(VectorIsa::other, untouched), untouched);
  EXPECT_EQ(untouched.get("OPENBLAS_CORETYPE"), nullptr);
  EXPECT_STREQ(env::to_string(VectorIsa::avx512), "avx512");
  EXPECT_STREQ(env::to_string(env::BlasCoreOrigin::cpu), "cpu");
  EXPECT_STREQ(env::to_string(env::BlasCoreOrigin::user), "user");
  EXPECT_STREQ(env::to_string(env::BlasCoreOrigin::none), "none");
}
