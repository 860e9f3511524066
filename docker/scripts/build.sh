#!/usr/bin/env bash
# Build stage: install the build dependencies, build smlaunch, run its tests (those that
# need network namespaces skip inside `docker build`), and install it under $1 (a staging
# root that the runtime stage copies to /).
#   docker/scripts/build.sh /staging
set -euo pipefail
cd "$(dirname "$0")/../.."
staging="${1:?usage: build.sh STAGING_DIR}"

# Ubuntu 22.04 (the CUDA image) has GCC 11 by default; smlaunch is C++20 built with GCC 12.
if [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = ubuntu ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++-12 >/dev/null
  export CC=gcc-12 CXX=g++-12
fi
SMLAUNCH_QUICK=1 ./scripts/test.sh
cmake --install build --prefix "$staging/usr/local"
