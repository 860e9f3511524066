#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for smlaunch: Debian packages, the Python venv with
# Chainer, and the build. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: build tools and libraries, what jobs need at run time (Python, numpy on
# OpenBLAS, MPI, ssh), what the tests drive (curl, ip, unshare).
scripts/install-packages.sh build run test
# pip's cache stays in the checkout, not in ~/.cache.
export PIP_CACHE_DIR="$PWD/.cache/pip"

# Python: Debian's /usr/bin/python3 in a venv that sees Debian's numpy and mpi4py (they
# match Debian's Open MPI); Chainer, pure Python, comes from PyPI at a pinned version.
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from /usr/bin/python3 (with Debian's site packages)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c 'import chainer, sys; sys.exit(chainer.__version__ != "7.8.1")' 2>/dev/null; then
  echo "setup: installing chainer==7.8.1 into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check chainer==7.8.1
fi

# Test tooling, kept out of the runtime venv: moto's S3 server (checks SigV4 signatures).
if [ ! -x .cache/moto/bin/moto_server ]; then
  echo "setup: installing moto[server] into .cache/moto (S3 server for the staging tests)"
  rm -rf .cache/moto
  /usr/bin/python3 -m venv .cache/moto
  .cache/moto/bin/python -m pip install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi

echo "setup: building smlaunch in build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
