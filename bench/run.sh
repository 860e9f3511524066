#!/usr/bin/env bash
# Set up, build (Release) and run every benchmark; prints one table per suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
scripts/install-packages.sh bench
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSMLAUNCH_BUILD_TESTS=OFF >/dev/null
cmake --build build-release >/dev/null
echo "== launcher: start-up, memory, output throughput (baseline: the script run directly)"
.venv/bin/python bench/bench_launcher.py build-release/bin/smlaunch "$PWD/.venv/bin/python" "$@"
echo
echo "== plan: time and memory as the job grows (baseline: the reference's computation in Python)"
.venv/bin/python bench/bench_plan.py build-release/bin/smlaunch "$PWD/.venv/bin/python"
echo
echo "== MPI: start and end latency on simulated hosts (baseline: plain mpirun on the same hosts)"
.venv/bin/python bench/bench_mpi.py build-release/bin/smlaunch "$PWD/.venv/bin/python"
echo
echo "== BLAS and thread budget: the Chainer example, optimized against reference BLAS (baseline: the reference BLAS; no budget)"
.venv/bin/python bench/bench_blas.py build-release/bin/smlaunch "$PWD/.venv/bin/python"
echo
echo "== thread budget: N ranks of numpy on one host (baseline: no budget, every rank free to use every core)"
.venv/bin/python bench/bench_thread_budget.py build-release/bin/smlaunch "$PWD/.venv/bin/python"
echo
echo "== serving: requests/s and latency (baseline: nginx + gunicorn (gevent) + Flask, same handlers)"
.venv/bin/python bench/bench_serve.py build-release/bin/smlaunch "$PWD/.venv/bin/python"

if [ "$(id -u)" = 0 ]; then
  echo
  echo "== Slurm: a 2-node job's start and end latency (baseline: the same job over SSH with smlaunch local)"
  scripts/install-packages.sh test >/dev/null
  .venv/bin/python bench/bench_slurm.py build-release/bin/smlaunch "$PWD/.venv/bin/python"
  echo
  echo "== the SageMaker SDK's local mode against smlaunch local / serve (Docker; baseline: the SDK)"
  bench/sdk_local.sh
fi
