"""smlaunch under a real Slurm (slurmctld, munge, two slurmds in network namespaces).

Jobs are submitted with `sbatch -N2 --ntasks-per-node=2`; the batch script runs
`smlaunch train` once with `--base-dir <root>/%n` (every node's tree on this machine's
shared filesystem), and Open MPI starts the ranks through srun. Skips without root or
without slurm-wlm/munge.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from slurm_cluster import SlurmCluster  # noqa: E402

SMLAUNCH = os.environ.get("SMLAUNCH_BIN", "")
PYTHON = os.environ.get("SMLAUNCH_TEST_PYTHON", sys.executable)
SOURCE_DIR = os.environ.get("SMLAUNCH_TEST_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "chainer")
HOSTS = ["algo-1", "algo-2"]

# Each rank records its host and every SM_* variable it sees; with --sleep it then waits
# (for the cancel test), writing a start marker first.
DUMP_SCRIPT = r'''
import json, os, socket, sys, time
from mpi4py import MPI
rank = MPI.COMM_WORLD.Get_rank()
out = os.environ["SM_OUTPUT_DATA_DIR"]
os.makedirs(out, exist_ok=True)
record = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
record.update(rank=rank, hostname=socket.gethostname(), processor=MPI.Get_processor_name())
with open(os.path.join(out, "env-%d.json" % rank), "w") as f:
    json.dump(record, f)
if "--sleep" in sys.argv:
    open(os.path.join(out, "started-%d" % rank), "w").close()
    time.sleep(300)
MPI.COMM_WORLD.Barrier()
'''


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def sagemaker_resource_config(host):
    """What SageMaker writes for this two-host job (the oracle's tree)."""
    group = {"instance_group_name": "homogeneousCluster", "instance_type": "local", "hosts": HOSTS}
    return {"current_host": host, "current_instance_type": "local", "current_group_name": "homogeneousCluster",
            "hosts": HOSTS, "instance_groups": [group], "network_interface_name": "eth0"}


class TestSlurm(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        ok, why = SlurmCluster.available()
        if not ok:
            raise unittest.SkipTest(why)
        if not SMLAUNCH or not os.access(SMLAUNCH, os.X_OK):
            raise unittest.SkipTest("SMLAUNCH_BIN is not set to the built smlaunch (run through ctest)")
        cls.cluster = SlurmCluster(2, cpus=4, kill_wait=30, gpus=2)
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.close()

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smlaunch-slurm-")
        os.chmod(self.root, 0o755)
        self.addCleanup(shutil.rmtree, self.root, True)

    # ------------------------------------------------------------------ helpers
    def tree(self, host):
        return os.path.join(self.root, "job", host)

    def dump_trees(self, extra_hps=None):
        """Trees for the SM_* dump script: as SageMaker's, without resourceconfig.json."""
        code = os.path.join(self.root, "code")
        os.makedirs(code, exist_ok=True)
        with open(os.path.join(code, "dump.py"), "w") as f:
            f.write(DUMP_SCRIPT)
        hps = {"sagemaker_program": "dump.py", "sagemaker_submit_directory": "file://" + code,
               "sagemaker_job_name": "slurm-dump", "sagemaker_region": "us-west-2", "lr": 0.1,
               "sagemaker_additional_mpi_options": "-mca mpi_yield_when_idle 1"}
        hps.update(extra_hps or {})
        for h in HOSTS:
            base = self.tree(h)
            write_json(os.path.join(base, "input", "config", "hyperparameters.json"),
                       {k: json.dumps(v) for k, v in hps.items()})
            write_json(os.path.join(base, "input", "config", "inputdataconfig.json"),
                       {"train": {"TrainingInputMode": "File"}})
            os.makedirs(os.path.join(base, "input", "data", "train"), exist_ok=True)
            os.makedirs(os.path.join(base, "output"), exist_ok=True)  # as SageMaker makes it
        return hps

    def chainer_trees(self, *extra):
        for h in HOSTS:
            base = self.tree(h)
            subprocess.run([PYTHON, os.path.join(EXAMPLE, "make_tree.py"), base, "--hosts", "2", "--current-host", h,
                            "--use-mpi", "true", "--epochs", "2", "--samples", "3000", *extra],
                           check=True, capture_output=True, timeout=120)
            os.unlink(os.path.join(base, "input", "config", "resourceconfig.json"))  # Slurm describes the cluster
            path = os.path.join(base, "input", "config", "hyperparameters.json")
            hps = load_json(path)
            hps["sagemaker_additional_mpi_options"] = json.dumps("-mca mpi_yield_when_idle 1")
            write_json(path, hps)

    def submit(self, *train_args, grace=10, sbatch_options=()):
        script = os.path.join(self.root, "job.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nexec %s train --base-dir %s/job/%%n --python %s --grace-period %d %s\n" % (
                SMLAUNCH, self.root, PYTHON, grace, " ".join(train_args)))
        os.chmod(script, 0o755)
        self.output = os.path.join(self.root, "slurm.out")
        return self.cluster.sbatch(script, ["-N2", "--ntasks-per-node=2", "-o", self.output, *sbatch_options],
                                   cwd=self.root)

    def job_output(self):
        try:
            with open(self.output, errors="replace") as f:
                return f.read()[-6000:]
        except OSError as e:
            return str(e)

    def wait(self, job, timeout):
        try:
            return self.cluster.wait_job(job, timeout)
        except Exception:
            self.cluster.run(["scancel", job], check=False)
            raise AssertionError("job %s did not end in %s s\n%s" % (job, timeout, self.job_output()))

    def read(self, *parts):
        with open(os.path.join(*parts), errors="replace") as f:
            return f.read()

    def assert_nothing_left(self, timeout=30):
        """Only slurmd (and slurmctld on algo-1) remain in each node's namespace."""
        deadline = time.monotonic() + timeout
        left = []
        while time.monotonic() < deadline:
            left = [(h, cmd) for h in HOSTS for cmd in self.cluster.ns_cmdlines(h)
                    if not re.match(r"^(\S*/)?(slurmd|slurmctld)[ :]", cmd + " ")]
            if not left:
                return
            time.sleep(0.1)
        self.fail("left running: %s" % left)

    # ------------------------------------------------------------------ tests
    def test_chainer_example_two_nodes_two_tasks(self):
        try:
            import chainer  # noqa: F401
        except ImportError:
            self.skipTest("chainer is not installed in the test Python")
        self.chainer_trees()
        job = self.submit()
        fields = self.wait(job, 400)
        out = self.job_output()
        self.assertEqual((fields.get("JobState"), fields.get("ExitCode")), ("COMPLETED", "0:0"), out)
        self.assertNotIn("ssh", " ".join(re.findall(r"invoking mpirun: (.*)", out)))
        accuracy = re.findall(r"final test accuracy: ([0-9.]+)", out)
        self.assertTrue(accuracy, out)
        self.assertTrue(os.path.exists(os.path.join(self.tree("algo-1"), "model", "model.npz")), out)
        self.assertTrue(os.path.exists(os.path.join(self.tree("algo-1"), "output", "success")), out)
        ranks = {}
        for h in HOSTS:
            data = os.path.join(self.tree(h), "output", "data")
            for name in os.listdir(data):
                if name.startswith("rank-"):
                    r = load_json(os.path.join(data, name))
                    ranks[r["rank"]] = dict(r, tree=h)
        self.assertEqual(sorted(ranks), [0, 1, 2, 3], out)
        for rank, r in ranks.items():
            host = "algo-1" if rank < 2 else "algo-2"
            self.assertEqual((r["intra_rank"], r["intra_size"], r["inter_rank"], r["inter_size"]),
                             (rank % 2, 2, rank // 2, 2), r)
            self.assertEqual((r["hostname"], r["processor_name"], r["sm_current_host"], r["tree"]), (host,) * 4)
        self.assert_nothing_left()

    def test_each_node_sees_the_sm_variables_of_the_sagemaker_tree(self):
        self.check_sm_variables([], [])

    def test_the_gpus_slurm_gives_a_node_are_its_sm_num_gpus(self):
        # Gres=gpu:2 (fake devices); SageMaker's tree of the same job: 2 GPUs per host.
        records = self.check_sm_variables(["--gpus-per-node=2"], ["--num-gpus", "2"])
        self.assertEqual({r["SM_NUM_GPUS"] for r in records}, {"2"})

    def check_sm_variables(self, sbatch_options, oracle_args):
        """Every rank's SM_* against `smlaunch plan` on the SageMaker tree; returns them."""
        self.dump_trees()
        job = self.submit(sbatch_options=sbatch_options)
        fields = self.wait(job, 200)
        out = self.job_output()
        self.assertEqual((fields.get("JobState"), fields.get("ExitCode")), ("COMPLETED", "0:0"), out)
        # The oracle: `smlaunch plan` on the same tree with SageMaker's resourceconfig.json.
        expected = {}
        for h in HOSTS:
            oracle = os.path.join(self.root, "oracle", h)
            shutil.copytree(os.path.join(self.tree(h), "input"), os.path.join(oracle, "input"))
            write_json(os.path.join(oracle, "input", "config", "resourceconfig.json"), sagemaker_resource_config(h))
            shutil.copytree(os.path.join(self.tree(h), "code"), os.path.join(oracle, "code"))
            plan = subprocess.run([SMLAUNCH, "plan", "--base-dir", oracle, "--python", PYTHON, *oracle_args],
                                  capture_output=True, text=True, timeout=60,
                                  env={"PATH": os.environ["PATH"], "HOME": "/root"})
            self.assertEqual(plan.returncode, 0, plan.stderr)
            env = json.loads(plan.stdout)["environment"]
            expected[h] = {k: v.replace(oracle, self.tree(h)) for k, v in env.items() if k.startswith("SM_")}
        seen = {}
        for h in HOSTS:
            data = os.path.join(self.tree(h), "output", "data")
            for name in sorted(os.listdir(data)):
                if name.startswith("env-"):
                    seen[name] = (h, load_json(os.path.join(data, name)))
        self.assertEqual(sorted(seen), ["env-0.json", "env-1.json", "env-2.json", "env-3.json"], out)
        # A node's setup step leaves nothing of its own in output/ (SageMaker uploads it).
        self.assertEqual(sorted(os.listdir(os.path.join(self.tree("algo-2"), "output"))), ["data"])
        for name, (h, record) in seen.items():
            host = "algo-1" if record["rank"] < 2 else "algo-2"
            self.assertEqual((h, record["hostname"], record["processor"]), (host, host, host), name)
            sm = {k: v for k, v in record.items() if k.startswith("SM_")}
            self.assertEqual(sorted(sm), sorted(expected[host]), name)
            for key in sorted(expected[host]):
                self.assertEqual(sm[key], expected[host][key], "%s %s" % (name, key))
        return [record for _, record in seen.values()]

    def cancel_mid_job(self, scancel_options, final_state):
        """Start ranks that sleep, cancel once all four run; returns output/failure's text."""
        self.dump_trees({"sleep": True})
        job = self.submit(grace=5)
        data = [os.path.join(self.tree(h), "output", "data") for h in HOSTS]
        deadline = time.monotonic() + 120
        while sum(len([n for n in os.listdir(d) if n.startswith("started-")]) for d in data if os.path.isdir(d)) < 4:
            if time.monotonic() > deadline:
                self.cluster.run(["scancel", job], check=False)
                self.fail("the ranks did not start\n" + self.job_output())
            time.sleep(0.1)
        started = time.monotonic()
        self.cluster.run(["scancel", *scancel_options, job])
        fields = self.wait(job, 60)
        self.assertEqual(fields.get("JobState"), final_state, self.job_output())
        failure = os.path.join(self.tree("algo-1"), "output", "failure")
        deadline = time.monotonic() + 30
        while not os.path.exists(failure) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(failure), self.job_output())
        self.assert_nothing_left()
        self.assertLess(time.monotonic() - started, 30)
        self.assertFalse(os.path.exists(os.path.join(self.tree("algo-1"), "output", "success")))
        return self.read(failure)

    def test_scancel_ends_the_job_records_it_and_leaves_nothing(self):
        # Slurm sends SIGTERM to every process of the job (KillWait 30 s > the grace period).
        text = self.cancel_mid_job([], "CANCELLED")
        self.assertRegex(text.splitlines()[0], r"^\w+Error:$", text)
        # mpirun gets the signal too: it usually exits 1 ("after smlaunch forwarded SIGTERM"),
        # but Open MPI 4.1's mpirun sometimes dies of SIGSEGV in PMIx_Finalize instead.
        self.assertRegex(text, r"after smlaunch forwarded SIGTERM|killed by SIGSEGV")
        self.assertNotIn("ExitCode 0\n", text)

    def test_scancel_batch_term_reaches_every_rank_through_smlaunch(self):
        # Only the batch step (smlaunch, exec'd by the script) gets SIGTERM; it reaches the ranks
        # on both nodes through mpirun and its daemons (as SIGURG, which each rank step turns
        # back into SIGTERM).
        text = self.cancel_mid_job(["--batch", "--signal=TERM"], "FAILED")
        self.assertIn("after smlaunch forwarded SIGTERM", text)

    def test_a_rank_that_raises_fails_the_job_with_its_exception(self):
        try:
            import chainer  # noqa: F401
        except ImportError:
            self.skipTest("chainer is not installed in the test Python")
        self.chainer_trees("--fail-on-rank", "3")
        job = self.submit()
        fields = self.wait(job, 300)
        out = self.job_output()
        self.assertEqual(fields.get("JobState"), "FAILED", out)
        self.assertNotEqual(fields.get("ExitCode"), "0:0", out)
        failure = self.read(self.tree("algo-1"), "output", "failure")
        self.assertIn("rank 3 failed on purpose", failure[:1024])
        self.assertFalse(os.path.exists(os.path.join(self.tree("algo-1"), "output", "success")))
        self.assert_nothing_left()

    def test_a_node_whose_setup_fails_fails_the_job_before_mpirun(self):
        self.dump_trees()
        with open(os.path.join(self.root, "code", "requirements.txt"), "w") as f:
            f.write("./no-such-package.whl\n")
        script = os.path.join(self.root, "job.sh")
        job = self.submit()
        fields = self.wait(job, 120)
        out = self.job_output()
        self.assertEqual(fields.get("JobState"), "FAILED", out)
        self.assertNotIn("invoking mpirun", out)
        master = self.read(self.tree("algo-1"), "output", "failure")
        self.assertIn("the setup step (staging, requirements) failed on a node", master[:1024])
        self.assertIn("no-such-package.whl", master)
        # No node was stopped half-way: each one's staging failed on its own and says why in
        # its own tree (the master's report quotes its node's).
        self.assertIn("On algo-1: ", master)
        for h in HOSTS[1:]:
            node = self.read(self.tree(h), "output", "failure")
            self.assertTrue(node.startswith("InstallRequirementsError:"), node)
            self.assertIn("no-such-package.whl", node)
        self.assert_nothing_left()

    def test_hostlist_expansion_matches_scontrol(self):
        self.dump_trees()
        for pattern in ["algo-[1-3,7]", "n[01-10]", "a[1-2]b[3-4]", "x,y[1-2],z", "n[8-10]", "n[001-3]",
                        "n[09-11],m5", "gpu-[1-2]-[01-02]", "node1"]:
            want = self.cluster.run(["scontrol", "show", "hostnames", pattern]).stdout.split()
            env = {"PATH": os.environ["PATH"], "HOME": "/root", "SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": pattern,
                   "SLURMD_NODENAME": want[0]}
            plan = subprocess.run([SMLAUNCH, "plan", "--base-dir", self.tree("algo-1"), "--python", PYTHON],
                                  capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(plan.returncode, 0, plan.stderr)
            got = json.loads(plan.stdout)
            self.assertEqual(got["cluster"]["source"], "slurm")
            self.assertEqual(got["cluster"]["slurm"]["hosts"], want, pattern)
            self.assertEqual(got["host"]["hosts"], want, pattern)


if __name__ == "__main__":
    unittest.main()
