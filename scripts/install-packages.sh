#!/usr/bin/env bash
# The Debian (or Ubuntu) packages smlaunch needs, by group; installs only what is missing.
#   scripts/install-packages.sh build     compilers, CMake, the C++ libraries (the image's build stage)
#   scripts/install-packages.sh run       what jobs need: Python, numpy on OpenBLAS, mpi4py, Open MPI, ssh
#   scripts/install-packages.sh test      what the tests drive: curl, sshd, ip, unshare, Slurm + munge
#   scripts/install-packages.sh tidy      clang-tidy (scripts/tidy.sh)
#   scripts/install-packages.sh fuzz      clang 14 with libFuzzer and the sanitizers (scripts/fuzz.sh)
#   scripts/install-packages.sh docker    Debian's Docker engine, compose 1.29, mmdebstrap (docker/engine.sh)
#   scripts/install-packages.sh bench     the reference BLAS for bench/bench_blas.py's baseline
# scripts/setup.sh installs the first three, scripts/test.sh all of them. Needs root (or sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=()
for group in "$@"; do
  case "$group" in
    build)
      packages+=(build-essential cmake ninja-build pkg-config
                 libboost-dev nlohmann-json3-dev libspdlog-dev
                 libgtest-dev libgmock-dev libarchive-dev libcurl4-openssl-dev)
      # Ubuntu 22.04 (the CUDA image's build stage) defaults to GCC 11; smlaunch is built with 12.
      if [ -r /etc/os-release ] && (. /etc/os-release && [ "${ID:-}" = ubuntu ]); then packages+=(g++-12); fi ;;
    run)
      # libopenblas0-pthread: Debian's numpy links libblas.so.3, an alternative that otherwise
      # points to the unoptimised reference BLAS (8x slower training; README, "BLAS").
      packages+=(python3 python3-venv python3-pip python3-numpy python3-mpi4py python3-setuptools
                 python3-wheel python3-threadpoolctl libopenblas0-pthread
                 openmpi-bin libopenmpi-dev openssh-server openssh-client procps) ;;
    test)
      packages+=(curl iproute2 util-linux procps time openssh-server openssh-client slurm-wlm munge) ;;
    tidy)
      packages+=(clang-tidy clang-format) ;;
    fuzz)
      packages+=(clang libclang-rt-14-dev) ;;
    docker)
      packages+=(docker.io docker-compose mmdebstrap) ;;
    bench)
      # The reference BLAS, the baseline of bench_blas.py (OpenBLAS stays the default), and
      # tini, the minimal supervisor that bench_launcher.py's start-up figures are set beside.
      packages+=(libblas3 liblapack3 tini) ;;
    *) echo "install-packages.sh: unknown group '$group' (build, run, test, tidy, fuzz, docker or bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-packages.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
