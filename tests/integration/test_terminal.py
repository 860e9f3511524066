"""The failure reason under a terminal (issue 18): the SageMaker SDK's local mode runs the
container with a TTY, so smlaunch's stdout and stderr are a terminal. The script must still
see a terminal (isatty, size), its output must still reach that terminal whole, and a script
that raises must leave its exception in output/failure, not "wrote nothing to stderr"."""
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import fcntl
import time
import unittest

import harness
from harness import Tree, clean_env, failure_fields

SCRIPT = r'''
import json, os, shutil, sys
os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "tty.json"), "w") as f:
    json.dump({"stdout": sys.stdout.isatty(), "stderr": sys.stderr.isatty(),
               "size": list(shutil.get_terminal_size((0, 0)))}, f)
print("\x1b[32mepoch 1: loss 0.5\x1b[0m")
sys.stdout.flush()
if os.environ.get("SM_HP_FAIL") == "true":
    raise ValueError("the learning rate is negative")
'''


RESIZE_SCRIPT = r'''
import os, shutil, signal, sys, time
got = []
signal.signal(signal.SIGWINCH, lambda *_: got.append(shutil.get_terminal_size((0, 0))))
print("ready", flush=True)
deadline = time.monotonic() + 20
while not got and time.monotonic() < deadline:
    time.sleep(0.05)
print("resized to %dx%d" % tuple(got[0]) if got else "no SIGWINCH", flush=True)
'''


def run_on_terminal(argv, env, timeout=60, rows=40, cols=132, on_output=None):
    """Run argv with stdout and stderr on a new pseudo-terminal; returns (status, what the
    terminal received). on_output(process, slave, received) is called as output arrives."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    received = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                received += chunk
                if on_output:
                    on_output(p, slave, received)
            elif p.poll() is not None:
                break
        status = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        os.close(slave)
    return status, received.decode(errors="replace")


class TestTerminal(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def run_tree(self, fail):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "fail": fail})
        tree.add_code("train.py", SCRIPT)
        argv = [harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON]
        status, terminal = run_on_terminal(argv, clean_env())
        return tree, status, terminal

    def test_the_script_still_has_a_terminal_of_the_same_size(self):
        tree, status, terminal = self.run_tree(fail=False)
        self.assertEqual(status, 0, terminal)
        seen = json.loads(tree.read("output", "data", "tty.json"))
        self.assertEqual(seen, {"stdout": True, "stderr": True, "size": [132, 40]})
        self.assertIn("\x1b[32mepoch 1: loss 0.5\x1b[0m", terminal)
        self.assertTrue(os.path.exists(tree.path("output", "success")))

    def test_a_failure_under_a_terminal_keeps_its_exception(self):
        tree, status, terminal = self.run_tree(fail=True)
        self.assertEqual(status, 1, terminal)
        # The traceback reached the terminal...
        self.assertIn("ValueError: the learning rate is negative", terminal)
        # ...and the failure file names it.
        failure = tree.read("output", "failure")
        fields = failure_fields(failure)
        self.assertEqual(fields["exit_code"], 1)
        self.assertIn("ValueError: the learning rate is negative", failure)
        self.assertNotIn("wrote nothing", failure)

    def test_a_resized_terminal_resizes_the_scripts(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", RESIZE_SCRIPT)
        argv = [harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON]
        resized = []

        def resize(process, slave, received):
            if b"ready" in received and not resized:
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
                process.send_signal(signal.SIGWINCH)  # as the terminal does for its foreground
                resized.append(True)

        status, terminal = run_on_terminal(argv, clean_env(), on_output=resize)
        self.assertEqual(status, 0, terminal)
        self.assertIn("resized to 200x50", terminal)


if __name__ == "__main__":
    unittest.main()
