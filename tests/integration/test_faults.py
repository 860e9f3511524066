"""Training faults a careless user hits (issue 15), each on a real tree with the real binary."""
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import unittest

import harness
from harness import Tree, clean_env

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


if __name__ == "__main__":
    unittest.main()
