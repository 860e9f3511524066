"""Issue 3: smlaunch as PID 1: exit codes, signals, reaping, output, failure reasons."""
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Tree, clean_env


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def start(tree, env=None, args=(), **kwargs):
    """Start smlaunch in the background; it is killed when the test ends, whatever happens."""
    argv = [harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON, *args]
    proc = subprocess.Popen(argv, env=env or clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)

    def stop():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    tree.testcase.addCleanup(stop)
    return proc


class TestExitStatus(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def test_every_exit_code_passes_through(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "exit.sh"},
                    code={"exit.sh": "#!/bin/sh\nexit \"$SM_HP_CODE\"\n"})
        for code in range(256):
            tree.write_config("hyperparameters.json", harness.sdk_encode(
                {"sagemaker_program": "exit.sh", "code": code,
                 "sagemaker_submit_directory": "file://" + tree.src}))
            for name in ("failure", "success"):
                if os.path.exists(tree.path("output", name)):
                    os.remove(tree.path("output", name))
            result = tree.run(env=clean_env(SMLAUNCH_NUM_GPUS=0, SMLAUNCH_LOG_LEVEL="warning"))
            self.assertEqual(result.returncode, code, result.stderr)
            if code == 0:
                self.assertTrue(os.path.exists(tree.path("output", "success")))
            else:
                fields = harness.failure_fields(tree.read("output", "failure"))
                self.assertEqual(fields["exit_code"], code)

    def test_killed_by_a_signal_gives_128_plus_n(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "die.sh"},
                    code={"die.sh": "#!/bin/sh\necho dying >&2\nkill -s \"$SM_HP_SIG\" $$\nsleep 5\n"})
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT, signal.SIGKILL,
                    signal.SIGUSR1, signal.SIGSEGV, signal.SIGUSR2, signal.SIGPIPE, signal.SIGTERM):
            tree.write_config("hyperparameters.json", harness.sdk_encode(
                {"sagemaker_program": "die.sh", "sig": sig.name[3:],
                 "sagemaker_submit_directory": "file://" + tree.src}))
            if os.path.exists(tree.path("output", "failure")):
                os.remove(tree.path("output", "failure"))
            result = tree.run(env=clean_env(SMLAUNCH_NUM_GPUS=0))
            self.assertEqual(result.returncode, 128 + sig, sig.name)
            message = harness.failure_fields(tree.read("output", "failure"))["message"]
            self.assertIn(sig.name, message)
            self.assertIn("dying", message)
            if sig == signal.SIGKILL:
                self.assertIn("out of memory", message)

    def test_missing_interpreter_gives_127(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "run.sh"},
                    code={"run.sh": "#!/nonexistent/interpreter\n"})
        result = tree.run()
        self.assertEqual(result.returncode, 127)
        self.assertIn("not found", harness.failure_fields(tree.read("output", "failure"))["message"])


class TestSignals(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def silent_server(self):
        """A loopback port that accepts connections and never answers: (port, accepted)."""
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        self.addCleanup(server.close)
        accepted = []

        def serve():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                accepted.append(conn)

        threading.Thread(target=serve, daemon=True).start()
        return server.getsockname()[1], accepted

    def test_sigterm_reaches_a_script_that_checkpoints(self):
        code = ("import os, signal, sys, time\n"
                "out = os.environ['SM_MODEL_DIR']\n"
                "def stop(sig, frame):\n"
                "    open(os.path.join(out, 'checkpoint'), 'w').write('saved at step 7')\n"
                "    sys.exit(0)\n"
                "signal.signal(signal.SIGTERM, stop)\n"
                "open(os.path.join(out, 'ready'), 'w').close()\n"
                "time.sleep(60)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("model"))
        proc = start(tree)
        wait_for(lambda: os.path.exists(tree.path("model", "ready")), 30, "the script to start")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(tree.read("model", "checkpoint"), "saved at step 7")

    def test_sigterm_reaches_a_stopped_script_within_the_grace_period(self):
        # A script stopped by SIGSTOP (a suspended job, a debugger's freeze) is continued
        # after the forwarded SIGTERM, so it can still checkpoint. Before, it stayed frozen
        # for the whole grace period and was killed with SIGKILL (exit 137).
        code = ("import os, signal, sys, time\n"
                "out = os.environ['SM_MODEL_DIR']\n"
                "def stop(sig, frame):\n"
                "    open(os.path.join(out, 'checkpoint'), 'w').write('saved while stopped')\n"
                "    sys.exit(0)\n"
                "signal.signal(signal.SIGTERM, stop)\n"
                "open(os.path.join(out, 'pid'), 'w').write(str(os.getpid()))\n"
                "os.kill(os.getpid(), signal.SIGSTOP)\n"
                "time.sleep(60)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("model"))
        proc = start(tree, env=clean_env(SMLAUNCH_GRACE_PERIOD="5"))

        def stopped():
            try:
                with open("/proc/%s/stat" % tree.read("model", "pid")) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "T"
            except (OSError, ValueError, IndexError):
                return False
        wait_for(stopped, 30, "the script to stop itself")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace")[-2000:])
        self.assertEqual(tree.read("model", "checkpoint"), "saved while stopped")

    def test_script_ignoring_sigterm_is_killed_after_the_grace_period(self):
        code = ("import os, signal, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "open(os.path.join(os.environ['SM_MODEL_DIR'], 'ready'), 'w').close()\n"
                "time.sleep(60)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("model"))
        proc = start(tree, env=clean_env(SMLAUNCH_GRACE_PERIOD="1"))
        wait_for(lambda: os.path.exists(tree.path("model", "ready")), 30, "the script to start")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        elapsed = time.monotonic() - sent
        self.assertEqual(proc.returncode, 128 + signal.SIGKILL)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 10)
        message = harness.failure_fields(tree.read("output", "failure"))["message"]
        self.assertIn("grace period", message)
        self.assertIn("SIGTERM", message)

    def test_second_sigint_does_not_wait(self):
        code = ("import os, signal, time\n"
                "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "open(os.path.join(os.environ['SM_MODEL_DIR'], 'ready'), 'w').close()\n"
                "time.sleep(60)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("model"))
        proc = start(tree, env=clean_env(SMLAUNCH_GRACE_PERIOD="300"))
        wait_for(lambda: os.path.exists(tree.path("model", "ready")), 30, "the script to start")
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        self.assertIsNone(proc.poll(), "the first SIGINT waits for the grace period")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 128 + signal.SIGKILL)

    def test_a_script_killed_by_a_forwarded_sigterm_exits_143_with_a_failure_file(self):
        # CONTRACT: on failure output/failure; the exit status is the script's own, 128+N
        # when killed by signal N. A script without a SIGTERM handler dies of it.
        code = ("import os, time\n"
                "open(os.path.join(os.environ['SM_MODEL_DIR'], 'ready'), 'w').close()\n"
                "time.sleep(60)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("model"))
        proc = start(tree)
        wait_for(lambda: os.path.exists(tree.path("model", "ready")), 30, "the script to start")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM)
        self.assertFalse(os.path.exists(tree.path("output", "success")))
        fields = harness.failure_fields(tree.read("output", "failure"))
        self.assertEqual(fields["class"], "ExecuteUserScriptError:")
        self.assertEqual(fields["exit_code"], 143)
        self.assertIn("SIGTERM", fields["message"])

    def test_a_signal_while_waiting_for_host_names_stops_with_the_phase(self):
        # Two hosts whose names never resolve: the launcher waits (--dns-timeout) before
        # anything else of the MPI job; a stop there has the one channel of every phase.
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, hosts=("algo-1", "algo-2"),
                    code={"train.py": "print('must not run')\n"})
        log = os.path.join(tree.root, "stderr.log")
        with open(log, "wb") as err:
            proc = subprocess.Popen([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON,
                                     "--dns-timeout", "120"], env=clean_env(), stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())

        def waiting():
            with open(log, "rb") as f:
                return b"to resolve" in f.read()
        wait_for(waiting, 60, "the launcher to wait for the host names")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM)
        failure = tree.read("output", "failure")
        self.assertTrue(failure.startswith(
            "Stopped: stopped by SIGTERM while waiting for the hosts' names to resolve\n"), failure)
        self.assertIn("ExitCode 143\n", failure)

    def test_a_signal_during_staging_stops_with_the_phase(self):
        # An S3 endpoint that accepts connections and never answers keeps staging busy.
        port, accepted = self.silent_server()
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py",
                                           "sagemaker_submit_directory": "s3://bucket/code.tar.gz"})
        env = clean_env(S3_ENDPOINT_URL="http://127.0.0.1:%d" % port, AWS_ACCESS_KEY_ID="AKIDTEST",
                        AWS_SECRET_ACCESS_KEY="secret", AWS_REGION="us-east-1")
        proc = start(tree, env=env)
        wait_for(lambda: accepted, 60, "staging to contact the S3 endpoint")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM)
        failure = tree.read("output", "failure")
        self.assertTrue(failure.startswith("Stopped: stopped by SIGTERM while staging\n"), failure)
        self.assertIn("ExitCode 143\n", failure)

    def test_usr1_is_forwarded_to_the_whole_process_group(self):
        # The script's child (same group) must get the signal too.
        code = ("#!/bin/sh\n"
                "d=\"$SM_MODEL_DIR\"\n"
                "sh -c 'trap \"touch $0/child-got-usr1; exit 0\" USR1; touch $0/child-ready; while :; do sleep 0.05; done' \"$d\" &\n"
                "trap 'touch \"$d/parent-got-usr1\"; wait; exit 0' USR1\n"
                "touch \"$d/ready\"\n"
                "while :; do sleep 0.05; done\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "run.sh"}, code={"run.sh": code})
        os.makedirs(tree.path("model"))
        proc = start(tree)
        wait_for(lambda: os.path.exists(tree.path("model", "ready")) and
                 os.path.exists(tree.path("model", "child-ready")), 30, "the script to start")
        proc.send_signal(signal.SIGUSR1)
        proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0)
        self.assertTrue(os.path.exists(tree.path("model", "parent-got-usr1")))
        self.assertTrue(os.path.exists(tree.path("model", "child-got-usr1")))

    def test_a_signal_during_pip_install_stops_pip(self):
        # An index that accepts connections and never answers keeps pip busy.
        port, accepted = self.silent_server()
        # The script leaves a mark if it runs; it must not, the job being stopped.
        marker_dir = tempfile.mkdtemp(prefix="smlaunch-test-")
        self.addCleanup(shutil.rmtree, marker_dir, True)
        marker = os.path.join(marker_dir, "script-ran")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"},
                    code={"train.py": "open(%r, 'w')\n" % marker,
                          "requirements.txt": "smlaunch-hang-marker-pkg\n"})
        env = clean_env(PIP_INDEX_URL="http://127.0.0.1:%d/simple" % port, PIP_TIMEOUT="60", PIP_RETRIES="0",
                        PIP_TARGET=os.path.join(tree.root, "site"))
        del env["PIP_NO_INDEX"]
        proc = start(tree, env=env)
        wait_for(lambda: accepted, 60, "pip to contact the index")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM)
        self.assertFalse(os.path.exists(tree.path("output", "success")))
        time.sleep(0.2)
        leftovers = [p for p in os.listdir("/proc") if p.isdigit() and b"smlaunch-hang-marker" in cmdline(p)]
        self.assertEqual(leftovers, [], "pip is still running")
        self.assertFalse(os.path.exists(marker), "the script ran after the job was stopped")
        # A stop before the script has the one channel of every phase: 128+N and a failure
        # file of class Stopped naming the phase.
        with open(tree.path("output", "failure")) as f:
            failure = f.read()
        self.assertTrue(failure.startswith("Stopped: stopped by SIGTERM while installing with pip\n"), failure)
        self.assertIn("ExitCode 143\n", failure)


ORPHANS = r"""#!/bin/sh
# Start 100 grandchildren that outlive this script's child and become orphans.
# (Timings leave room for a loaded machine: forking 100 subshells can take seconds.)
launcher=$PPID
for i in $(seq 100); do (sleep 3 &) ; done
adopted=0
for t in $(seq 25); do
  n=$(grep -l "^PPid:[[:space:]]*$launcher\$" /proc/[0-9]*/status 2>/dev/null | wc -l)
  [ "$n" -gt "$adopted" ] && adopted=$n
  [ "$adopted" -ge 101 ] && break
  sleep 0.1
done
sleep 4  # every sleep has ended by now: the launcher must have reaped them all
zombies=0
for s in /proc/[0-9]*/status; do
  if grep -q "^PPid:[[:space:]]*$launcher\$" "$s" 2>/dev/null && grep -q '^State:[[:space:]]*Z' "$s" 2>/dev/null; then
    zombies=$((zombies + 1))
  fi
done
echo "$adopted $zombies" > "$SM_MODEL_DIR/orphans.txt"
"""


class TestReaping(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def check_orphans(self, wrapper=()):
        tree = Tree(self, hyperparameters={"sagemaker_program": "orphans.sh"}, code={"orphans.sh": ORPHANS})
        os.makedirs(tree.path("model"))
        argv = [*wrapper, harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON]
        result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        adopted, zombies = map(int, tree.read("model", "orphans.txt").split())
        # The script itself is also a child of the launcher.
        self.assertGreaterEqual(adopted, 101, "the orphans were re-parented to smlaunch")
        self.assertEqual(zombies, 0, "every orphan was reaped")

    def test_orphans_are_reaped_by_a_subreaper(self):
        self.check_orphans()

    def test_orphans_are_reaped_as_pid_1(self):
        unshare = shutil.which("unshare")
        if unshare is None or subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"],
                                             capture_output=True).returncode != 0:
            self.skipTest("cannot create a PID namespace here (needs root and unshare)")
        self.check_orphans(wrapper=(unshare, "--pid", "--fork", "--mount-proc"))


class TestChildSignalState(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def test_sigblk_and_sigign_equal_the_callers(self):
        script = "#!/bin/sh\nexec grep -E '^Sig(Blk|Ign)' /proc/self/status > \"$SM_MODEL_DIR/sig.txt\"\n"
        tree = Tree(self, hyperparameters={"sagemaker_program": "sig.sh"}, code={"sig.sh": script})
        os.makedirs(tree.path("model"))

        def caller_state():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGALRM})
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

        env = clean_env()
        result = subprocess.run([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON],
                                env=env, capture_output=True, text=True, timeout=60, preexec_fn=caller_state)
        self.assertEqual(result.returncode, 0, result.stderr)
        through_smlaunch = tree.read("model", "sig.txt")
        direct_env = dict(env, SM_MODEL_DIR=os.path.join(tree.root, "direct"))
        os.makedirs(direct_env["SM_MODEL_DIR"])
        subprocess.run([tree.path("code", "sig.sh")], env=direct_env, check=True, preexec_fn=caller_state)
        with open(os.path.join(direct_env["SM_MODEL_DIR"], "sig.txt")) as f:
            direct = f.read()
        self.assertEqual(through_smlaunch, direct)
        self.assertNotEqual(direct.split("\n")[0].split()[1], "0000000000000000", "the test set a mask")


class TestOutput(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def test_interleaved_lines_arrive_whole_and_in_order_on_one_stream(self):
        code = ("import sys\n"
                "for i in range(3000):\n"
                "    print('out %d' % i)\n"
                "    print('err %d' % i, file=sys.stderr)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        argv = [harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON, "-q"]
        result = subprocess.run(argv, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout[-2000:])
        expected = "".join("out %d\nerr %d\n" % (i, i) for i in range(3000))
        self.assertEqual(result.stdout.decode(), expected)

    def test_separate_streams_stay_complete(self):
        code = ("import sys\n"
                "for i in range(3000):\n"
                "    print('out %d' % i)\n"
                "    print('err %d' % i, file=sys.stderr)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        result = tree.run(args=["-q"])
        self.assertEqual(result.returncode, 0)
        self.assertEqual(result.stdout, "".join("out %d\n" % i for i in range(3000)))
        self.assertEqual(result.stderr, "".join("err %d\n" % i for i in range(3000)))

    def test_a_long_line_and_no_trailing_newline_arrive_intact(self):
        code = ("import sys\n"
                "sys.stderr.write('L' * 200000 + '\\n')\n"
                "sys.stderr.write('tail without newline')\n"
                "sys.stdout.write('S' * 100000)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        result = tree.run(args=["-q"])
        self.assertEqual(result.returncode, 0)
        self.assertEqual(result.stderr, "L" * 200000 + "\ntail without newline")
        self.assertEqual(result.stdout, "S" * 100000)

    def test_a_silent_script_costs_no_relay_thread_until_it_writes(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh"})
        tree.add_code("train.sh", "#!/bin/sh\nsleep 1\necho spoke >&2\nsleep 1\n", mode=0o755)
        proc = start(tree)
        threads = lambda: len(os.listdir("/proc/%d/task" % proc.pid))
        children = lambda: open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read().split()
        wait_for(lambda: children(), 10, "the script")
        time.sleep(0.2)
        self.assertEqual(threads(), 1, "a relay thread for a script that wrote nothing")
        wait_for(lambda: threads() == 2, 5, "the relay thread once the script wrote")
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(b"spoke\n", err)

    def test_what_a_script_writes_just_before_it_exits_is_relayed_and_kept(self):
        # Written and gone at once: often relayed by the launcher's main thread at the end.
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh"})
        tree.add_code("train.sh", "#!/bin/sh\necho \"last words $$\" >&2\nexit 3\n", mode=0o755)
        for _ in range(20):
            result = tree.run(args=["-q"])
            self.assertEqual(result.returncode, 3, result.stderr)
            self.assertRegex(result.stderr, r"^last words \d+\n")
            word = result.stderr.split()[2]
            self.assertIn("last words " + word, tree.read("output", "failure"))

    def test_output_to_a_full_non_blocking_pipe_is_waited_on_not_dropped(self):
        # The launcher's stderr is a pipe whose file description is in non-blocking mode (a
        # parent set O_NONBLOCK on its end) and whose reader is busy until the script has
        # written everything. Before, the relay took the first EAGAIN for a broken output and
        # dropped the rest of the script's 4 MB, exiting 0.
        lines = 40000
        code = ("import os, sys\n"
                "for i in range(%d):\n"
                "    sys.stderr.write('line %%06d %%s\\n' %% (i, 'x' * 90))\n"
                "open(os.path.join(os.environ['SM_MODEL_DIR'], 'written'), 'w').close()\n" % lines)
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("model"))
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        self.addCleanup(os.close, read_end)
        try:
            proc = subprocess.Popen([harness.SMLAUNCH, "train", "--base-dir", tree.base, "--python", harness.PYTHON,
                                     "-q"], env=clean_env(), stdout=subprocess.DEVNULL, stderr=write_end)
        finally:
            os.close(write_end)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        # The reader starts once the script is done, or after 3 s when the script is (rightly)
        # held back by the full pipe.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not os.path.exists(tree.path("model", "written")):
            time.sleep(0.05)
        received = bytearray()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not select.select([read_end], [], [], 1)[0]:
                continue
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            received += chunk
        self.assertEqual(proc.wait(timeout=60), 0)
        expected = "".join("line %06d %s\n" % (i, "x" * 90) for i in range(lines)).encode()
        self.assertEqual(len(received), len(expected))
        self.assertEqual(bytes(received), expected)

    def test_pythonunbuffered_is_set_unless_the_user_set_it(self):
        code = "import os\nopen(os.environ['SM_MODEL_DIR'] + '/u', 'w').write(os.environ['PYTHONUNBUFFERED'])\n"
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("model"))
        self.assertEqual(tree.run().returncode, 0)
        self.assertEqual(tree.read("model", "u"), "1")
        self.assertEqual(tree.run(env=clean_env(PYTHONUNBUFFERED="0")).returncode, 0)
        self.assertEqual(tree.read("model", "u"), "0")


class TestSecrets(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def test_secrets_never_reach_logs_or_the_failure_file(self):
        secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
        code = "import os, sys\nprint('token is', os.environ['AWS_SECRET_ACCESS_KEY'], file=sys.stderr)\nsys.exit(2)\n"
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "api_key": "hp-secret-123456"},
                    code={"train.py": code})
        result = tree.run(args=["-v"], env=clean_env(AWS_SECRET_ACCESS_KEY=secret))
        self.assertEqual(result.returncode, 2)
        failure = tree.read("output", "failure")
        self.assertNotIn(secret, failure)
        self.assertNotIn("hp-secret-123456", failure)
        self.assertIn("token is ****", failure)
        launcher_lines = [l for l in result.stderr.splitlines() if " smlaunch " in l]
        self.assertTrue(launcher_lines)
        for line in launcher_lines:
            self.assertNotIn(secret, line)
            self.assertNotIn("hp-secret-123456", line)
        # The script's own output passes through untouched.
        self.assertIn("token is " + secret, result.stderr)


if __name__ == "__main__":
    unittest.main()
