"""The thread budget on one host with several MPI ranks: the same job through `smlaunch
train` with smlaunch's budget (OMP/OPENBLAS/MKL_NUM_THREADS = CPUs / ranks) against the same
job with every rank free to use every core (the three variables set to the CPU count in the
job's environment, as a user would; smlaunch keeps a user's value). Each rank multiplies
float64 matrices with numpy (whatever BLAS numpy loads: printed first), so this measures
oversubscription, not the launcher.

    python bench/bench_thread_budget.py build-release/bin/smlaunch "$PWD/.venv/bin/python" [--ranks 8]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RANK = r"""
import os, time, numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
size, iters = int(os.environ["SM_HP_SIZE"]), int(os.environ["SM_HP_ITERS"])
a = np.random.default_rng(comm.rank).standard_normal((size, size))
comm.Barrier()
start = time.perf_counter()
for _ in range(iters):
    a = a @ a
    a /= np.abs(a).max()
took = time.perf_counter() - start
print("RANK %d %.4f %s" % (comm.rank, took, os.environ.get("OPENBLAS_NUM_THREADS", "-")), flush=True)
"""


def make_tree(root, ranks, size, iters):
    base = os.path.join(root, "opt", "ml")
    src = os.path.join(root, "src")
    os.makedirs(os.path.join(base, "input", "config"))
    os.makedirs(src)
    with open(os.path.join(src, "rank.py"), "w") as f:
        f.write(RANK)
    hps = {"sagemaker_program": '"rank.py"', "sagemaker_submit_directory": json.dumps("file://" + src),
           "sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": str(ranks),
           "size": str(size), "iters": str(iters)}
    for name, obj in (("hyperparameters.json", hps),
                      ("resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]}),
                      ("inputdataconfig.json", {})):
        with open(os.path.join(base, "input", "config", name), "w") as f:
            json.dump(obj, f)
    return base


def run_job(smlaunch, python, ranks, size, iters, budget):
    root = tempfile.mkdtemp(prefix="smlaunch-budget-")
    try:
        base = make_tree(root, ranks, size, iters)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SM_", "SMLAUNCH_")) and k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        env.update({"SMLAUNCH_LOG_LEVEL": "warning", "SMLAUNCH_NUM_GPUS": "0"})
        if not budget:
            cpus = str(os.cpu_count())
            env.update({"OMP_NUM_THREADS": cpus, "OPENBLAS_NUM_THREADS": cpus, "MKL_NUM_THREADS": cpus})
        start = time.perf_counter()
        proc = subprocess.run([smlaunch, "train", "--base-dir", base, "--python", python], env=env,
                              capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit("job failed (%d):\n%s%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        found = re.findall(r"RANK (\d+) ([\d.]+) (\S+)", proc.stdout)
        if len(found) != ranks:
            sys.exit("expected %d rank lines, got:\n%s" % (ranks, proc.stdout[-3000:]))
        return wall, max(float(t) for _, t, _ in found), found[0][2]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("smlaunch")
    parser.add_argument("python")
    parser.add_argument("--ranks", type=int, default=max(2, (os.cpu_count() or 2) // 2))
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    blas = subprocess.run([args.python, "-c", "import json, numpy, threadpoolctl; print(json.dumps([(i['internal_api'], "
                           "i.get('version'), i['num_threads']) for i in threadpoolctl.threadpool_info()]))"],
                          capture_output=True, text=True)
    print("cpus: %d, ranks on the host: %d, numpy's BLAS (threadpoolctl): %s" % (
        os.cpu_count(), args.ranks, blas.stdout.strip() or blas.stderr.strip()[-200:]))
    results = {True: [], False: []}
    threads = {}
    for _ in range(args.rounds):  # alternating, so that drift falls on both alike
        for budget in (True, False):
            wall, compute, t = run_job(args.smlaunch, args.python, args.ranks, args.size, args.iters, budget)
            results[budget].append((wall, compute))
            threads[budget] = t
    print("%-44s %12s %16s %10s" % ("configuration (median of %d)" % args.rounds, "job wall (s)", "slowest rank (s)", "vs budget"))
    base_wall = statistics.median(w for w, _ in results[True])
    for budget, name in ((True, "thread budget (OPENBLAS_NUM_THREADS=%s)" % threads[True]),
                         (False, "no budget (OPENBLAS_NUM_THREADS=%s)" % threads[False])):
        wall = statistics.median(w for w, _ in results[budget])
        compute = statistics.median(c for _, c in results[budget])
        print("%-44s %12.2f %16.2f %9.2fx" % (name, wall, compute, wall / base_wall))


if __name__ == "__main__":
    main()
