#!/usr/bin/env bash
# Set up, build, and run every test (unit and integration). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cd build
ctest --output-on-failure --timeout 900 -j "${SMLAUNCH_TEST_JOBS:-2}" "$@"
