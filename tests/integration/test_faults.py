"""Training faults a careless user hits (issue 15), each on a real tree with the real binary."""
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

import harness
from harness import Tree, clean_env, peak_rss_kib, rss_limit_kib

CHATTY = r'''
import sys, time
for i in range(3):
    print("line %d" % i, flush=True)
time.sleep(0.5)          # the reader has gone by now
for i in range(1000):
    print("more %d" % i)
'''


alive = harness.alive


def read(path):
    with open(path) as f:
        return f.read()


class TestFaults(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def test_a_closed_output_does_not_kill_the_launcher(self):
        # `smlaunch train 2>&1 | head -1`: the job succeeds; the launcher must exit 0, not 141.
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", CHATTY)
        argv = [harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON]
        p = subprocess.Popen(argv, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        first = p.stdout.readline()
        p.stdout.close()
        status = p.wait(timeout=60)
        self.assertTrue(first)
        self.assertEqual(status, 0, "the launcher died of SIGPIPE" if status in (141, -13) else status)
        self.assertTrue(os.path.exists(tree.path("output", "success")))

    def test_the_script_gets_the_callers_sigpipe_disposition(self):
        # The launcher ignores SIGPIPE for itself only: a script writing to a closed pipe dies
        # of it as it would when run directly.
        tree = Tree(self, hyperparameters={"sagemaker_program": "run.sh"})
        tree.add_code("run.sh", "#!/bin/sh\ngrep SigIgn /proc/self/status > \"$SM_MODEL_DIR/sigign\"\n", mode=0o755)
        os.makedirs(tree.path("model"), exist_ok=True)
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        ignored = int(tree.read("model", "sigign").split()[1], 16)
        self.assertFalse(ignored & (1 << (13 - 1)), "SIGPIPE is ignored in the script")

    def test_mpi_counts_are_not_checked_when_mpi_is_off(self):
        # What the Chainer estimator writes for one instance with use_mpi=False, num_processes=2.
        tree = Tree(self, raw_hyperparameters={
            "sagemaker_program": json.dumps("train.py"), "sagemaker_use_mpi": "false",
            "sagemaker_num_processes": "2", "sagemaker_process_slots_per_host": "1"})
        tree.add_code("train.py", "print('trained')\n")
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.exists(tree.path("output", "success")))

    def test_only_secret_words_are_redacted_from_the_failure(self):
        # SM_HP_TOKENIZER and SM_HP_MONKEY are not secrets; HF_TOKEN is.
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "tokenizer": "bert-base-uncased",
                                           "monkey": "capuchin-value"})
        tree.add_code("train.py", "import os\nraise SystemExit('failed with %s %s %s' % (os.environ['SM_HP_TOKENIZER'], "
                                  "os.environ['SM_HP_MONKEY'], os.environ['HF_TOKEN']))\n")
        result = tree.run(env=clean_env(HF_TOKEN="hf_abcdefgh12345"))
        self.assertEqual(result.returncode, 1, result.stderr)
        failure = tree.read("output", "failure")
        self.assertIn("bert-base-uncased", failure)
        self.assertIn("capuchin-value", failure)
        self.assertNotIn("hf_abcdefgh12345", failure)

    def test_a_submit_directory_that_is_not_a_string_is_a_config_error(self):
        for raw in ("null", "5", "[1, 2]", "{}"):
            with self.subTest(value=raw):
                tree = Tree(self, raw_hyperparameters={"sagemaker_program": json.dumps("train.py"),
                                                       "sagemaker_submit_directory": raw})
                result = tree.run()
                self.assertEqual(result.returncode, 65, result.stderr)
                failure = tree.read("output", "failure")
                self.assertTrue(failure.startswith("ConfigError"), failure)
                self.assertIn("/sagemaker_submit_directory", failure)
                self.assertIn("expected a string", failure)

    def test_a_missing_python_is_named(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "print('x')\n")
        tree.add_code("requirements.txt", "numpy\n")
        result = subprocess.run([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", "/nonexistent/bin/python3"],
                                env=clean_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 67, result.stderr)
        self.assertIn("/nonexistent/bin/python3: No such file or directory", tree.read("output", "failure"))

    def test_a_crlf_shebang_names_the_interpreter(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "run.sh"})
        tree.add_code("run.sh", "#!/bin/sh\r\necho hi\r\n", mode=0o755)
        result = tree.run()
        self.assertEqual(result.returncode, 127, result.stderr)
        failure = tree.read("output", "failure")
        self.assertIn("its interpreter '/bin/sh\\r' (from the #! line) was not found", failure)
        self.assertIn("Windows (CRLF) line endings", failure)

    # --- outcome files on a tree used again, and on a full output volume
    def test_a_stale_failure_file_of_an_earlier_run_is_removed(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "import sys\nsys.exit(3)\n")
        self.assertEqual(tree.run().returncode, 3)
        self.assertIn("ExitCode 3", tree.read("output", "failure"))
        tree.add_code("train.py", "print('fixed')\n")
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertFalse(os.path.exists(tree.path("output", "failure")), "stale failure file kept")
        self.assertTrue(os.path.exists(tree.path("output", "success")))
        # A success after a success (its marker is kept, not rewritten) still leaves one.
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.exists(tree.path("output", "success")))
        # ...and the success of that run is not left beside the next run's failure.
        tree.add_code("train.py", "import sys\nsys.exit(4)\n")
        self.assertEqual(tree.run().returncode, 4)
        self.assertFalse(os.path.exists(tree.path("output", "success")), "stale success file kept")
        self.assertEqual(os.listdir(tree.path("output")), ["failure"])   # no reserve left behind

    def test_a_failure_file_the_script_wrote_is_kept(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "import os, sys\nos.makedirs(os.environ['SM_OUTPUT_DIR'], exist_ok=True)\nopen(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w')"
                                  ".write('mine')\nsys.exit(2)\n")
        self.assertEqual(tree.run().returncode, 2)
        tree.add_code("train.py", "print('ok')\n")
        self.assertEqual(tree.run().returncode, 0)
        self.assertEqual(tree.read("output", "failure"), "mine")

    def test_the_failure_fits_when_the_script_filled_the_output_volume(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs on output/ needs root")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        os.makedirs(tree.path("output"), exist_ok=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "smlaunch-test", tree.path("output")],
                                 capture_output=True, text=True, timeout=30)
        if mounted.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + mounted.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", tree.path("output")], timeout=30)
        tree.add_code("train.py", "import os\n"
                                  "with open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'filler'), 'wb') as f:\n"
                                  "    while True:\n"
                                  "        f.write(b'x' * 4096)\n"
                                  "        f.flush()\n")
        result = tree.run()
        self.assertEqual(result.returncode, 1, result.stderr)
        failure = tree.read("output", "failure")
        self.assertIn("No space left on device", failure)
        self.assertIn("ExitCode 1", failure)

    def test_the_failure_reserve_is_kept_between_runs_outside_output(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "print('ok')\n")
        self.assertEqual(tree.run().returncode, 0)
        reserve = tree.path(".smlaunch", "failure-reserve")
        self.assertEqual(tree.run().returncode, 0)
        self.assertEqual(os.listdir(tree.path("output")), ["success"])
        kept = os.stat(reserve)
        self.assertGreaterEqual(kept.st_blocks * 512, 64 * 1024)
        self.assertEqual(tree.run().returncode, 0)
        self.assertEqual(os.stat(reserve).st_ino, kept.st_ino, "the reserve was made again")
        self.assertEqual(os.listdir(tree.path("output")), ["success"])

    def test_the_failure_fits_when_the_script_filled_the_trees_volume(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        base = self.small_volume(tree)
        run = lambda: subprocess.run([harness.SMLAUNCH, "train", "--base-dir", base, "--python", harness.PYTHON],
                                     env=clean_env(), capture_output=True, text=True, timeout=120)
        tree.add_code("train.py", "print('ok')\n")
        self.assertEqual(run().returncode, 0)  # stages code/ and makes .smlaunch/
        self.assertEqual(run().returncode, 0)  # the reserve now lives in .smlaunch/, kept
        self.assertTrue(os.path.exists(os.path.join(base, ".smlaunch", "failure-reserve")))
        tree.add_code("train.py", "import os\n"
                                  "with open(os.path.join(os.path.dirname(os.environ['SM_INPUT_DIR']), 'filler'), 'wb') as f:\n"
                                  "    while True:\n"
                                  "        f.write(b'x' * 4096)\n"
                                  "        f.flush()\n")
        result = run()
        self.assertEqual(result.returncode, 1, result.stderr)
        failure = read(os.path.join(base, "output", "failure"))
        self.assertIn("No space left on device", failure)
        self.assertIn("ExitCode 1", failure)

    def small_volume(self, tree, size="2m"):
        """A copy of the tree's base on a tmpfs of its own (root only)."""
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        mount_point = os.path.join(tree.root, "small")
        os.makedirs(mount_point)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "smlaunch-test", mount_point],
                                 capture_output=True, text=True, timeout=30)
        if mounted.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + mounted.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mount_point], timeout=30)
        base = os.path.join(mount_point, "ml")
        shutil.copytree(tree.base, base)
        return base

    @staticmethod
    def write_archive(path, members):
        with tarfile.open(path, "w:gz") as t:
            for name, data, mode in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                t.addfile(info, io.BytesIO(data))

    def test_a_full_disk_while_unpacking_fails_the_staging_and_keeps_the_previous_code(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh"})
        base = self.small_volume(tree)
        archive = os.path.join(tree.root, "code.tar.gz")
        self.write_archive(archive, [("train.sh", b"#!/bin/sh\necho v1\n", 0o755)])
        hps = json.loads(read(os.path.join(base, "input", "config", "hyperparameters.json")))
        hps["sagemaker_submit_directory"] = json.dumps(archive)
        with open(os.path.join(base, "input", "config", "hyperparameters.json"), "w") as f:
            json.dump(hps, f)
        run = lambda: subprocess.run([harness.SMLAUNCH, "train", "--base-dir", base, "--python", harness.PYTHON],
                                     env=clean_env(), capture_output=True, text=True, timeout=120)
        first = run()
        self.assertEqual(first.returncode, 0, first.stderr)
        marker = read(os.path.join(base, ".smlaunch", "staged-code.json"))
        # The same code with 4 MiB of zeros (a few KiB compressed) on a 2 MiB volume.
        self.write_archive(archive, [("train.sh", b"#!/bin/sh\necho v2\n", 0o755),
                                     ("big.bin", bytes(4 * 1024 * 1024), 0o644)])
        second = run()
        self.assertEqual(second.returncode, 66, second.stderr)
        failure = read(os.path.join(base, "output", "failure"))
        self.assertTrue(failure.startswith("StagingError"), failure)
        self.assertIn('"big.bin"', failure)
        self.assertIn("No space left on device", failure)
        self.assertEqual(read(os.path.join(base, "code", "train.sh")), "#!/bin/sh\necho v1\n")
        self.assertEqual(read(os.path.join(base, ".smlaunch", "staged-code.json")), marker)
        self.assertFalse(os.path.exists(os.path.join(base, "code", "big.bin")))

    # --- processes left behind
    def test_the_script_dies_with_a_sigkilled_launcher(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n")
        p = subprocess.Popen([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON],
                             env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        script = int(p.stdout.readline())
        p.kill()
        p.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and alive(script):
            time.sleep(0.05)
        self.assertFalse(alive(script), "the script outlived its SIGKILLed launcher")

    # --- staging that refused legitimate setups
    def test_a_submit_directory_that_is_a_link_to_a_folder_is_followed(self):
        for suffix in ("", "/"):
            for scheme in ("", "file://"):
                with self.subTest(uri=scheme + "<link>" + suffix):
                    tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
                    tree.add_code("train.py", "print('from the linked folder')\n")
                    link = os.path.join(tree.root, "link-to-src")
                    os.symlink(tree.src, link)
                    hps = json.loads(read(tree.path("input", "config", "hyperparameters.json")))
                    hps["sagemaker_submit_directory"] = json.dumps(scheme + link + suffix)
                    tree.write_config("hyperparameters.json", hps)
                    result = tree.run()
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertIn("from the linked folder", result.stdout + result.stderr)
                    self.assertFalse(os.path.islink(tree.path("code")))

    def test_a_file_uri_with_percent_escapes_is_decoded(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        spaced = os.path.join(tree.root, "my src")
        os.makedirs(spaced)
        with open(os.path.join(spaced, "train.py"), "w") as f:
            f.write("print('from my src')\n")
        hps = json.loads(read(tree.path("input", "config", "hyperparameters.json")))
        hps["sagemaker_submit_directory"] = json.dumps("file://" + spaced.replace(" ", "%20"))
        tree.write_config("hyperparameters.json", hps)
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("from my src", result.stdout + result.stderr)

    # --- helpers for the tests below
    def set_submit_directory(self, base, value):
        path = os.path.join(base, "input", "config", "hyperparameters.json")
        hps = json.loads(read(path))
        hps["sagemaker_submit_directory"] = json.dumps(value)
        with open(path, "w") as f:
            json.dump(hps, f)

    @staticmethod
    def train(base, timeout=120, **kwargs):
        return subprocess.run([harness.SMLAUNCH, "train", "--base-dir", base, "--python", harness.PYTHON],
                              env=clean_env(), capture_output=True, text=True, errors="replace", timeout=timeout,
                              **kwargs)

    def local_job(self, source, entry_point, *extra, job_dir=None, timeout=240):
        root = tempfile.mkdtemp(prefix="smlaunch-local-faults-")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        job_dir = job_dir or os.path.join(root, "job")
        argv = [harness.SMLAUNCH, "local", "--entry-point", entry_point, "--python", harness.PYTHON,
                "--source-dir", source, "--job-dir", job_dir, "--job-name", "faults-job", *extra]
        return job_dir, argv

    def wait_gone(self, pids, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        return [p for p in pids if alive(p)]

    @staticmethod
    def wait_for_file(path, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if os.path.exists(path) and os.path.getsize(path) > 0:
                with open(path) as f:
                    text = f.read()
                if text.endswith("\n"):
                    return text
            time.sleep(0.05)
        raise AssertionError("%s never appeared" % path)

    # --- #1: a full disk while copying a folder
    def test_a_full_disk_while_copying_a_folder_fails_the_staging_and_keeps_the_previous_code(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh"})
        tree.add_code("train.sh", "#!/bin/sh\necho v1\n", mode=0o755)
        base = self.small_volume(tree)
        first = self.train(base)
        self.assertEqual(first.returncode, 0, first.stderr)
        marker = read(os.path.join(base, ".smlaunch", "staged-code.json"))
        with open(os.path.join(tree.src, "big.bin"), "wb") as f:
            f.write(os.urandom(4 * 1024 * 1024))     # on a 2 MiB volume
        tree.add_code("train.sh", "#!/bin/sh\necho v2\n", mode=0o755)
        second = self.train(base)
        self.assertEqual(second.returncode, 66, second.stderr)
        failure = read(os.path.join(base, "output", "failure"))
        self.assertTrue(failure.startswith("StagingError"), failure)
        self.assertIn("big.bin", failure)
        self.assertIn("No space left on device", failure)
        self.assertEqual(read(os.path.join(base, "code", "train.sh")), "#!/bin/sh\necho v1\n")
        self.assertEqual(read(os.path.join(base, ".smlaunch", "staged-code.json")), marker)
        self.assertEqual([n for n in os.listdir(os.path.join(base, ".smlaunch")) if n.startswith("staging")], [])

    # --- #3: `smlaunch local` on a full disk
    def test_local_on_a_full_disk_names_the_artifact_prints_the_summary_and_keeps_the_trees(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        src = tempfile.mkdtemp(prefix="smlaunch-src-")
        self.addCleanup(shutil.rmtree, src, ignore_errors=True)
        with open(os.path.join(src, "job.py"), "w") as f:
            # 1.5 MiB of random bytes in the model on a 3 MiB volume: the archive cannot fit.
            f.write("import os\nwith open(os.path.join(os.environ['SM_MODEL_DIR'], 'weights'), 'wb') as f:\n"
                    "    f.write(os.urandom(1536 * 1024))\n")
        tree = Tree(self)
        mount_point = os.path.join(tree.root, "small")
        os.makedirs(mount_point)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "smlaunch-test", mount_point],
                                 capture_output=True, text=True, timeout=30)
        if mounted.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + mounted.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mount_point], timeout=30)
        job_dir, argv = self.local_job(src, "job.py", job_dir=os.path.join(mount_point, "job"))
        result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=240)
        self.assertNotEqual(result.returncode, 0, result.stderr)
        self.assertIn("job faults-job", result.stderr)                        # the summary
        self.assertIn("algo-1", result.stderr)
        self.assertRegex(result.stderr, r"could not write model\.tar\.gz: .*No space left on device")
        self.assertFalse(os.path.exists(os.path.join(job_dir, "model.tar.gz")), "a truncated model.tar.gz")
        self.assertEqual([n for n in os.listdir(job_dir) if ".partial" in n], [])
        self.assertTrue(os.path.isdir(os.path.join(job_dir, "algo-1")), "the per-host tree was removed")
        self.assertTrue(os.path.exists(os.path.join(job_dir, "model", "weights")))

    # --- #10: FIFOs and devices as the code source
    def test_a_fifo_or_a_device_as_submit_directory_is_refused_without_reading_it(self):
        for kind in ("fifo", "device"):
            with self.subTest(kind=kind):
                tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
                if kind == "fifo":
                    path = os.path.join(tree.root, "code.tar.gz")
                    os.mkfifo(path)
                else:
                    path = "/dev/zero"
                self.set_submit_directory(tree.base, path)
                p = subprocess.Popen([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON],
                                     env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    out, err = p.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGTERM)       # before the fix: ignored as well
                    try:
                        out, err = p.communicate(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.communicate()
                        self.fail("staging hung on the %s and ignored SIGTERM" % kind)
                self.assertEqual(p.returncode, 66, err)
                failure = tree.read("output", "failure")
                self.assertTrue(failure.startswith("StagingError"), failure)
                self.assertIn(path, failure)
                self.assertIn("a FIFO" if kind == "fifo" else "a device", failure)

    def test_sigterm_while_copying_a_folder_stops_the_job(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "print('ran')\n")
        for i in range(80):
            with open(os.path.join(tree.src, "data%02d.bin" % i), "wb") as f:
                f.truncate(64 * 1024 * 1024)             # sparse: 5 GiB to read and write
        p = subprocess.Popen([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON],
                             env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            if "copying the code" in line:
                break
        started = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.stderr.read()
        status = p.wait(timeout=120)
        took = time.monotonic() - started
        self.assertEqual(status, 128 + signal.SIGTERM)
        self.assertLess(took, 5, "the copy went on %.1f s after SIGTERM" % took)
        self.assertIn("Stopped: stopped by SIGTERM while staging", tree.read("output", "failure"))
        self.assertEqual([n for n in os.listdir(tree.path(".smlaunch")) if n.startswith("staging")], [])

    # --- #9: symbolic link chains in archives
    def test_a_chain_of_links_that_climbs_out_of_code_is_refused(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh"})
        archive = os.path.join(tree.root, "code.tar.gz")
        with tarfile.open(archive, "w:gz") as t:
            for name, target in (("a", "."), ("b", "a/.."), ("c", "b/..")):
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                t.addfile(info)
            data = b"#!/bin/sh\necho ran\n"
            info = tarfile.TarInfo("train.sh")
            info.size, info.mode = len(data), 0o755
            t.addfile(info, io.BytesIO(data))
        self.set_submit_directory(tree.base, archive)
        result = tree.run()
        self.assertEqual(result.returncode, 66, result.stderr)
        failure = tree.read("output", "failure")
        self.assertTrue(failure.startswith("StagingError"), failure)
        self.assertIn('member "b"', failure)
        self.assertIn("outside the code directory", failure)
        self.assertFalse(os.path.lexists(tree.path("code", "b")))

    def test_links_that_stay_inside_code_are_kept(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh"})
        archive = os.path.join(tree.root, "code.tar.gz")
        with tarfile.open(archive, "w:gz") as t:
            for name, target in (("lib", "pkg"), ("a", "."), ("b", "a/pkg/.."), ("loop", "loop")):
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                t.addfile(info)
            info = tarfile.TarInfo("pkg")
            info.type = tarfile.DIRTYPE
            t.addfile(info)
            data = b"#!/bin/sh\ncat lib/x\n"
            for name in ("train.sh", "pkg/x"):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                t.addfile(info, io.BytesIO(data))
        self.set_submit_directory(tree.base, archive)
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(os.readlink(tree.path("code", "b")), "a/pkg/..")

    # --- #13: the kernel's limits on argv and environment
    def test_one_huge_hyperparameter_is_a_config_error_naming_it(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "small": 1,
                                           "corpus": "x" * (50 * 1024 * 1024)})
        tree.add_code("train.py", "print('ran')\n")
        result = tree.run(timeout=300, time_rss=True)
        self.assertEqual(result.returncode, 65, result.stderr[-2000:])
        failure = tree.read("output", "failure")
        self.assertTrue(failure.startswith("ConfigError"), failure[:500])
        self.assertIn('hyperparameter "corpus"', failure)
        self.assertIn("131072", failure)
        self.assertIn("MAX_ARG_STRLEN", failure)
        self.assertLess(len(failure), 8192)
        # Refused once decoded, before the arguments and SM_* copy it (1.5 GB seen before).
        self.assertLess(peak_rss_kib(result), rss_limit_kib(512), "the launcher peaked too high")

    def test_a_million_hyperparameters_are_a_config_error_with_a_small_failure_file(self):
        tree = Tree(self, raw_hyperparameters=dict({"hp%07d" % i: "1" for i in range(1000000)},
                                                   sagemaker_program=json.dumps("train.py")))
        tree.add_code("train.py", "print('ran')\n")
        result = tree.run(timeout=600, time_rss=True)
        self.assertEqual(result.returncode, 65, result.stderr[-2000:])
        failure = tree.read("output", "failure")
        self.assertTrue(failure.startswith("ConfigError"), failure[:500])
        # Refused from the file, before a million SM_* entries and arguments are built
        # (that took 1.6 GB and 10 s to reach the exec-limit check).
        self.assertIn("hyperparameters.json: holds 1000000 hyperparameters for the script", failure)
        self.assertIn("MAX_ARG_STRLEN", failure)
        self.assertLess(len(failure), 8192)
        # 228 MiB seen (1.6 GB before).
        self.assertLess(peak_rss_kib(result), rss_limit_kib(512), "the launcher peaked too high")

    def test_a_training_env_over_128_kib_is_named(self):
        hosts = ["algo-%d" % i for i in range(1, 8001)]
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_mpi_enabled": False},
                    hosts=hosts)
        tree.add_code("train.py", "print('ran')\n")
        result = tree.run(timeout=300)
        self.assertEqual(result.returncode, 65, result.stderr[-2000:])
        failure = tree.read("output", "failure")
        self.assertTrue(failure.startswith("ConfigError"), failure[:500])
        self.assertRegex(failure, r"environment variable SM_\w+ is \d+ bytes")
        self.assertIn("MAX_ARG_STRLEN", failure)

    # --- #15: what the failure file carries
    def test_the_failure_message_is_cut_between_characters(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "fail.py"})
        # One line of 6001 bytes: its last 2048 bytes start inside a character.
        tree.add_code("fail.py", "import sys\n"
                                 "sys.stderr.buffer.write(('\\u00e9' * 3000 + 'x\\n').encode())\n"
                                 "sys.exit(3)\n")
        self.assertEqual(tree.run().returncode, 3)
        with open(tree.path("output", "failure"), "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")                            # raises when not UTF-8
        for c in ("\x00", "\x1b"):
            self.assertNotIn(c, text)
        fields = harness.failure_fields(text)
        self.assertLessEqual(len(fields["message"].encode()), 2048)
        self.assertIn("\u00e9", fields["message"])

    def test_control_characters_and_bad_utf8_are_escaped(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "fail.py"})
        tree.add_code("fail.py", "import sys\n"
                                 "sys.stderr.buffer.write(b'bad \\x00 nul \\x1b[31m esc \\xff latin\\n')\n"
                                 "sys.exit(3)\n")
        self.assertEqual(tree.run().returncode, 3)
        text = read(tree.path("output", "failure"))
        self.assertIn("bad \\x00 nul \\x1b[31m esc \\xff latin", text)

    def test_sigterm_during_the_wait_for_host_names_writes_the_failure_file(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "sagemaker_mpi_enabled": False},
                    hosts=("algo-1", "smlaunch-unresolvable-host.invalid"))
        tree.add_code("train.py", "print('ran')\n")
        env = clean_env(SMLAUNCH_DNS_TIMEOUT="60")
        p = subprocess.Popen([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            if "to resolve" in line:
                break
        p.send_signal(signal.SIGTERM)
        p.stderr.read()
        self.assertEqual(p.wait(timeout=30), 128 + signal.SIGTERM)
        self.assertIn("Stopped: stopped by SIGTERM while waiting for the hosts' names to resolve",
                      tree.read("output", "failure"))

    # --- #4: a SIGKILLed `smlaunch local`
    def kill_local_and_check(self, *extra):
        src = tempfile.mkdtemp(prefix="smlaunch-src-")
        self.addCleanup(shutil.rmtree, src, ignore_errors=True)
        pids_file = os.path.join(src, "..", os.path.basename(src) + "-pids")
        self.addCleanup(lambda: os.path.exists(pids_file) and os.unlink(pids_file))
        with open(os.path.join(src, "job.py"), "w") as f:
            # Every process from the script up to init: its host's launcher, mpirun, ...
            f.write("import os, time\npids, pid = [], os.getpid()\n"
                    "while pid > 1:\n"
                    "    pids.append(pid)\n"
                    "    pid = int(open('/proc/' + str(pid) + '/stat').read().rsplit(')', 1)[1].split()[1])\n"
                    "with open(PIDS_FILE, 'a') as f:\n"
                    "    f.write(' '.join(map(str, pids)) + '\\n')\n"
                    "time.sleep(120)\n".replace("PIDS_FILE", repr(os.path.abspath(pids_file))))
        job_dir, argv = self.local_job(src, "job.py", *extra)
        p = subprocess.Popen(argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            text = self.wait_for_file(pids_file)
        finally:
            p.kill()
            p.wait(timeout=30)
        pids = [int(x) for x in text.split()]
        self.assertIn(p.pid, pids, text)
        ancestors = pids[:pids.index(p.pid)]
        self.assertGreaterEqual(len(ancestors), 2, text)     # the script and its host's launcher at least
        left = self.wait_gone(ancestors)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        self.assertEqual(left, [], "left running after kill -9 of smlaunch local")

    def test_a_sigkilled_local_leaves_no_script_or_launcher(self):
        self.kill_local_and_check()

    def test_a_sigkilled_local_leaves_no_mpirun_or_rank(self):
        if shutil.which("mpirun") is None:
            self.skipTest("no mpirun")
        self.kill_local_and_check("--use-mpi")

    # --- #5: daemons outlive the job
    DAEMON = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        with open(%r, 'w') as f:\n"
        "            f.write('%%d\\n' %% os.getpid())\n"
        "        while True:\n"
        "            print('daemon', flush=True)\n"
        "            time.sleep(0.2)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "deadline = time.time() + 30\n"
        "while not os.path.exists(%r) and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('script done', flush=True)\n")

    def test_a_setsid_daemon_is_ended_with_the_job(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        pid_file = os.path.join(tree.root, "daemon.pid")
        tree.add_code("train.py", self.DAEMON % (pid_file, pid_file))
        result = tree.run(timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        daemon = int(read(pid_file))
        self.assertEqual(self.wait_gone([daemon], seconds=1), [], "the daemon outlived smlaunch train")

    def test_a_setsid_daemon_is_ended_with_a_local_host(self):
        src = tempfile.mkdtemp(prefix="smlaunch-src-")
        self.addCleanup(shutil.rmtree, src, ignore_errors=True)
        pid_file = src + "-daemon.pid"
        self.addCleanup(lambda: os.path.exists(pid_file) and os.unlink(pid_file))
        with open(os.path.join(src, "job.py"), "w") as f:
            f.write(self.DAEMON % (pid_file, pid_file))
        job_dir, argv = self.local_job(src, "job.py")
        result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        daemon = int(read(pid_file))
        self.assertEqual(self.wait_gone([daemon], seconds=1), [], "the daemon outlived smlaunch local")

    # --- #8: code/ is a mount point
    def test_a_code_dir_that_is_a_mount_point_is_replaced_in_place(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs on code/ needs root")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "print('v1')\n")
        tree.add_code("old.txt", "old\n")
        code = tree.path("code")
        os.makedirs(code)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "smlaunch-test", code],
                                 capture_output=True, text=True, timeout=30)
        if mounted.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + mounted.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", code], timeout=30)
        first = tree.run()
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn("v1", first.stdout + first.stderr)
        self.assertEqual(sorted(os.listdir(code)), ["old.txt", "train.py"])
        os.unlink(os.path.join(tree.src, "old.txt"))
        tree.add_code("train.py", "print('v2')\n")
        second = tree.run()
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertIn("v2", second.stdout + second.stderr)
        self.assertTrue(os.path.ismount(code))
        self.assertEqual(sorted(os.listdir(code)), ["train.py"])
        self.assertEqual([n for n in os.listdir(tree.path(".smlaunch")) if n.startswith("staging")], [])

    # --- #11: a source folder that holds the tree
    def test_a_source_folder_that_contains_the_base_dir_leaves_it_out(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "src/train.py"})
        tree.add_code("train.py", "print('ran from above')\n")
        self.set_submit_directory(tree.base, tree.root)          # root/opt/ml is the base dir
        result = tree.run(timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("ran from above", result.stdout + result.stderr)
        self.assertIn("leaving %s out of the copy" % tree.base, result.stderr)
        self.assertFalse(os.path.exists(tree.path("code", "opt", "ml")))

    def test_a_source_folder_that_is_the_base_dir_is_refused(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        self.set_submit_directory(tree.base, tree.base)
        result = tree.run(timeout=60)
        self.assertEqual(result.returncode, 66, result.stderr)
        failure = tree.read("output", "failure")
        self.assertIn("it is the base directory", failure)

    def test_local_with_the_job_dir_reached_through_a_link_in_the_source(self):
        src = tempfile.mkdtemp(prefix="smlaunch-src-")
        self.addCleanup(shutil.rmtree, src, ignore_errors=True)
        with open(os.path.join(src, "job.py"), "w") as f:
            f.write("print('ran')\n")
        os.symlink(".", os.path.join(src, "here"))
        job_dir, argv = self.local_job(src, "job.py", job_dir=os.path.join(src, "here", "job"))
        result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("leaving", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(src, "job", ".smlaunch-local", "source", "job")))

    # --- #12: FIFOs and sockets inside a source folder
    def special_files(self, folder):
        os.mkfifo(os.path.join(folder, "a.fifo"))
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(os.path.join(folder, "a.sock"))

    def test_fifos_and_sockets_in_a_source_folder_are_skipped_with_a_warning(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", "print('ran')\n")
        self.special_files(tree.src)
        result = tree.run(timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        for name, kind in (("a.fifo", "a FIFO"), ("a.sock", "a socket")):
            self.assertIn("skipping %s: %s is not code" % (os.path.join(tree.src, name), kind), result.stderr)
            self.assertFalse(os.path.lexists(tree.path("code", name)))

    def test_fifos_and_sockets_in_a_local_source_are_skipped_with_a_warning(self):
        src = tempfile.mkdtemp(prefix="smlaunch-src-")
        self.addCleanup(shutil.rmtree, src, ignore_errors=True)
        with open(os.path.join(src, "job.py"), "w") as f:
            f.write("print('ran')\n")
        self.special_files(src)
        job_dir, argv = self.local_job(src, "job.py")
        result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        for name, kind in (("a.fifo", "a FIFO"), ("a.sock", "a socket")):
            self.assertIn("skipping %s: %s is not code" % (os.path.join(src, name), kind), result.stderr)


if __name__ == "__main__":
    unittest.main()
