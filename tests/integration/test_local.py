"""`smlaunch local`: whole jobs on this machine with the real launcher, Python, Chainer,
sshd and Open MPI. One host needs nothing special; several hosts need root (network
namespaces) and are skipped without it. Every wait is bounded."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

import harness
from harness import clean_env

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from cluster import Cluster  # noqa: E402

# The namespaces `smlaunch local` needs for several hosts are the ones tests/cluster probes.
NAMESPACES, WHY_NOT = Cluster.available()

EXAMPLE = os.path.join(harness.SOURCE_DIR, "examples", "chainer")
IS_ROOT = os.geteuid() == 0


def sdk_trees(hosts, user_hyperparameters, source_dir, program, job_name, region, instance_type, channels,
              use_mpi=False, processes_per_host=None, num_processes=None, additional_mpi_options=None):
    """The three config files per host, restated from the SageMaker Python SDK's rules
    (Chainer estimator hyperparameters(), local/image.py write_config_files at v2.257.6).
    The one deliberate difference: sagemaker_submit_directory is file://<the copy of the
    source dir taken at the start> (the SDK writes /opt/ml/code, where it mounts the code)."""
    encode = lambda d: {k: json.dumps(v) for k, v in d.items()}  # noqa: E731
    hps = encode(user_hyperparameters)
    hps.update(encode({"sagemaker_submit_directory": "file://" + source_dir, "sagemaker_program": program,
                       "sagemaker_container_log_level": 20, "sagemaker_job_name": job_name,
                       "sagemaker_region": region}))
    hps.update(encode({k: v for k, v in {"sagemaker_use_mpi": use_mpi, "sagemaker_num_processes": num_processes,
                                         "sagemaker_process_slots_per_host": processes_per_host,
                                         "sagemaker_additional_mpi_options": additional_mpi_options}.items() if v}))
    trees = {}
    for h in hosts:
        trees[h] = {
            "hyperparameters.json": json.dumps(hps),
            "resourceconfig.json": json.dumps({"current_host": h, "hosts": hosts, "network_interface_name": "eth0",
                                               "current_instance_type": instance_type}),
            "inputdataconfig.json": json.dumps({c: {"TrainingInputMode": "File"} for c in channels}),
        }
    return trees


def processes_mentioning(text):
    """Pids whose command line, environment or mounts hold `text`: leftovers of a job,
    including the processes that hold a host's namespaces (their environment names the
    job directory, and a host's /etc/hosts is mounted from it)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        for name in ("cmdline", "environ", "mountinfo"):
            try:
                with open("/proc/%s/%s" % (pid, name), "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(pid))
                        break
            except OSError:
                pass
    return found


class LocalJob:
    """A job directory's worth of inputs: the Chainer example's data, or a small script."""

    def __init__(self, testcase, script=None, job_dir_name="job"):
        harness.require_binary(testcase)
        self.testcase = testcase
        self.root = tempfile.mkdtemp(prefix="smlaunch-local-")
        testcase.addCleanup(shutil.rmtree, self.root, True)
        self.data = os.path.join(self.root, "data")
        subprocess.run([harness.PYTHON, os.path.join(EXAMPLE, "generate_data.py"), os.path.join(self.data, "train"),
                        os.path.join(self.data, "test"), "--samples", "1200"], check=True, capture_output=True,
                       timeout=60)
        if script is None:
            self.source, self.entry = EXAMPLE, os.path.join(EXAMPLE, "train.py")
        else:
            self.source = os.path.join(self.root, "src")
            os.makedirs(self.source)
            self.entry = os.path.join(self.source, "job.py")
            with open(self.entry, "w") as f:
                f.write(script)
        self.job_dir = os.path.join(self.root, job_dir_name)

    def argv(self, *extra):
        return [harness.SMLAUNCH, "local", "--entry-point", self.entry, "--python", harness.PYTHON,
                "--channel", "train=" + os.path.join(self.data, "train"),
                "--channel", "test=" + os.path.join(self.data, "test"),
                "--job-dir", self.job_dir, "--job-name", "local-test-job", "--region", "eu-west-1", *extra]

    def run(self, *extra, timeout=240, env=None):
        return subprocess.run(self.argv(*extra), cwd=self.root, env=env or clean_env(), capture_output=True, text=True,
                              timeout=timeout)

    def summary(self):
        with open(os.path.join(self.job_dir, "summary.json")) as f:
            return json.load(f)

    def members(self, name):
        with tarfile.open(os.path.join(self.job_dir, name)) as t:
            return sorted(m.name for m in t.getmembers())

    def check_trees(self, hosts, user_hyperparameters, **kw):
        # The hosts stage the copy of the code taken at the start.
        expected = sdk_trees(hosts, user_hyperparameters, os.path.join(self.job_dir, ".smlaunch-local", "source"),
                             "train.py" if self.source == EXAMPLE else "job.py", "local-test-job", "eu-west-1",
                             kw.pop("instance_type", "local"), ["train", "test"], **kw)
        for h in hosts:
            for name, text in expected[h].items():
                with open(os.path.join(self.job_dir, h, "input", "config", name)) as f:
                    self.testcase.assertEqual(f.read(), text, "%s %s" % (h, name))
            # One model directory shared by all hosts; channels are the data directories.
            self.testcase.assertEqual(os.readlink(os.path.join(self.job_dir, h, "model")), "../model")
            for c in ("train", "test"):
                self.testcase.assertEqual(os.readlink(os.path.join(self.job_dir, h, "input", "data", c)),
                                          os.path.join(self.data, c))


class TestLocalOneHost(unittest.TestCase):
    def test_example_job_trees_artifacts_and_summary(self):
        job = LocalJob(self)
        result = job.run("--hyperparameter", "epochs=1", "--hyperparameter", "batch-size=50", "--keep")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        job.check_trees(["algo-1"], {"epochs": 1, "batch-size": 50})
        # Every line of the host's output carries its name; the script's own lines pass through.
        lines = result.stdout.splitlines()
        self.assertTrue(lines and all(line.startswith("algo-1 | ") for line in lines), result.stdout[:2000])
        self.assertTrue(any(line.startswith("algo-1 | final test accuracy: ") for line in lines))
        self.assertRegex(result.stderr, r"job local-test-job completed\n\s+host\s+role\s+exit\s+time\s+reason\n"
                                        r"\s+algo-1\s+single\s+0\s+\d+\.\d s")
        self.assertIn("model.npz", job.members("model.tar.gz"))
        self.assertIn("success", job.members("output.tar.gz"))
        self.assertIn("data/metrics.json", job.members("output.tar.gz"))
        summary = job.summary()
        self.assertEqual((summary["exit_code"], summary["hosts"][0]["host"], summary["hosts"][0]["exit_code"]),
                         (0, "algo-1", 0))

    def test_without_keep_only_the_artifacts_stay(self):
        job = LocalJob(self, script="import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm.txt'), 'w').write('m')\n")
        hps = os.path.join(job.root, "hp.json")
        with open(hps, "w") as f:
            json.dump({"lr": 0.1, "layers": [1, 2], "name": "x", "flag": True}, f)
        result = job.run("--hyperparameters", hps, "--hyperparameter", "lr=0.5", "--instance-type", "ml.c5.xlarge")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(sorted(os.listdir(job.job_dir)), ["model.tar.gz", "output.tar.gz", "summary.json"])
        self.assertEqual(job.members("model.tar.gz"), ["m.txt"])
        # The data and the code were linked or copied, never touched.
        self.assertEqual(sorted(os.listdir(job.source)), ["job.py"])
        self.assertEqual(sorted(os.listdir(os.path.join(job.data, "train"))), ["train.npz"])

    def test_trees_follow_the_sdk_rules_for_every_option(self):
        job = LocalJob(self, script="print('ok')\n")
        hps = os.path.join(job.root, "hp.json")
        with open(hps, "w") as f:
            json.dump({"lr": 0.1, "layers": [1, 2], "nested": {"b": 1, "a": "é"}, "flag": True, "none": None}, f)
        result = job.run("--hyperparameters", hps, "--hyperparameter", "lr=0.5", "--hyperparameter", "raw=not json",
                         "--instance-type", "ml.c5.xlarge", "--use-mpi", "--processes-per-host", "2", "--keep",
                         "--num-processes", "2", "--additional-mpi-options", "-x LOCAL_MARK=1")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        job.check_trees(["algo-1"], {"lr": 0.5, "layers": [1, 2], "nested": {"b": 1, "a": "é"}, "flag": True,
                                     "none": None, "raw": "not json"},
                        instance_type="ml.c5.xlarge", use_mpi=True, processes_per_host=2, num_processes=2,
                        additional_mpi_options="-x LOCAL_MARK=1")
        self.assertIn("-x LOCAL_MARK=1", result.stdout)  # reached mpirun
        self.assertIn("[1,1]<stdout>:ok", result.stdout)  # two MPI processes on the one host

    def test_a_failing_script_is_named_in_the_summary(self):
        job = LocalJob(self, script="import sys\nprint('before')\nraise ValueError('the data is bad')\n")
        result = job.run()
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertRegex(result.stderr, r"job local-test-job failed \(exit 1\)")
        self.assertRegex(result.stderr, r"algo-1\s+single\s+1\s+\S+ s\s+ExecuteUserScriptError: .*ValueError: the data is bad")
        self.assertIn("failure", job.members("output.tar.gz"))
        host = job.summary()["hosts"][0]
        self.assertIn("ValueError: the data is bad", host["reason"])

    def test_ctrl_c_stops_the_job_prints_the_summary_and_leaves_nothing(self):
        job = LocalJob(self, script="import os, time\nopen(os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'started'), 'w')"
                                    ".close()\ntime.sleep(120)\n")
        proc = subprocess.Popen(job.argv("--keep"), cwd=job.root, env=clean_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        marker = os.path.join(job.job_dir, "algo-1", "output", "data", "started")
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(marker), "the script never started")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 130, out + err)
        self.assertIn("job local-test-job stopped by SIGINT", err)
        self.assertRegex(err, r"algo-1\s+single\s+130\s")
        self.assertEqual(processes_mentioning(job.job_dir), [])

    def test_bad_options_are_named(self):
        job = LocalJob(self, script="print('ok')\n")
        cases = [
            ([], "--entry-point FILE is required"),
            (["--entry-point", "/nonexistent/x.py"], "--entry-point /nonexistent/x.py: no such file"),
            (["--entry-point", job.entry, "--channel", "train"], "expected NAME=PATH"),
            (["--entry-point", job.entry, "--channel", "train=/nonexistent"], "--channel train=/nonexistent: no such file"),
            (["--entry-point", job.entry, "--instance-count", "0"], "--instance-count (command line) is \"0\""),
            (["--entry-point", job.entry, "--frobnicate"], "unknown option \"--frobnicate\""),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                result = subprocess.run([harness.SMLAUNCH, "local", *args], cwd=job.root, env=clean_env(),
                                        capture_output=True, text=True, timeout=30)
                self.assertEqual(result.returncode, 64, result.stderr)
                self.assertIn(message, result.stderr)
        bad = os.path.join(job.root, "bad.json")
        with open(bad, "w") as f:
            f.write("[1, 2]")
        result = job.run("--hyperparameters", bad)
        self.assertEqual(result.returncode, 64)
        self.assertIn("--hyperparameters %s: expected a JSON object of hyperparameters, found list" % bad, result.stderr)
        os.makedirs(job.job_dir)
        open(os.path.join(job.job_dir, "precious"), "w").close()
        result = job.run()
        self.assertEqual(result.returncode, 64)
        self.assertIn("exists and is not empty", result.stderr)
        self.assertEqual(os.listdir(job.job_dir), ["precious"])

    @unittest.skipUnless(IS_ROOT and shutil.which("setpriv"), "needs root to drop to an unprivileged user")
    def test_one_host_as_an_unprivileged_user_with_the_job_inside_the_source(self):
        job = LocalJob(self, script="import os\nprint('uid', os.getuid(), os.environ['SM_CURRENT_HOST'])\n")
        os.chmod(job.root, 0o777)
        os.chmod(job.source, 0o777)
        # The default job directory is ./<job name>: here inside the code, which must not copy itself.
        result = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--inh-caps=-all",
                                 harness.SMLAUNCH, "local", "--entry-point", "job.py", "--python", harness.PYTHON,
                                 "--job-name", "as-nobody"], cwd=job.source, env=clean_env(), capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("algo-1 | uid %d algo-1" % int(subprocess.check_output(["id", "-u", "nobody"])), result.stdout)
        self.assertEqual(sorted(os.listdir(os.path.join(job.source, "as-nobody"))),
                         ["model.tar.gz", "output.tar.gz", "summary.json"])

    @unittest.skipUnless(IS_ROOT and shutil.which("setpriv"), "needs root to drop to an unprivileged user")
    def test_several_hosts_without_privileges_explain_what_they_need(self):
        job = LocalJob(self, script="print('ok')\n")
        os.chmod(job.root, 0o777)
        result = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--inh-caps=-all",
                                 *job.argv("--instance-count", "2")], cwd=job.root, env=clean_env(), capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(result.returncode, 68, result.stderr)
        self.assertIn("needs root, or the capabilities CAP_SYS_ADMIN and CAP_NET_ADMIN", result.stderr)
        self.assertIn("--instance-count 1", result.stderr)
        self.assertFalse(os.path.exists(job.job_dir))


@unittest.skipUnless(NAMESPACES, WHY_NOT)
class TestLocalTwoHosts(unittest.TestCase):
    def test_chainermn_example_on_two_hosts(self):
        job = LocalJob(self)
        # PYTHONUNBUFFERED=1 (as SageMaker images set it): ranks write a line and its newline
        # apart, which mpirun --tag-output would tag apart; `smlaunch rank` passes whole lines.
        result = job.run("--hyperparameter", "epochs=1", "--instance-count", "2", "--processes-per-host", "2", "--keep",
                         env=clean_env(PYTHONUNBUFFERED="1"))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        tagged = [line for line in result.stdout.splitlines() if "]<stdout>:" in line]
        self.assertTrue(tagged)
        self.assertEqual([line for line in tagged if line.count("]<stdout>:") != 1], [])
        job.check_trees(["algo-1", "algo-2"], {"epochs": 1}, processes_per_host=2)
        self.assertIn("algo-1 | [1,0]<stdout>:ChainerMN: communicator naive, 4 processes on 2 host(s)", result.stdout)
        self.assertRegex(result.stdout, r"(?m)^algo-2 \| .*worker: waiting for the master algo-1")
        self.assertRegex(result.stderr, r"algo-1\s+master\s+0\s+\S+ s\s*\n\s+algo-2\s+worker\s+0\s")
        members = job.members("output.tar.gz")
        self.assertIn("success", members)
        ranks = []
        with tarfile.open(os.path.join(job.job_dir, "output.tar.gz")) as t:
            for i in range(4):
                ranks.append(json.load(t.extractfile("data/rank-%d.json" % i)))
        # Each rank ran on the host it was placed on, and saw that host's name.
        self.assertEqual(sorted((r["rank"], r["hostname"], r["sm_current_host"], r["inter_rank"]) for r in ranks),
                         [(0, "algo-1", "algo-1", 0), (1, "algo-1", "algo-1", 0), (2, "algo-2", "algo-2", 1),
                          (3, "algo-2", "algo-2", 1)])
        self.assertIn("model.npz", job.members("model.tar.gz"))
        self.assertEqual(processes_mentioning(job.job_dir), [])

    def test_two_mpi_hosts_under_a_job_dir_with_a_space_or_a_colon(self):
        # sshd splits its -o SetEnv and config lines on spaces, Open MPI splits
        # plm_rsh_agent on spaces and colons: the job's SSH files live in a short folder.
        script = ("import socket\n"
                  "from mpi4py import MPI\n"
                  "print('rank %d of %d on %s' % (MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size(),"
                  " socket.gethostname()))\n")
        for name in ("a job", "a:job"):
            with self.subTest(job_dir=name):
                job = LocalJob(self, script=script, job_dir_name=name)
                result = job.run("--instance-count", "2", "--processes-per-host", "1")
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertRegex(result.stdout, r"\]<stdout>:rank 0 of 2 on algo-1")
                self.assertRegex(result.stdout, r"\]<stdout>:rank 1 of 2 on algo-2")
                self.assertEqual([(h["host"], h["exit_code"]) for h in job.summary()["hosts"]],
                                 [("algo-1", 0), ("algo-2", 0)])
                self.assertEqual(processes_mentioning(job.job_dir), [])

    def test_one_failing_host_is_reported_in_the_summary(self):
        script = ("import os, sys\n"
                  "if os.environ['SM_CURRENT_HOST'] == 'algo-2':\n"
                  "    raise RuntimeError('algo-2 ran out of data')\n"
                  "print('fine on', os.environ['SM_CURRENT_HOST'])\n")
        job = LocalJob(self, script=script)
        result = job.run("--instance-count", "2", "--hyperparameter", "sagemaker_use_mpi=false")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("algo-1 | fine on algo-1", result.stdout)
        self.assertRegex(result.stderr, r"algo-1\s+single\s+0\s+\S+ s\s*\n")
        self.assertRegex(result.stderr, r"algo-2\s+single\s+1\s+\S+ s\s+ExecuteUserScriptError: .*RuntimeError: algo-2 ran out of data")
        hosts = job.summary()["hosts"]
        self.assertEqual([(h["host"], h["exit_code"]) for h in hosts], [("algo-1", 0), ("algo-2", 1)])

    def test_a_missing_sshd_is_named_before_anything_is_written(self):
        job = LocalJob(self, script="print('ok')\n")
        result = job.run("--instance-count", "2", env=clean_env(SMLAUNCH_SSHD="/nonexistent/sshd"))
        self.assertEqual(result.returncode, 68, result.stderr)
        self.assertIn("the SSH server /nonexistent/sshd is not installed", result.stderr)
        self.assertFalse(os.path.exists(job.job_dir))

    def test_ctrl_c_stops_every_host_and_leaves_no_process_or_namespace(self):
        script = ("import os, time\n"
                  "open(os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'started-' + os.environ['SM_CURRENT_HOST']), 'w').close()\n"
                  "time.sleep(120)\n")
        job = LocalJob(self, script=script)
        proc = subprocess.Popen(job.argv("--instance-count", "2", "--keep"), cwd=job.root, env=clean_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        marker = os.path.join(job.job_dir, "algo-1", "output", "data", "started-algo-1")
        deadline = time.monotonic() + 90
        while not os.path.exists(marker) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(marker), "the job never started")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 130, out + err)
        self.assertIn("stopped by SIGINT", err)
        self.assertRegex(err, r"algo-1\s+master\s+\d+")
        self.assertRegex(err, r"algo-2\s+worker\s+\d+")
        self.assertEqual(processes_mentioning(job.job_dir), [])


if __name__ == "__main__":
    unittest.main()
