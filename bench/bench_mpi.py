#!/usr/bin/env python3
"""MPI start and end latency with 4 simulated hosts (network namespaces, one sshd per
host), through smlaunch against plain mpirun on the same cluster in the same invocation.

start: from the last host's launcher start (baseline: mpirun's start) to every rank running
end:   from the last rank's exit to every host's launcher exit (baseline: mpirun's exit)
Usage (root): bench_mpi.py SMLAUNCH PYTHON [--hosts 4] [--repeat 3]
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cluster"))
from cluster import Cluster  # noqa: E402

RANK = r'''
import json, os, time
started = time.time()
from mpi4py import MPI
comm = MPI.COMM_WORLD
comm.Barrier()
out = os.environ.get("BENCH_OUT") or os.environ["SM_OUTPUT_DATA_DIR"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "rank-%d.json" % comm.Get_rank()), "w") as f:
    json.dump({"started": started, "ended": time.time()}, f)
'''


def ranks(dirs):
    out = []
    for d in dirs:
        if os.path.isdir(d):
            for n in os.listdir(d):
                if n.startswith("rank-"):
                    out.append(json.load(open(os.path.join(d, n))))
    return out


def with_smlaunch(c, smlaunch, python, root):
    src = os.path.join(root, "src")
    os.makedirs(src, exist_ok=True)
    open(os.path.join(src, "train.py"), "w").write(RANK)
    procs, starts = {}, {}
    for h in c.hosts:
        base = os.path.join(root, h, "opt", "ml")
        shutil.rmtree(os.path.join(root, h), ignore_errors=True)
        os.makedirs(os.path.join(base, "input", "config"))
        cfg = os.path.join(base, "input", "config")
        json.dump({"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps("file://" + src)},
                  open(os.path.join(cfg, "hyperparameters.json"), "w"))
        json.dump({"current_host": h, "hosts": c.hosts, "network_interface_name": c.iface},
                  open(os.path.join(cfg, "resourceconfig.json"), "w"))
        json.dump({}, open(os.path.join(cfg, "inputdataconfig.json"), "w"))
    for h in c.hosts:
        env = {"PATH": os.environ["PATH"], "HOME": "/root", "LANG": "C.UTF-8", "SMLAUNCH_SSH_COMMAND": c.ssh_cmd,
               "SMLAUNCH_SSHD_CONFIG": c.sshd_config_path(h),
               "SMLAUNCH_NUM_GPUS": "0", "SMLAUNCH_LOG_LEVEL": os.environ.get("BENCH_LOG", "warning")}
        starts[h] = time.time()
        procs[h] = c.popen(h, [smlaunch, "train", "--base-dir", os.path.join(root, h, "opt", "ml"), "--python", python],
                           env=env, inherit_env=False, stdout=None if os.environ.get("BENCH_LOG") else subprocess.DEVNULL, stderr=None if os.environ.get("BENCH_LOG") else subprocess.DEVNULL)
    ends = {}
    pending = dict(procs)
    deadline = time.time() + float(os.environ.get("BENCH_TIMEOUT", "300"))
    while pending:
        for h, p in list(pending.items()):
            if p.poll() is not None:
                ends[h] = time.time()
                assert p.returncode == 0, "smlaunch on %s exited %d" % (h, p.returncode)
                del pending[h]
        if time.time() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.005)
    rs = ranks([os.path.join(root, h, "opt", "ml", "output", "data") for h in c.hosts])
    return max(r["started"] for r in rs) - max(starts.values()), max(ends.values()) - max(r["ended"] for r in rs)


def plain_mpirun(c, python, root):
    out = os.path.join(root, "plain")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    script = os.path.join(root, "rank.py")
    open(script, "w").write(RANK)
    argv = ["mpirun", "--host", ",".join(c.hosts), "-np", str(len(c.hosts)), "--allow-run-as-root",
            *c.ompi_mca_args(), "-x", "BENCH_OUT=" + out, "-x", "PATH", python, "-m", "mpi4py", script]
    start = time.time()
    c.run(c.hosts[0], argv, timeout=300, check=True, inherit_env=False, env={"PATH": os.environ["PATH"], "HOME": "/root"})
    end = time.time()
    rs = ranks([out])
    return max(r["started"] for r in rs) - start, end - max(r["ended"] for r in rs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("smlaunch")
    ap.add_argument("python")
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ok, why = Cluster.available()
    if not ok:
        print("skipped: " + why)
        return
    # A short root: ssh's shared-connection sockets must fit in a Unix socket path.
    root = tempfile.mkdtemp(prefix="smb-", dir="/tmp")
    try:
        ours, base = [], []
        with Cluster(args.hosts, start_sshd=False) as c:
            for _ in range(args.repeat):
                ours.append(with_smlaunch(c, args.smlaunch, args.python, root))
        with Cluster(args.hosts) as c:  # sshd started by the harness for plain mpirun
            c.wait_ssh_ready(30)
            for _ in range(args.repeat):
                base.append(plain_mpirun(c, args.python, root))
        rows = [("start: last launcher start -> every rank running (s)", statistics.median(o[0] for o in ours),
                 statistics.median(b[0] for b in base)),
                ("end: last rank exit -> every launcher exit (s)", statistics.median(o[1] for o in ours),
                 statistics.median(b[1] for b in base))]
        width = max(len(r[0]) for r in rows)
        print("%-*s  %10s  %10s  %s" % (width, "figure (%d hosts, median of %d)" % (args.hosts, args.repeat),
                                        "smlaunch", "mpirun", "difference"))
        for name, o, b in rows:
            print("%-*s  %10.3f  %10.3f  %+.3f s" % (width, name, o, b, o - b))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
