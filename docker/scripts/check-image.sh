#!/usr/bin/env bash
# Runtime stage, last step: the installed layout works. smlaunch, train and serve on PATH,
# the helper and the hostname shim beside them, the Python it will use, sshd's config.
set -euo pipefail
prefix="${SMLAUNCH_PREFIX:-/usr/local}"
for f in bin/smlaunch bin/train bin/smlaunch-fetch lib/libsmlaunch_hostname.so; do
  [ -e "$prefix/$f" ] || { echo "check-image.sh: $prefix/$f is missing" >&2; exit 1; }
done
[ -e "$prefix/bin/serve" ] || echo "check-image.sh: note: $prefix/bin/serve is not installed"
"$prefix/bin/smlaunch" --version
"$prefix/bin/train" --help >/dev/null
python3 -c "import chainer, mpi4py, numpy" || { echo "check-image.sh: python3 ($(command -v python3)) lacks chainer/mpi4py/numpy" >&2; exit 1; }
# numpy must run on an optimized BLAS (README, "BLAS"): the reference BLAS is ~8x slower.
python3 -c "
import numpy, threadpoolctl, sys
apis = [i['internal_api'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']
print('check-image.sh: numpy', numpy.__version__, 'BLAS', apis)
sys.exit(not apis or any(a not in ('openblas', 'mkl', 'blis') for a in apis))" \
  || { echo "check-image.sh: numpy does not run on an optimized BLAS" >&2; exit 1; }
/usr/sbin/sshd -t
echo "check-image.sh: ok"
