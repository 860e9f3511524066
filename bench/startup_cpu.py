#!/usr/bin/env python3
"""Issue 13: where the launcher's share of a Python script's start goes, in CPU time. Each
round runs, in a shuffled order, the trivial Python script directly, under tini (a supervisor
that only forks and waits), under `smlaunch train`, and directly and under tini with the
environment smlaunch gives the script (SM_*, PYTHONPATH: the contract's cost inside Python
itself); wall time and CPU time (getrusage of the children) are medians over the rounds, and
"paired wall" the median of each run's difference from the direct run of its round.

Usage: startup_cpu.py SMLAUNCH PYTHON [--runs 300]    (pin it with taskset -c N to take the
CPU placement of a small VM out)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile

from bench_launcher import (TRIVIAL_PY, env, installed_copy, interleaved_samples, paired_interval, paired_median,
                            tree_in_place)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("smlaunch")
    parser.add_argument("python")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="smlaunch-bench-cpu-")
    try:
        args.smlaunch = installed_copy(shutil.which(args.smlaunch) or args.smlaunch, root, "bin")
        base = tree_in_place(root, "train.py", TRIVIAL_PY, args.smlaunch, args.python)
        launcher = [args.smlaunch, "train", "--base-dir", base, "--python", args.python]
        plan = json.loads(subprocess.run([args.smlaunch, "plan", "--base-dir", base, "--python", args.python],
                                         check=True, env=env(), capture_output=True, text=True).stdout)
        code = os.path.join(base, "code")
        direct = [args.python, "train.py"]
        script_env = plan["steps"][-1]["env"]
        cases = {"direct": (direct, env()), "smlaunch train": (launcher, env()),
                 "direct, with the script's environment from smlaunch": (direct, script_env)}
        if shutil.which("tini"):  # from a copy, as smlaunch (bench_launcher.installed_copy)
            tini = [installed_copy(shutil.which("tini"), root, "tini"), "-s", "--"] + direct
            cases["tini -s --"] = (tini, env())
            cases["tini -s --, with the script's environment from smlaunch"] = (tini, script_env)
        names = list(cases)
        wall_samples, cpu_samples = interleaved_samples([(cases[n][0], code, cases[n][1]) for n in names], args.runs)
        wall = dict(zip(names, wall_samples))
        cpu = dict(zip(names, cpu_samples))
        base_wall, base_cpu = statistics.median(wall["direct"]), statistics.median(cpu["direct"])
        print("%-58s %9s %9s %12s %12s %12s %14s" % ("python script, median of %d" % args.runs, "wall ms", "cpu ms",
                                                      "wall - direct", "cpu - direct", "paired wall", "95% interval"))
        for name in cases:
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            paired = paired_median(wall[name], wall["direct"])
            low, high = paired_interval(wall[name], wall["direct"])
            print("%-58s %9.2f %9.2f %12.2f %12.2f %12.2f %14s" % (name, w, c, w - base_wall, c - base_cpu, paired,
                                                                  "%.2f-%.2f" % (low, high)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
