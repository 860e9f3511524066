#!/usr/bin/env bash
# Runtime stage, step 2: the Python that runs user code. A venv made from the
# distribution's python3 that sees its numpy and mpi4py (they match its Open MPI), with
# Chainer at the pinned version from PyPI; the image puts $SMLAUNCH_VENV/bin first on PATH,
# so `python3` (smlaunch's default) is this one.
#   python-env.sh          CPU
#   python-env.sh --gpu    also CuPy for CUDA 11.x
set -euo pipefail
venv="${SMLAUNCH_VENV:-/opt/smlaunch/venv}"
chainer="${CHAINER_VERSION:-7.8.1}"
cupy="${CUPY_PACKAGE:-cupy-cuda11x==12.3.0}"

if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir)
if ! "$venv/bin/python" -c "import chainer, sys; sys.exit(chainer.__version__ != '$chainer')" 2>/dev/null; then
  "${pip[@]}" "chainer==$chainer"
fi
if [ "${1:-}" = --gpu ]; then
  "${pip[@]}" "$cupy"
fi
"$venv/bin/python" -c "import chainer, chainermn, numpy, mpi4py; print('python-env.sh: ok (chainer', chainer.__version__, ', numpy', numpy.__version__, ', mpi4py', mpi4py.__version__, ')')"
