#!/usr/bin/env bash
# Set up, build, and run every test (unit and integration), the CPU image built and run in
# containers by a private Docker engine (docker/ci.sh, as root), then the same suites under
# AddressSanitizer + UndefinedBehaviorSanitizer, the static checks and a short fuzzing run.
# CI runs exactly this.   SMLAUNCH_QUICK=1 runs the first part only.
# Outside the checkout it installs Debian packages and nothing else (README, "Tests"):
# scripts/host-guard.sh records the machine after the installs and compares at the end
# (a difference fails the run in CI, and is reported elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ "${SMLAUNCH_QUICK:-0}" != 1 ]; then
  scripts/install-packages.sh tidy fuzz docker
fi
mkdir -p build
scripts/host-guard.sh record build/host-before.txt

guard() {
  if ! scripts/host-guard.sh compare build/host-before.txt; then
    if [ -n "${CI:-}" ] || [ "${SMLAUNCH_HOST_GUARD:-}" = strict ]; then exit 1; fi
    echo "host-guard: (not fatal outside CI; SMLAUNCH_HOST_GUARD=strict makes it so)" >&2
  fi
}

echo "== tests"
(cd build && ctest --output-on-failure --timeout 900 -j "${SMLAUNCH_TEST_JOBS:-2}" "$@")
if [ "${SMLAUNCH_QUICK:-0}" = 1 ]; then guard; exit 0; fi

echo "== the CPU image, built and run in containers (docker/ci.sh)"
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

echo "== the machine is as it was"
guard
