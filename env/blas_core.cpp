#include "env/blas_core.hpp"

namespace env {

const char*
to_string(VectorIsa isa)
{
  switch (isa) {
  case VectorIsa::avx512:
    return "avx512";
  case VectorIsa::avx2:
    return "avx2";
  case VectorIsa::other:
    break;
  }
  return "other";
}

const char*
to_string(BlasCoreOrigin origin)
{
  switch (origin) {
  case BlasCoreOrigin::user:
    return "user";
  case BlasCoreOrigin::cpu:
    return "cpu";
  case BlasCoreOrigin::none:
    break;
  }
  return "none";
}

BlasCoreType
blas_core_type(VectorIsa isa, const EnvMap& user)
{
  if (const std::string* value = user.get(k_blas_core_variable)) {
    return {*value, BlasCoreOrigin::user, "set by the user"};
  }
  switch (isa) {
  case VectorIsa::avx512:
    return {"SkylakeX", BlasCoreOrigin::cpu, "the CPU has AVX-512 (F, CD, BW, DQ, VL)"};
  case VectorIsa::avx2:
    return {"Haswell", BlasCoreOrigin::cpu, "the CPU has AVX2 and FMA"};
  case VectorIsa::other:
    break;
  }
  return {"", BlasCoreOrigin::none, "no AVX2: left to OpenBLAS (its table has those older CPUs)"};
}

void
apply_blas_core_type(const BlasCoreType& core, EnvMap& environment)
{
  if (core.origin == BlasCoreOrigin::cpu && !environment.contains(k_blas_core_variable)) {
    environment.set(k_blas_core_variable, core.value);
  }
}

} // namespace env
