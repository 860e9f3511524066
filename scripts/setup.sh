#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for smlaunch: Debian packages, the Python venv with
# Chainer, and the build. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Build tools and libraries (C++), then what jobs need at run time (Python, pip, MPI, ssh).
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libboost-program-options-dev libboost-dev nlohmann-json3-dev libspdlog-dev
  libgtest-dev libgmock-dev libarchive-dev libcurl4-openssl-dev
  python3 python3-venv python3-pip python3-numpy python3-mpi4py python3-setuptools python3-wheel
  openmpi-bin libopenmpi-dev openssh-server openssh-client iproute2 util-linux procps time
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

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
