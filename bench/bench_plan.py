#!/usr/bin/env python3
"""`smlaunch plan` time and memory as the job grows: 1, 64, 1024 and 4096 hosts, each
with 100 channels and 1,000 hyperparameters. Baseline: the reference's computation of
the same variables in Python (tests/integration/reference_oracle.py, i.e. the toolkit's
to_env_vars/to_cmd_args), run as its own process as the toolkit would be.

Usage: bench_plan.py SMLAUNCH PYTHON [--repeat 3]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ORACLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration")
ORACLE = "import sys; sys.path.insert(0, %r); import reference_oracle; reference_oracle.expected(sys.argv[1])" % ORACLE_DIR


def make_tree(root, hosts):
    base = os.path.join(root, "h%d" % hosts, "opt", "ml")
    cfg = os.path.join(base, "input", "config")
    os.makedirs(cfg)
    os.makedirs(os.path.join(base, "code"))
    open(os.path.join(base, "code", "train.py"), "w").write("pass\n")
    names = ["algo-%d" % i for i in range(1, hosts + 1)]
    hps = {"hp_%04d" % i: json.dumps([i, "value %d" % i, {"lr": i / 1000.0}] if i % 3 == 0 else i * 1.5)
           for i in range(1000)}
    hps["sagemaker_program"] = '"train.py"'
    hps["sagemaker_use_mpi"] = "false"
    json.dump(hps, open(os.path.join(cfg, "hyperparameters.json"), "w"))
    json.dump({"current_host": names[0], "hosts": names,
               "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.p4d.24xlarge",
                                    "hosts": names}]}, open(os.path.join(cfg, "resourceconfig.json"), "w"))
    json.dump({"channel-%03d" % i: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
               for i in range(100)}, open(os.path.join(cfg, "inputdataconfig.json"), "w"))
    return base


def measure(argv, env):
    """Wall time, and peak RSS as GNU time reports it (ru_maxrss read by this Python would
    include the pages of the forked bench process itself)."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (argv[0], proc.stderr[-2000:]))
    return seconds, int(proc.stderr.strip().splitlines()[-1]) / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("smlaunch")
    ap.add_argument("python")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMLAUNCH_", "SM_"))}
    env.update({"SMLAUNCH_NUM_GPUS": "0", "SMLAUNCH_LOG_LEVEL": "warning"})
    root = tempfile.mkdtemp(prefix="smlaunch-bench-plan-")
    rows = []
    try:
        for hosts in (1, 64, 1024, 4096):
            base = make_tree(root, hosts)
            ours = [measure([args.smlaunch, "plan", "--base-dir", base, "--python", args.python], env)
                    for _ in range(args.repeat)]
            ref = [measure([args.python, "-c", ORACLE, base], env) for _ in range(args.repeat)]
            rows.append((hosts, statistics.median(o[0] for o in ours) * 1000, max(o[1] for o in ours),
                         statistics.median(r[0] for r in ref) * 1000, max(r[1] for r in ref)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("%-44s %12s %12s %8s" % ("figure (100 channels, 1000 hyperparameters)", "smlaunch", "reference", "ratio"))
    for hosts, t, m, rt, rm in rows:
        print("%-44s %12.1f %12.1f %8.2f" % ("plan time, %d hosts, median of %d (ms)" % (hosts, args.repeat), t, rt, t / rt))
        print("%-44s %12.1f %12.1f %8.2f" % ("plan peak memory, %d hosts (MiB)" % hosts, m, rm, m / rm))
    (h1, t1, m1, _, _), (h4, t4, m4, _, _) = rows[-2], rows[-1]
    print("growth from %d to %d hosts: time x%.2f, memory x%.2f (linear would be at most x%.1f)"
          % (h1, h4, t4 / t1, m4 / m1, h4 / h1))


if __name__ == "__main__":
    main()
