#!/usr/bin/env bash
# Set up, build, and run every test (unit and integration), the images' set-up scripts
# (docker/ci.sh, as root), then the same suites under AddressSanitizer +
# UndefinedBehaviorSanitizer, the static checks and a short fuzzing run.
# CI runs exactly this.   SMLAUNCH_QUICK=1 runs the first part only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== tests"
(cd build && ctest --output-on-failure --timeout 900 -j "${SMLAUNCH_TEST_JOBS:-2}" "$@")
[ "${SMLAUNCH_QUICK:-0}" = 1 ] && exit 0

echo "== the images' set-up scripts, then jobs on the installed layout (docker/ci.sh)"
docker/ci.sh

echo "== tests under ASan + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMLAUNCH_ENABLE_ASAN=ON \
      -DSMLAUNCH_ENABLE_UBSAN=ON >/dev/null
cmake --build build-asan
(cd build-asan && ctest --output-on-failure --timeout 900 -j "${SMLAUNCH_TEST_JOBS:-2}" "$@")

for extra in tidy fuzz; do
  if [ -x "scripts/$extra.sh" ]; then
    echo "== $extra"
    "./scripts/$extra.sh"
  fi
done
