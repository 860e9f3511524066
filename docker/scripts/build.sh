#!/usr/bin/env bash
# Build stage: build smlaunch in Release, run its unit tests (the full suite, with real
# Python, pip, sshd and Open MPI, already ran in CI: scripts/test.sh), and install it,
# stripped, under $1 (a staging root that the runtime stage copies to /).
#   docker/scripts/build.sh /staging
set -euo pipefail
cd "$(dirname "$0")/../.."
staging="${1:?usage: build.sh STAGING_DIR}"

# Ubuntu 22.04 (the CUDA image) has GCC 11 by default; smlaunch is C++20 built with GCC 12.
if [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = ubuntu ]; then
  export CC=gcc-12 CXX=g++-12
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
for unit_tests in build/bin/unit_*; do   # one GoogleTest binary per library
  "$unit_tests" --gtest_brief=1
done
cmake --install build --prefix "$staging/usr/local" --strip
ls -l "$staging/usr/local/bin/smlaunch"
