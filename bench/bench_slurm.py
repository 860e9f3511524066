#!/usr/bin/env python3
"""Start and end latency of a 2-node MPI job under Slurm against the same job over SSH
with `smlaunch local`, in the same invocation, on this machine.

Slurm: a real slurmctld + 2 slurmds (tests/slurm/slurm_cluster.py); the batch script runs
`smlaunch train --base-dir <root>/%n` (ranks started through srun, no ssh).
SSH:   `smlaunch local --instance-count 2` (network namespaces, sshd per host).
Each job: 2 hosts x 1 rank of a tiny mpi4py script that records when it started and ended.

start: from the command (sbatch / smlaunch local) to every rank running; for Slurm also
       from the batch script's start (after Slurm's scheduling) to every rank running
end:   from the last rank's exit to smlaunch's exit (Slurm: the batch script's next line;
       local: `smlaunch local` exiting, which also collects the trees)
Usage (root): bench_slurm.py SMLAUNCH PYTHON [--repeat 3]
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "slurm"))
from slurm_cluster import SlurmCluster  # noqa: E402
from bench_mpi import RANK, ranks  # noqa: E402  (the same rank script and its records)


def under_slurm(c, smlaunch, python, root, src):
    job_root = os.path.join(root, "slurm")
    shutil.rmtree(job_root, ignore_errors=True)
    for h in c.hosts:
        cfg = os.path.join(job_root, h, "input", "config")
        os.makedirs(cfg)
        json.dump({"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps("file://" + src),
                   "sagemaker_use_mpi": "true"}, open(os.path.join(cfg, "hyperparameters.json"), "w"))
        json.dump({}, open(os.path.join(cfg, "inputdataconfig.json"), "w"))
    script = os.path.join(job_root, "job.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\ndate +%%s.%%N > %s/script-start\n"
                "%s train --base-dir %s/%%n --python %s --num-gpus 0 --log-level warning\nrc=$?\n"
                "date +%%s.%%N > %s/script-end\nexit $rc\n" % (job_root, smlaunch, job_root, python, job_root))
    os.chmod(script, 0o755)
    submitted = time.time()
    job = c.sbatch(script, ["-N2", "--ntasks-per-node=1", "-o", os.path.join(job_root, "out")], cwd=job_root)
    fields = c.wait_job(job, 300)
    assert fields.get("JobState") == "COMPLETED", (fields, open(os.path.join(job_root, "out")).read())
    rs = ranks([os.path.join(job_root, h, "output", "data") for h in c.hosts])
    assert len(rs) == 2, rs
    script_start = float(open(os.path.join(job_root, "script-start")).read())
    script_end = float(open(os.path.join(job_root, "script-end")).read())
    last_start = max(r["started"] for r in rs)
    return last_start - submitted, last_start - script_start, script_end - max(r["ended"] for r in rs)


def over_ssh(smlaunch, python, root, src):
    job_dir = os.path.join(root, "local")
    shutil.rmtree(job_dir, ignore_errors=True)
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "LANG": "C.UTF-8"}
    start = time.time()
    p = subprocess.run([smlaunch, "local", "--instance-count", "2", "--source-dir", src, "--entry-point", "train.py",
                        "--job-dir", job_dir, "--python", python, "--keep",
                        "--log-level", "warning"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    end = time.time()
    assert p.returncode == 0, p.stdout.decode(errors="replace")[-3000:]
    dirs = [os.path.join(dp) for dp, dn, fn in os.walk(job_dir) if any(n.startswith("rank-") for n in fn)]
    rs = ranks(dirs)
    assert len(rs) >= 2, (dirs, rs)
    return max(r["started"] for r in rs) - start, end - max(r["ended"] for r in rs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("smlaunch")
    ap.add_argument("python")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    args.smlaunch = os.path.abspath(args.smlaunch)  # the batch script runs in the job's directory
    ok, why = SlurmCluster.available()
    if not ok:
        print("skipped: " + why)
        return
    root = tempfile.mkdtemp(prefix="smb-slurm-", dir="/tmp")
    os.chmod(root, 0o755)
    try:
        src = os.path.join(root, "src")
        os.makedirs(src)
        open(os.path.join(src, "train.py"), "w").write(RANK)
        slurm, ssh = [], []
        with SlurmCluster(2) as c:
            for _ in range(args.repeat):
                slurm.append(under_slurm(c, args.smlaunch, args.python, root, src))
        for _ in range(args.repeat):
            ssh.append(over_ssh(args.smlaunch, args.python, root, src))
        med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
        rows = [("start: command -> every rank running (s)", med(slurm, 0), med(ssh, 0)),
                ("start: batch script -> every rank running (s)", med(slurm, 1), float("nan")),
                ("end: last rank exit -> smlaunch exit (s)", med(slurm, 2), med(ssh, 1))]
        width = max(len(r[0]) for r in rows)
        print("%-*s  %10s  %10s" % (width, "figure (2 hosts x 1 rank, median of %d)" % args.repeat, "slurm",
                                     "ssh (local)"))
        for name, s, h in rows:
            print("%-*s  %10.3f  %10.3f" % (width, name, s, h))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
