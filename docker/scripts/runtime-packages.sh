#!/usr/bin/env bash
# Runtime stage, step 1: what a training container needs from the distribution: Python
# with numpy and mpi4py (built against this Open MPI) on OpenBLAS (numpy links libblas.so.3,
# which otherwise resolves to the reference BLAS), Open MPI, an SSH server and client
# for MPI between containers, iproute2, and smlaunch's shared libraries.
# Debian 12 (the CPU image) and Ubuntu 22.04 (the CUDA image). Idempotent.
set -euo pipefail
. /etc/os-release
case "${VERSION_CODENAME:-}" in
  bookworm) libs=(libspdlog1.10 libfmt9) ;;
  jammy) libs=(libspdlog1 libfmt8) ;;
  *) echo "runtime-packages.sh: unsupported distribution ${PRETTY_NAME:-unknown} (expected Debian 12 or Ubuntu 22.04)" >&2
     exit 1 ;;
esac
packages=(
  ca-certificates procps iproute2 util-linux
  python3 python3-venv python3-pip python3-numpy python3-mpi4py python3-threadpoolctl
  libopenblas0-pthread
  openmpi-bin openssh-server openssh-client
  libarchive13 libcurl4 "${libs[@]}"
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "runtime-packages.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# An image carries no package lists; a machine that runs this for CI keeps its own.
if [ "${SMLAUNCH_IMAGE_BUILD:-0}" = 1 ]; then
  rm -rf /var/lib/apt/lists/*
fi
echo "runtime-packages.sh: ok ($(mpirun --version 2>/dev/null | head -1), $(/usr/bin/python3 --version))"
