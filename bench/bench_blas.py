#!/usr/bin/env python3
"""Issue 13: the Chainer example with the optimized BLAS (OpenBLAS, Debian's libblas.so.3
alternative) against the reference BLAS (forced with LD_LIBRARY_PATH to Debian's blas/ and
lapack/ folders), and, for several ranks per host, with smlaunch's thread budget against
none (every rank free to use every core: OMP/OPENBLAS/MKL_NUM_THREADS = the CPU count, set
as the user would, which the budget keeps), and on one host with the kernels OpenBLAS picks
itself (OPENBLAS_CORETYPE set to what it reports without smlaunch, which smlaunch keeps)
against those smlaunch sets from the CPU (env/blas_core.hpp). Each configuration is a whole `smlaunch local`
job, timed from its start to its exit (model.tar.gz written); the final test accuracy is
read from the job's output. The variants of one shape run in turn, `--rounds` times.

Usage: bench_blas.py SMLAUNCH PYTHON [--units 1000] [--samples 20000] [--epochs 2]
                     [--rounds 1] [--shapes 1x1,2x2] [--skip-reference-mpi]
Several hosts need root (network namespaces), as `smlaunch local` does.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "chainer")
REFERENCE = "/usr/lib/x86_64-linux-gnu/blas:/usr/lib/x86_64-linux-gnu/lapack"


def base_env():
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("SMLAUNCH_", "SM_", "PIP_", "OMP_", "OPENBLAS_", "MKL_")) and k != "LD_LIBRARY_PATH"}
    e.update({"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "SMLAUNCH_DNS_TIMEOUT": "0"})
    return e


def blas_in_use(python, env):
    code = ("import threadpoolctl, numpy; i = threadpoolctl.threadpool_info(); "
            "print(','.join(sorted(set(x['internal_api'] for x in i))) or 'reference')")
    return subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def openblas_own_kernels(python, env):
    """The kernels OpenBLAS picks itself here (threadpoolctl's architecture), or None."""
    code = ("import threadpoolctl, numpy; i = [x for x in threadpoolctl.threadpool_info() "
            "if x['internal_api'] == 'openblas']; print(i[0]['architecture'] if i else '')")
    found = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    return found or None


def run_job(smlaunch, python, data, root, name, hosts, per_host, args, env):
    job_dir = os.path.join(root, name)
    shutil.rmtree(job_dir, ignore_errors=True)
    argv = [smlaunch, "local", "--entry-point", os.path.join(EXAMPLE, "train.py"), "--python", python,
            "--channel", "train=" + os.path.join(data, "train"), "--channel", "test=" + os.path.join(data, "test"),
            "--hyperparameter", "units=%d" % args.units, "--hyperparameter", "epochs=%d" % args.epochs,
            "--instance-count", str(hosts), "--job-dir", job_dir, "--job-name", name]
    if per_host > 1 or hosts > 1:
        argv += ["--use-mpi", "--processes-per-host", str(per_host)]
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=args.timeout)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0 or not os.path.exists(os.path.join(job_dir, "model.tar.gz")):
        sys.exit("%s failed (%d):\n%s" % (name, result.returncode, output[-4000:]))
    found = re.findall(r"final test accuracy: ([0-9.]+)", output)
    return seconds, float(found[-1]) if found else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("smlaunch")
    parser.add_argument("python")
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--shapes", default="1x1,2x2")
    parser.add_argument("--skip-reference-mpi", action="store_true",
                        help="2x2: only the budget against no budget (the reference BLAS run is the slow one)")
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()
    smlaunch = os.path.abspath(args.smlaunch)

    for folder in REFERENCE.split(":"):
        if not os.path.isdir(folder):
            sys.exit("%s is missing: the reference BLAS needs Debian's libblas3 and liblapack3 "
                     "(apt-get install libblas3 liblapack3; OpenBLAS keeps the libblas.so.3 alternative)" % folder)
    root = tempfile.mkdtemp(prefix="smlaunch-bench-blas-")
    data = os.path.join(root, "data")
    subprocess.run([args.python, os.path.join(EXAMPLE, "generate_data.py"), os.path.join(data, "train"),
                    os.path.join(data, "test"), "--samples", str(args.samples)], check=True, capture_output=True)
    cpus = os.cpu_count()
    optimized = base_env()
    reference = dict(optimized, LD_LIBRARY_PATH=REFERENCE)
    unbudgeted = dict(optimized, **{n: str(cpus) for n in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    print("BLAS: optimized = %s, reference = %s (LD_LIBRARY_PATH=%s); %d CPUs" %
          (blas_in_use(args.python, optimized), blas_in_use(args.python, reference), REFERENCE, cpus))
    own = openblas_own_kernels(args.python, optimized)
    print("OpenBLAS's own kernels here: %s" % own)
    print("example: --units %d --samples %d --epochs %d" % (args.units, args.samples, args.epochs))

    rows = []
    for shape in args.shapes.split(","):
        hosts, per_host = (int(x) for x in shape.split("x"))
        variants = [("optimized BLAS", optimized)]
        if own and hosts * per_host == 1:
            variants.append(("optimized BLAS, OpenBLAS's own kernels (%s)" % own, dict(optimized, OPENBLAS_CORETYPE=own)))
        if hosts * per_host > 1 and per_host > 1:
            variants.append(("optimized BLAS, no thread budget (%d threads per rank)" % cpus, unbudgeted))
        if not (args.skip_reference_mpi and hosts * per_host > 1):
            variants.append(("reference BLAS", reference))
        times = {v: [] for v, _ in variants}
        accuracy = {}
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else list(reversed(variants))
            for label, env in order:
                name = "job-%dx%d-%d" % (hosts, per_host, abs(hash(label)) % 1000)
                seconds, acc = run_job(smlaunch, args.python, data, root, name, hosts, per_host, args, env)
                times[label].append(seconds)
                accuracy[label] = acc
                print("  %d host(s) x %d: %-55s %7.2f s  accuracy %.4f" % (hosts, per_host, label, seconds, acc),
                      flush=True)
        base = statistics.median(times["optimized BLAS"])
        for label, _ in variants:
            t = statistics.median(times[label])
            rows.append((shape, label, t, accuracy[label], t / base))
    print()
    print("| hosts x processes | configuration | time to model.tar.gz (s) | final accuracy | time / optimized |")
    print("| --- | --- | ---: | ---: | ---: |")
    for shape, label, t, acc, ratio in rows:
        print("| %s | %s | %.2f | %.4f | %.2fx |" % (shape, label, t, acc, ratio))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
