"""Issue 5: MPI across simulated hosts (network namespaces, a real sshd per host started
by smlaunch, real Open MPI and mpi4py). Every wait is bounded."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
from harness import PROBE, clean_env

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from cluster import Cluster  # noqa: E402

AVAILABLE, WHY = Cluster.available()

ALLREDUCE = r'''
import json, os, socket, sys, time
started = time.time()
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank() + 1)
out = os.environ["SM_OUTPUT_DATA_DIR"]
os.makedirs(out, exist_ok=True)
info = {"rank": comm.Get_rank(), "size": comm.Get_size(), "sum": total, "hostname": socket.gethostname(),
        "processor_name": MPI.Get_processor_name(), "sm_current_host": os.environ["SM_CURRENT_HOST"],
        "sm_hosts": os.environ["SM_HOSTS"], "argv": sys.argv[1:], "started": started,
        "cwd": os.getcwd(), "model_dir": os.environ["SM_MODEL_DIR"], "marker": os.environ.get("HOST_MARKER"),
        "threads": {n: os.environ.get(n) for n in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "blas_core": os.environ.get("OPENBLAS_CORETYPE")}
sleep_rank = int(os.environ.get("SM_HP_SLEEP_RANK", "-1"))
if comm.Get_rank() == sleep_rank:
    time.sleep(float(os.environ["SM_HP_SLEEP_SECONDS"]))
    open(os.path.join(out, "late.txt"), "w").write("done")
if comm.Get_rank() == int(os.environ.get("SM_HP_FAIL_RANK", "-1")):
    raise RuntimeError("rank %d failed on purpose" % comm.Get_rank())
info["ended"] = time.time()
with open(os.path.join(out, "rank-%d.json" % comm.Get_rank()), "w") as f:
    json.dump(info, f)
'''

FAIL_BEFORE_INIT = r'''
import os
if os.environ.get("OMPI_COMM_WORLD_RANK") == "0":
    raise RuntimeError("rank 0 failed before the communicator was built")
from mpi4py import MPI
MPI.COMM_WORLD.Barrier()
'''

# Each rank says it is up, then waits; on SIGTERM it "checkpoints" for 3 s (longer than
# Open MPI's own kill sequence, about 2 s) and writes stopped-<rank>.
CHECKPOINT_ON_SIGTERM = r'''
import os, signal, sys, time
rank = os.environ["OMPI_COMM_WORLD_RANK"]
out = os.environ["SM_OUTPUT_DATA_DIR"]
def on_term(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(3)
    with open(os.path.join(out, "stopped-" + rank), "w") as f:
        f.write("checkpointed")
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "started-" + rank), "w") as f:
    f.write("up")
for _ in range(1200):
    time.sleep(0.1)
'''


def load_json(path):
    with open(path) as f:
        return json.load(f)


class MpiJob:
    """N host trees on a Cluster; smlaunch started inside each host's namespace."""

    def __init__(self, testcase, cluster, hyperparameters, program=ALLREDUCE, extra_env=None):
        self.cluster = cluster
        self.root = tempfile.mkdtemp(prefix="smlaunch-mpi-")
        testcase.addCleanup(shutil.rmtree, self.root, True)
        self.src = os.path.join(self.root, "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "train.py"), "w") as f:
            f.write(program)
        hps = dict(hyperparameters)
        hps.setdefault("sagemaker_program", "train.py")
        hps["sagemaker_submit_directory"] = "file://" + self.src
        self.procs = {}
        self.started = {}
        self.ended = {}
        self.extra_env = extra_env or {}
        for h in cluster.hosts:
            cfg = self.path(h, "input", "config")
            os.makedirs(cfg)
            with open(os.path.join(cfg, "hyperparameters.json"), "w") as f:
                json.dump(harness.sdk_encode(hps), f)
            with open(os.path.join(cfg, "resourceconfig.json"), "w") as f:
                json.dump({"current_host": h, "hosts": cluster.hosts, "network_interface_name": cluster.iface,
                           "current_instance_type": "ml.c5.xlarge"}, f)
            with open(os.path.join(cfg, "inputdataconfig.json"), "w") as f:
                json.dump({"train": {"TrainingInputMode": "File"}}, f)

    def path(self, host, *parts):
        return os.path.join(self.root, host, "opt", "ml", *parts)

    def env(self, host, **extra):
        e = clean_env(SMLAUNCH_SSH_COMMAND=self.cluster.ssh_cmd,
                      SMLAUNCH_SSHD_CONFIG=self.cluster.sshd_config_path(host),
                      SMLAUNCH_DNS_TIMEOUT="30", SMLAUNCH_SSH_TIMEOUT="30", SMLAUNCH_LOST_HOST_TIMEOUT="3",
                      HOST_MARKER="marker-of-" + host, HOME="/root")
        e.update(self.extra_env)
        e.update(extra)
        return e

    def start(self, host, **env):
        argv = [harness.SMLAUNCH, "train", "--base-dir", self.path(host), "--python", harness.PYTHON]
        self.started[host] = time.time()
        self.procs[host] = self.cluster.popen(host, argv, env=self.env(host, **env), inherit_env=False,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def start_all(self, hosts=None):
        for h in hosts or self.cluster.hosts:
            self.start(h)

    def wait(self, host, timeout=120):
        out, _ = self.procs[host].communicate(timeout=timeout)
        self.ended[host] = time.time()
        return self.procs[host].returncode, out.decode(errors="replace")

    def ranks(self, host):
        d = self.path(host, "output", "data")
        return [load_json(os.path.join(d, n)) for n in sorted(os.listdir(d)) if n.startswith("rank-")]

    def failure(self, host):
        with open(self.path(host, "output", "failure")) as f:
            return f.read()


@unittest.skipUnless(AVAILABLE, WHY)
class TestMpi(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def cluster(self, n, uts=True):
        c = Cluster(n, start_sshd=False, uts=uts)
        c.start()
        self.addCleanup(c.close)
        return c

    def test_two_hosts_two_slots_each_rank_sees_its_own_host(self):
        self.check_two_hosts(uts=True)

    def test_without_per_host_names_the_shim_gives_each_rank_its_host(self):
        # Like containers, whose hostname is a container id: every host here has the
        # machine's hostname, and only smlaunch's gethostname() shim says algo-N.
        self.assertNotIn(os.uname().nodename, ("algo-1", "algo-2"))
        self.check_two_hosts(uts=False)

    def check_two_hosts(self, uts):
        c = self.cluster(2, uts=uts)
        job = MpiJob(self, c, {"sagemaker_process_slots_per_host": 2, "epochs": 1, "name": "a b"})
        job.start_all()
        results = {h: job.wait(h) for h in c.hosts}
        for h, (rc, out) in results.items():
            self.assertEqual(rc, 0, "%s:\n%s" % (h, out))
            self.assertTrue(os.path.exists(job.path(h, "output", "success")), h)
        ranks = job.ranks("algo-1") + job.ranks("algo-2")
        self.assertEqual(sorted(r["rank"] for r in ranks), [0, 1, 2, 3])
        for r in ranks:
            host = "algo-1" if r["rank"] < 2 else "algo-2"
            self.assertEqual(r["sum"], 10)
            self.assertEqual(r["size"], 4)
            self.assertEqual(r["sm_current_host"], host)
            self.assertEqual(r["hostname"], host)
            self.assertEqual(r["processor_name"], host)
            self.assertEqual(r["sm_hosts"], '["algo-1","algo-2"]')
            self.assertEqual(r["argv"], ["--epochs", "1", "--name", "a b"])
            self.assertEqual(r["cwd"], job.path(host, "code"))
            self.assertEqual(r["model_dir"], job.path(host, "model"))
            self.assertEqual(r["marker"], "marker-of-" + host, "each rank sees its own host's environment")
        # The worker's outputs are on the worker's tree, the master's on the master's.
        self.assertEqual(len(job.ranks("algo-1")), 2)
        self.assertEqual(len(job.ranks("algo-2")), 2)

    def test_thread_budget_per_host_keeps_the_users_values(self):
        # Issue 13: 2 ranks per host share its CPUs; algo-2's own environment sets
        # OPENBLAS_NUM_THREADS and the job's mpirun options export MKL_NUM_THREADS: both kept.
        # Each host's rank step sets OPENBLAS_CORETYPE from its CPU, but not over algo-2's own.
        c = self.cluster(2)
        job = MpiJob(self, c, {"sagemaker_process_slots_per_host": 2,
                               "sagemaker_additional_mpi_options": "-x MKL_NUM_THREADS=5"})
        plan = json.loads(subprocess.run([harness.SMLAUNCH, "plan", "--base-dir", job.path("algo-1"), "--python",
                                          harness.PYTHON], env=job.env("algo-1"), capture_output=True, text=True,
                                         timeout=60, check=True).stdout)
        share = max(1, os.cpu_count() // 2)
        self.assertEqual(plan["thread_budget"]["why"], "%d = %d cpus / 2 processes" % (share, os.cpu_count()))
        self.assertEqual(plan["thread_budget"]["variables"]["MKL_NUM_THREADS"], {"value": "5", "origin": "user"})
        self.assertEqual(plan["thread_budget"]["variables"]["OMP_NUM_THREADS"], {"value": str(share), "origin": "budget"})
        core = harness.expected_openblas_core()
        self.assertEqual(plan["blas_core_type"]["applies_to"], "mpi_ranks: each host's from its own CPU")
        self.assertEqual(plan["blas_core_type"]["value"], core or "")
        job.start("algo-1")
        job.start("algo-2", OPENBLAS_NUM_THREADS="7", OPENBLAS_CORETYPE="Sandybridge")
        for h in c.hosts:
            rc, out = job.wait(h)
            self.assertEqual(rc, 0, "%s:\n%s" % (h, out))
        ranks = job.ranks("algo-1") + job.ranks("algo-2")
        self.assertEqual(len(ranks), 4)
        for r in ranks:
            expected = {"OMP_NUM_THREADS": str(share), "MKL_NUM_THREADS": "5",
                        "OPENBLAS_NUM_THREADS": "7" if r["sm_current_host"] == "algo-2" else str(share)}
            self.assertEqual(r["threads"], expected, r["sm_current_host"])
            self.assertEqual(r["blas_core"], "Sandybridge" if r["sm_current_host"] == "algo-2" else core)

    def test_a_late_rank_on_a_worker_finishes_before_the_job_ends(self):
        c = self.cluster(2)
        job = MpiJob(self, c, {"sagemaker_process_slots_per_host": 2, "sleep_rank": 3, "sleep_seconds": 4})
        job.start_all()
        for h in c.hosts:
            rc, out = job.wait(h)
            self.assertEqual(rc, 0, out)
        self.assertEqual(open(job.path("algo-2", "output", "data", "late.txt")).read(), "done")
        self.assertEqual(len(job.ranks("algo-2")), 2)

    def test_a_rank_failing_before_the_communicator_fails_every_host(self):
        c = self.cluster(2)
        job = MpiJob(self, c, {"sagemaker_process_slots_per_host": 2}, program=FAIL_BEFORE_INIT)
        start = time.time()
        job.start_all()
        results = {h: job.wait(h, timeout=90) for h in c.hosts}
        self.assertLess(time.time() - start, 60, "no hang")
        for h, (rc, out) in results.items():
            self.assertNotEqual(rc, 0, "%s:\n%s" % (h, out))
            self.assertTrue(os.path.exists(job.path(h, "output", "failure")), h)
            self.assertFalse(os.path.exists(job.path(h, "output", "success")), h)
        master = harness.failure_fields(job.failure("algo-1"))
        self.assertIn("rank 0 failed before the communicator was built", master["message"])
        self.assertIn("algo-1", job.failure("algo-2"))
        self.assertIn("rank 0 failed", job.failure("algo-2"))

    def test_a_worker_that_never_starts_fails_the_master_naming_it(self):
        c = self.cluster(3)
        job = MpiJob(self, c, {}, extra_env={"SMLAUNCH_SSH_TIMEOUT": "4"})
        job.start_all(["algo-1", "algo-2"])  # algo-3 never starts its launcher, so no sshd
        start = time.time()
        rc, out = job.wait("algo-1", timeout=60)
        self.assertEqual(rc, 68, out)
        self.assertLess(time.time() - start, 30)
        fields = harness.failure_fields(job.failure("algo-1"))
        self.assertEqual(fields["class"], "HostUnreachableError:")
        self.assertIn("algo-3", fields["message"])
        self.assertNotIn("algo-2 (", fields["message"])
        rc2, out2 = job.wait("algo-2", timeout=60)
        self.assertNotEqual(rc2, 0, "the master told the worker")

    def test_a_signal_during_the_ssh_wait_stops_the_master_with_the_phase(self):
        c = self.cluster(2)
        job = MpiJob(self, c, {}, extra_env={"SMLAUNCH_SSH_TIMEOUT": "120"})
        job.start("algo-1")  # algo-2 never starts its launcher: the master waits for its login
        proc = job.procs["algo-1"]
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any(b"starting sshd" in line for line in list(lines)) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(any(b"starting sshd" in line for line in list(lines)), b"".join(lines))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM, b"".join(lines))
        failure = job.failure("algo-1")
        self.assertTrue(failure.startswith("Stopped: stopped by SIGTERM while waiting for the workers' SSH logins\n"),
                        failure)
        self.assertIn("ExitCode 143\n", failure)

    def test_sigterm_gives_the_ranks_on_every_host_the_grace_period(self):
        # The remote host's daemon forwards the master's SIGURG to its rank step too.
        c = self.cluster(2)
        job = MpiJob(self, c, {}, program=CHECKPOINT_ON_SIGTERM, extra_env={"SMLAUNCH_GRACE_PERIOD": "20"})
        job.start_all()
        started = [job.path(h, "output", "data", "started-%d" % r) for r, h in enumerate(c.hosts)]
        deadline = time.monotonic() + 90
        while not all(map(os.path.exists, started)) and job.procs["algo-1"].poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(all(map(os.path.exists, started)), started)
        job.procs["algo-1"].send_signal(signal.SIGTERM)
        rc, out = job.wait("algo-1", timeout=60)
        rc2, out2 = job.wait("algo-2", timeout=60)
        for r, h in enumerate(c.hosts):
            self.assertTrue(os.path.exists(job.path(h, "output", "data", "stopped-%d" % r)), out)
        self.assertNotEqual(rc, 0, out)
        self.assertNotEqual(rc2, 0, out2)
        self.assertNotIn("grace period", out)
        self.assertIn("after smlaunch forwarded SIGTERM", harness.failure_fields(job.failure("algo-1"))["message"])

    def test_killing_a_worker_mid_job_fails_the_job_within_seconds(self):
        c = self.cluster(2)
        job = MpiJob(self, c, {"sagemaker_process_slots_per_host": 1, "sleep_rank": 1, "sleep_seconds": 60})
        job.start_all()
        harness_deadline = time.time() + 60
        while not any(cmd.startswith(harness.PYTHON + " -m mpi4py") for cmd in self.ns_cmdlines(c, "algo-2")):
            self.assertLess(time.time(), harness_deadline, "the rank on algo-2 never started")
            time.sleep(0.1)
        time.sleep(0.5)
        killed_at = time.time()
        self.kill_host(c, "algo-2")
        rc, out = job.wait("algo-1", timeout=60)
        self.assertNotEqual(rc, 0, out)
        self.assertLess(time.time() - killed_at, 20, "the master notices within seconds")
        self.assertTrue(os.path.exists(job.path("algo-1", "output", "failure")))

    def test_a_worker_whose_master_disappears_fails_within_seconds(self):
        c = self.cluster(2)
        job = MpiJob(self, c, {"sagemaker_process_slots_per_host": 1, "sleep_rank": 0, "sleep_seconds": 60})
        job.start_all()
        deadline = time.time() + 60
        # The rank itself (not mpirun, whose command line also names train.py).
        while not any(cmd.startswith(harness.PYTHON + " -m mpi4py") for cmd in self.ns_cmdlines(c, "algo-1")):
            self.assertLess(time.time(), deadline, "the rank on algo-1 never started")
            time.sleep(0.1)
        time.sleep(0.5)
        killed_at = time.time()
        self.kill_host(c, "algo-1")
        rc, out = job.wait("algo-2", timeout=60)
        self.assertEqual(rc, 68, out)
        self.assertLess(time.time() - killed_at, 20, "killed at %s:\n%s" % (time.strftime("%H:%M:%S", time.localtime(killed_at)), out))
        fields = harness.failure_fields(job.failure("algo-2"))
        self.assertEqual(fields["class"], "HostLostError:")
        self.assertIn("algo-1", fields["message"])

    def test_default_slots_follow_the_gpu_count(self):
        # A stand-in for nvidia-smi (no GPU here) that prints what the real one prints.
        c = self.cluster(2)
        fake_bin = tempfile.mkdtemp(prefix="smlaunch-fake-gpu-")
        self.addCleanup(shutil.rmtree, fake_bin, True)
        with open(os.path.join(fake_bin, "nvidia-smi"), "w") as f:
            f.write("#!/bin/sh\n[ \"$1\" = --list-gpus ] || exit 9\n"
                    "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-3b1c0a52-0000-0000-0000-000000000000)'\n"
                    "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-3b1c0a52-0000-0000-0000-000000000001)'\n")
        os.chmod(os.path.join(fake_bin, "nvidia-smi"), 0o755)
        job = MpiJob(self, c, {})
        env = job.env("algo-1")
        env["PATH"] = fake_bin + ":" + env["PATH"]
        # nvidia-smi is only asked where NVIDIA's driver is: a /proc/driver/nvidia of a
        # mount namespace of the test's own (the host's /proc is not touched).
        with_driver = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount -t tmpfs smlaunch-test /proc/driver && mkdir /proc/driver/nvidia && exec "$@"', "sh"]
        plan = json.loads(subprocess.run(with_driver + [harness.SMLAUNCH, "plan", "--base-dir", job.path("algo-1"),
                                                        "--python", harness.PYTHON], env=env, capture_output=True,
                                         text=True, timeout=60, check=True).stdout)
        self.assertEqual(plan["machine"]["num_gpus"], 2)
        self.assertEqual(plan["mpi"]["processes_per_host"], 2)
        self.assertEqual(plan["mpi"]["num_processes"], 4)
        argv = plan["steps"][-1]["argv"]
        self.assertEqual(argv[argv.index("--host") + 1], "algo-1:2,algo-2:2")
        self.assertEqual(argv[argv.index("-np") + 1], "4")
        self.assertEqual(plan["environment"]["SM_NUM_GPUS"], "2")
        self.assertEqual(plan["machine"]["probes_run"], [os.path.join(fake_bin, "nvidia-smi") + " --list-gpus"])
        # Without the driver the same nvidia-smi is not run: no GPU.
        plan = json.loads(subprocess.run([harness.SMLAUNCH, "plan", "--base-dir", job.path("algo-1"), "--python",
                                          harness.PYTHON], env=env, capture_output=True, text=True,
                                         timeout=60, check=True).stdout)
        self.assertEqual(plan["machine"]["num_gpus"], 0)
        self.assertEqual(plan["machine"]["probes_run"], [])
        # Where the driver lists its GPUs (/proc/driver/nvidia/gpus, a folder per GPU) they are
        # counted from there, with nvidia-smi not run; but a GPU counts only where its
        # /dev/nvidia<minor> is, since the driver's /proc is the host's, also in a container
        # given no GPU.
        self.assertFalse(os.path.exists("/dev/nvidia7") or os.path.exists("/dev/nvidia8"))
        gpus = "/proc/driver/nvidia/gpus"
        listed = ("mount -t tmpfs smlaunch-test /proc/driver && mkdir -p {g}/0000:10:1c.0 {g}/0000:10:1d.0 "
                  "{g}/0000:a0:1c.0 && "
                  r"printf 'Model: \t\t NVIDIA H200\nDevice Minor: \t 7\n' > {g}/0000:10:1c.0/information && "
                  r"printf 'Model: \t\t NVIDIA H200\nDevice Minor: \t 8\n' > {g}/0000:10:1d.0/information && "
                  'exec "$@"').format(g=gpus)
        plan = json.loads(subprocess.run(with_driver[:-2] + [listed, "sh", harness.SMLAUNCH, "plan", "--base-dir",
                                                             job.path("algo-1"), "--python", harness.PYTHON],
                                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout)
        # Minors 7 and 8 have no device node here; the third folder names no minor: counted.
        self.assertEqual(plan["machine"]["gpu_source"], "proc")
        self.assertEqual(plan["machine"]["num_gpus"], 1)
        self.assertEqual(plan["machine"]["probes_run"], [])
        self.assertEqual(plan["environment"]["SM_NUM_GPUS"], "1")
        self.assertEqual(plan["mpi"]["processes_per_host"], 1)

    def test_chainermn_example_on_two_hosts_two_slots(self):
        try:
            import chainer  # noqa: F401
        except ImportError:
            self.skipTest("chainer is not installed in the test Python")
        c = self.cluster(2)
        root = tempfile.mkdtemp(prefix="smlaunch-chainermn-")
        self.addCleanup(shutil.rmtree, root, True)
        example = os.path.join(harness.SOURCE_DIR, "examples", "chainer")
        procs = {}
        for h in c.hosts:
            base = os.path.join(root, h, "opt", "ml")
            subprocess.run([harness.PYTHON, os.path.join(example, "make_tree.py"), base, "--hosts", "2",
                            "--current-host", h, "--slots", "2", "--epochs", "2", "--samples", "3000"],
                           check=True, capture_output=True, timeout=120)
            # Four busy ranks share this machine's two cores: let idle ranks yield (and
            # exercise sagemaker_additional_mpi_options).
            hps_path = os.path.join(base, "input", "config", "hyperparameters.json")
            hps = json.load(open(hps_path))
            hps["sagemaker_additional_mpi_options"] = json.dumps("-mca mpi_yield_when_idle 1")
            json.dump(hps, open(hps_path, "w"))
            env = clean_env(SMLAUNCH_SSH_COMMAND=c.ssh_cmd, SMLAUNCH_SSHD_CONFIG=c.sshd_config_path(h),
                            SMLAUNCH_DNS_TIMEOUT="30", SMLAUNCH_SSH_TIMEOUT="60", HOME="/root")
            procs[h] = c.popen(h, [harness.SMLAUNCH, "train", "--base-dir", base, "--python", harness.PYTHON],
                               env=env, inherit_env=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        outputs = {}
        for h, p in procs.items():
            out, _ = p.communicate(timeout=400)
            outputs[h] = out.decode(errors="replace")
            self.assertEqual(p.returncode, 0, "%s:\n%s" % (h, outputs[h][-4000:]))
        import re
        accuracy = re.findall(r"final test accuracy: ([0-9.]+)", outputs["algo-1"])
        self.assertTrue(accuracy, outputs["algo-1"][-3000:])
        self.assertGreater(float(accuracy[-1]), 0.9)
        self.assertTrue(os.path.exists(os.path.join(root, "algo-1", "opt", "ml", "model", "model.npz")))
        ranks = {}
        for h in c.hosts:
            data = os.path.join(root, h, "opt", "ml", "output", "data")
            for name in os.listdir(data):
                if name.startswith("rank-"):
                    r = json.load(open(os.path.join(data, name)))
                    ranks[r["rank"]] = dict(r, tree=h)
        self.assertEqual(sorted(ranks), [0, 1, 2, 3])
        for rank, r in ranks.items():
            host = "algo-1" if rank < 2 else "algo-2"
            # As on two real machines: two nodes of two processes each.
            self.assertEqual((r["intra_rank"], r["intra_size"], r["inter_rank"], r["inter_size"]),
                             (rank % 2, 2, rank // 2, 2), r)
            self.assertEqual((r["hostname"], r["processor_name"], r["sm_current_host"], r["tree"]), (host,) * 4)

    @staticmethod
    def ns_cmdlines(cluster, host):
        out = subprocess.run(["ip", "netns", "pids", cluster.ns[host]], capture_output=True, text=True).stdout
        cmds = []
        for pid in out.split():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmds.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
        return cmds

    @staticmethod
    def kill_host(cluster, host):
        """What a dying instance looks like: every process of the host gets SIGKILL."""
        out = subprocess.run(["ip", "netns", "pids", cluster.ns[host]], capture_output=True, text=True).stdout
        anchor = cluster._anchor[host].pid
        for pid in out.split():
            if int(pid) != anchor:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass


class TestMpiOneHost(unittest.TestCase):
    """MPI turned on with one host: mpirun runs locally, with no sshd (no root needed)."""

    def setUp(self):
        harness.require_binary(self)

    def test_one_host_two_slots(self):
        tree = harness.Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_use_mpi": True,
                                                   "sagemaker_process_slots_per_host": 2, "k": "v"},
                            code={"train.py": ALLREDUCE})
        result = tree.run(env=clean_env(SMLAUNCH_SSHD="/nonexistent/sshd"), timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("starting sshd", result.stderr)
        self.assertIn("--host localhost:2", result.stderr)
        data = tree.path("output", "data")
        ranks = [json.load(open(os.path.join(data, n))) for n in sorted(os.listdir(data)) if n.startswith("rank-")]
        self.assertEqual([r["rank"] for r in ranks], [0, 1])
        for r in ranks:
            self.assertEqual((r["sum"], r["sm_current_host"], r["processor_name"]), (3, "algo-1", "algo-1"))
            self.assertEqual(r["argv"], ["-k", "v"])
        self.assertTrue(os.path.exists(tree.path("output", "success")))
        share = str(max(1, os.cpu_count() // 2))
        for r in ranks:  # issue 13: two ranks share the host's CPUs
            self.assertEqual(r["threads"], {"OMP_NUM_THREADS": share, "OPENBLAS_NUM_THREADS": share,
                                            "MKL_NUM_THREADS": share})

    def test_the_users_mca_parameters_replace_smlaunchs_own(self):
        # mpirun refuses a parameter listed twice ("listed multiple times on the command
        # line"): the user's -mca btl and pml replace smlaunch's, and the user's signals to
        # forward keep SIGURG (the rank steps' stop request).
        options = "-mca btl ^openib,ofi,uct -mca pml ob1 -mca ess_base_forward_signals SIGUSR1"
        tree = harness.Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_use_mpi": True,
                                                   "sagemaker_process_slots_per_host": 2,
                                                   "sagemaker_mpi_custom_mpi_options": options},
                            code={"train.py": ALLREDUCE})
        result = tree.run(env=clean_env(SMLAUNCH_SSHD="/nonexistent/sshd"), timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("listed multiple times", result.stdout + result.stderr)
        self.assertIn("ess_base_forward_signals SIGUSR1,SIGURG", result.stderr)
        self.assertTrue(os.path.exists(tree.path("output", "success")))

    def test_thread_budget_keeps_the_jobs_values_and_mpirun_exports(self):
        tree = harness.Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_use_mpi": True,
                                                   "sagemaker_process_slots_per_host": 2,
                                                   "sagemaker_additional_mpi_options": "-x MKL_NUM_THREADS=5"},
                            code={"train.py": ALLREDUCE})
        env = clean_env(SMLAUNCH_SSHD="/nonexistent/sshd", OMP_NUM_THREADS="7")
        plan = json.loads(tree.run("plan", env=env, timeout=60).stdout)
        self.assertEqual(plan["thread_budget"]["variables"]["OMP_NUM_THREADS"], {"value": "7", "origin": "user"})
        self.assertEqual(plan["thread_budget"]["variables"]["MKL_NUM_THREADS"], {"value": "5", "origin": "user"})
        self.assertEqual(plan["thread_budget"]["variables"]["OPENBLAS_NUM_THREADS"]["origin"], "budget")
        result = tree.run(env=env, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        data = tree.path("output", "data")
        ranks = [json.load(open(os.path.join(data, n))) for n in sorted(os.listdir(data)) if n.startswith("rank-")]
        self.assertEqual(len(ranks), 2)
        share = str(max(1, os.cpu_count() // 2))
        for r in ranks:
            self.assertEqual(r["threads"], {"OMP_NUM_THREADS": "7", "OPENBLAS_NUM_THREADS": share,
                                            "MKL_NUM_THREADS": "5"})

    def test_plan_runs_no_process_and_lists_a_probe_that_had_to(self):
        # Issue 13: Open MPI's version comes from its files (Debian: mpirun -> ... -> orterun);
        # an mpirun whose files tell nothing is asked `--version`, and the plan says so.
        tree = harness.Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_use_mpi": True},
                            code={"train.py": ALLREDUCE})
        plan = json.loads(tree.run("plan", env=clean_env(), timeout=60).stdout)
        if os.path.basename(os.path.realpath(shutil.which("mpirun") or "")) == "orterun":
            self.assertEqual(plan["machine"]["probes_run"], [])
            self.assertEqual(plan["mpi"]["open_mpi_major"], 4)
        fake_bin = tempfile.mkdtemp(prefix="smlaunch-fake-mpirun-")
        self.addCleanup(shutil.rmtree, fake_bin, True)
        marker = os.path.join(fake_bin, "ran")
        with open(os.path.join(fake_bin, "mpirun"), "w") as f:
            f.write("#!/bin/sh\ntouch %s\necho 'mpirun (Open MPI) 5.0.3'\n" % marker)
        os.chmod(os.path.join(fake_bin, "mpirun"), 0o755)
        env = clean_env()
        env["PATH"] = fake_bin + ":" + env["PATH"]
        plan = json.loads(tree.run("plan", env=env, timeout=60).stdout)
        self.assertTrue(os.path.exists(marker))
        self.assertEqual(plan["machine"]["probes_run"], [os.path.join(fake_bin, "mpirun") + " --version"])
        self.assertEqual(plan["mpi"]["open_mpi_major"], 5)

    def test_a_host_outside_the_distribution_groups_runs_the_script_as_a_process(self):
        # MPI over the "train" group (algo-1, algo-2) only: algo-3 is no host of mpirun's, so
        # no master starts a rank there or tells it the outcome. It used to start sshd and
        # wait for algo-1 (then fail: HostLostError once the master's sshd stopped). The
        # toolkit runs it as a plain process; so does smlaunch now.
        groups = [{"instance_group_name": "train", "instance_type": "ml.c5.xlarge", "hosts": ["algo-1", "algo-2"]},
                  {"instance_group_name": "data", "instance_type": "ml.c5.xlarge", "hosts": ["algo-3"]}]
        tree = harness.Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_mpi_enabled": True,
                                                   "sagemaker_distribution_instance_groups": ["train"]},
                            hosts=("algo-1", "algo-2", "algo-3"), current_host="algo-3",
                            resource_extra={"current_group_name": "data", "instance_groups": groups},
                            code={"train.py": PROBE})
        env = clean_env(SMLAUNCH_SSHD="/nonexistent/sshd", SMLAUNCH_SSH_TIMEOUT="2")
        plan = json.loads(tree.run("plan", env=env, timeout=60).stdout)
        self.assertFalse(plan["mpi"]["enabled"], plan["mpi"])
        self.assertIn("algo-3 is not in the distribution instance groups", plan["mpi"]["why"])
        result = tree.run(env=env, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("sshd", result.stderr)
        self.assertEqual(tree.probe()["env"]["SM_CURRENT_HOST"], "algo-3")
        self.assertTrue(os.path.exists(tree.path("output", "success")))

    def _sigterm_mid_job(self, grace_period):
        """One host x 2 ranks that each take 3 s to checkpoint on SIGTERM; SIGTERM to the
        launcher once both ranks run. Returns (the tree, the launcher's exit code, its output)."""
        tree = harness.Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_use_mpi": True,
                                                   "sagemaker_process_slots_per_host": 2},
                            code={"train.py": CHECKPOINT_ON_SIGTERM})
        argv = [harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON,
                "--grace-period", str(grace_period)]
        proc = subprocess.Popen(argv, env=clean_env(SMLAUNCH_SSHD="/nonexistent/sshd"), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")), daemon=True)
        reader.start()
        started = [tree.path("output", "data", "started-%d" % r) for r in (0, 1)]
        deadline = time.monotonic() + 60
        while not all(map(os.path.exists, started)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(all(map(os.path.exists, started)), b"".join(lines))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        proc.stdout.close()
        return tree, proc.returncode, b"".join(lines).decode(errors="replace")

    def test_sigterm_gives_the_ranks_the_grace_period(self):
        # mpirun, on SIGTERM, kills its ranks within about 2 s whatever --grace-period says:
        # smlaunch sends it SIGURG instead, which it forwards to each rank step, which gives
        # its program SIGTERM. Both ranks finish a 3 s handler and the job records the stop.
        tree, code, output = self._sigterm_mid_job(grace_period=20)
        for r in (0, 1):
            self.assertTrue(os.path.exists(tree.path("output", "data", "stopped-%d" % r)), "rank %d: %s" % (r, output))
        self.assertNotEqual(code, 0, output)
        self.assertNotIn("grace period", output)
        failure = harness.failure_fields(tree.read("output", "failure"))
        self.assertIn("after smlaunch forwarded SIGTERM", failure["message"])

    def test_a_grace_period_that_runs_out_is_the_failure_reason(self):
        # A 1 s grace period against the ranks' 3 s handler: mpirun then gets SIGTERM and
        # ends the job. output/failure says the grace period ran out, not only that SIGTERM
        # was forwarded.
        tree, code, output = self._sigterm_mid_job(grace_period=1)
        self.assertNotEqual(code, 0, output)
        failure = harness.failure_fields(tree.read("output", "failure"))
        self.assertIn("1 s grace period that followed SIGTERM", failure["message"])

    def test_one_rank_per_host_keeps_every_core(self):
        tree = harness.Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_use_mpi": True},
                            code={"train.py": ALLREDUCE})
        result = tree.run(env=clean_env(SMLAUNCH_SSHD="/nonexistent/sshd"), timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        rank = json.loads(tree.read("output", "data", "rank-0.json"))
        self.assertEqual(rank["threads"], {"OMP_NUM_THREADS": None, "OPENBLAS_NUM_THREADS": None,
                                           "MKL_NUM_THREADS": None})


if __name__ == "__main__":
    unittest.main()
