// OpenBLAS's kernels for this CPU. OpenBLAS before 0.3.25 (Debian 12 ships 0.3.21, and
// numpy 1.26's wheels 0.3.23) picks them from its table of CPU models and, for any model
// newer than the table (an Emerald Rapids Xeon here; Granite Rapids, Zen 5), falls back to
// its slowest x86-64 kernels, Prescott's SSE3 ones: a float32 matrix product ran 2.7x slower.
// OPENBLAS_CORETYPE chooses the kernels instead; smlaunch sets it from the vector
// instructions the CPU has (SkylakeX's kernels for AVX-512, Haswell's for AVX2 with FMA:
// the ones OpenBLAS picks itself for the CPUs it knows), never where the user set it.
// Other BLAS libraries ignore it. Pure.
#pragma once

#include "env/env_map.hpp"

#include <string>

namespace env {

inline constexpr const char* k_blas_core_variable = "OPENBLAS_CORETYPE";

// The widest vector instructions the CPU and the kernel both support.
enum class VectorIsa { other, avx2, avx512 };
const char* to_string(VectorIsa isa);

// Who chose the value: the user (kept as it is), smlaunch from the CPU, or nobody (unset).
enum class BlasCoreOrigin { user, cpu, none };
const char* to_string(BlasCoreOrigin origin);

struct BlasCoreType
{
  std::string value; // what OPENBLAS_CORETYPE is for the processes; empty: left unset
  BlasCoreOrigin origin = BlasCoreOrigin::none;
  std::string why;
};

// `user`: the environment the processes would otherwise get; a value there (even empty)
// is the user's and is kept.
BlasCoreType blas_core_type(VectorIsa isa, const EnvMap& user);

// Set OPENBLAS_CORETYPE in `environment` when smlaunch chose it and it is not set there.
void apply_blas_core_type(const BlasCoreType& core, EnvMap& environment);

} // namespace env
