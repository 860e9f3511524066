"""Issue 2: the real binary on fake trees with real Python and pip.

Every SM_* variable and the argv a script receives are compared with
reference_oracle.py, the reference toolkit's rules computed by Python itself.
"""
import json
import os
import socket
import stat
import struct
import unittest

import harness
import reference_oracle
from harness import PROBE, Tree, clean_env

EVERY_TYPE = {
    "epochs": 10, "lr": 0.001, "big": 1e16, "tiny": 1e-05, "f": 1.5, "whole": 2.0,
    "huge-int": 123456789012345678901234567890, "flag": True, "off": False, "none": None,
    "lst": [1, "x", 2.5, None, True], "d": {"b": 1, "a": {"z": True}}, "Name": "a b",
    "plain": "some text", "uni": "é", "x": "q", "model-name": "bert base", "quote": "it's \"q\"",
    "empty": "", "nested": [{"k": [1, {"m": "n"}]}], "neg": -3, "exp": 3e-300,
}


class TestTrain(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def assert_matches_reference(self, tree, probe, inherited=None, entry="train.py"):
        expected_vars, expected_args, extra = reference_oracle.expected(tree.base, inherited=inherited)
        env = probe["env"]
        got_sm = {k: v for k, v in env.items() if k.startswith("SM_")}
        want_sm = {k: v for k, v in expected_vars.items()}
        self.assertEqual(sorted(got_sm), sorted(want_sm), "set of SM_* variables")
        for name, value in want_sm.items():
            self.assertEqual(got_sm[name], value, name)
        for name, value in extra.items():
            self.assertEqual(env[name], value, name)
        self.assertEqual(probe["argv"], [entry] + expected_args)
        self.assertEqual(probe["cwd"], tree.path("code"))
        self.assertEqual(env["PYTHONPATH"].split(":")[0], tree.path("code"))
        self.assertEqual(env["PYTHONUNBUFFERED"], "1")

    def test_one_host_every_hyperparameter_type(self):
        hps = dict(EVERY_TYPE, sagemaker_program="train.py", sagemaker_region="us-west-2",
                   sagemaker_job_name="job-1", sagemaker_container_log_level=20,
                   sagemaker_mpi_custom_mpi_options="-v", _tuning_objective_metric="loss")
        tree = Tree(self, hyperparameters=hps, code={"train.py": PROBE})
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree.read("output", "success"), "")
        self.assertFalse(os.path.exists(tree.path("output", "failure")))
        probe = tree.probe()
        self.assert_matches_reference(tree, probe)
        # Platform keys never reach the script.
        self.assertNotIn("--_tuning_objective_metric", probe["argv"])
        self.assertNotIn("SM_HP__TUNING_OBJECTIVE_METRIC", probe["env"])

    def test_raw_values_that_are_not_json_stay_strings(self):
        raw = {"a": "True", "b": "007", "c": "some text", "d": " 5 ", "e": "1.50", "f": "NaN",
               "g": "[1, 2", "h": "null", "i": "\"\\u00e9t\\u00e9\"", "j": "-Infinity", "k": "1e400",
               "sagemaker_program": "train.py"}
        tree = Tree(self, raw_hyperparameters=raw, code={"train.py": PROBE})
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        probe = tree.probe()
        self.assert_matches_reference(tree, probe)
        self.assertEqual(probe["env"]["SM_HP_E"], "1.5")
        self.assertEqual(probe["env"]["SM_HP_B"], "007")

    def test_several_hosts_with_mpi_turned_off(self):
        hps = {"sagemaker_program": "train.py", "sagemaker_use_mpi": False, "epochs": 1}
        rc = {"network_interface_name": "ethwe", "current_instance_type": "ml.c5.xlarge",
              "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.c5.xlarge",
                                   "hosts": ["algo-3", "algo-1", "algo-2"]}]}
        tree = Tree(self, hyperparameters=hps, hosts=("algo-1", "algo-2", "algo-3"), current_host="algo-2",
                    resource_extra=rc, code={"train.py": PROBE})
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        probe = tree.probe()
        self.assert_matches_reference(tree, probe)
        self.assertEqual(probe["env"]["SM_CURRENT_HOST"], "algo-2")
        self.assertEqual(probe["env"]["SM_CURRENT_INSTANCE_GROUP_HOSTS"], '["algo-3","algo-1","algo-2"]')

    def test_instance_groups_choose_the_master_with_mpi_flag(self):
        # The toolkit's rule: with MPI enabled the master is the groups' first host.
        hps = {"sagemaker_program": "train.py", "sagemaker_mpi_enabled": True}
        rc = {"instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.p4d.24xlarge",
                                   "hosts": ["algo-2", "algo-1"]}]}
        tree = Tree(self, hyperparameters=hps, hosts=("algo-1", "algo-2"), resource_extra=rc,
                    code={"train.py": PROBE})
        plan = json.loads(tree.run("plan").stdout)
        self.assertEqual(plan["host"]["master"], "algo-2")
        self.assertTrue(plan["mpi"]["enabled"])
        self.assertEqual(plan["mpi"]["processes_per_host"], 1)

    def test_odd_channel_and_hyperparameter_names(self):
        hps = {"sagemaker_program": "train.py", "model-name": "x", "ß": 1, "Upper": 2, "a.b": 3, "日本": "語"}
        tree = Tree(self, hyperparameters=hps, channels=("train-a", "tráin", "UPPER", "x.y", "a b"),
                    code={"train.py": PROBE})
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        probe = tree.probe()
        self.assert_matches_reference(tree, probe)
        self.assertEqual(probe["env"]["SM_CHANNEL_TRAIN-A"], tree.path("input", "data", "train-a"))
        self.assertIn("SM_HP_SS", probe["env"])
        self.assertIn("SM_CHANNEL_TRÁIN", probe["env"])

    def test_sagemaker_program_variable_wins(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "other.py", "k": 1},
                    code={"train.py": PROBE, "other.py": "raise SystemExit(9)\n"})
        env = clean_env(SAGEMAKER_PROGRAM="train.py", TRAINING_JOB_NAME="job-x", SAGEMAKER_TRAINING_MODULE="m:f")
        result = tree.run(env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_matches_reference(tree, tree.probe(), inherited=env)

    def test_plan_and_train_agree(self):
        tree = Tree(self, hyperparameters=dict(EVERY_TYPE, sagemaker_program="train.py"), code={"train.py": PROBE})
        env = clean_env(PYTHONPATH="/extra/lib")
        plan_run = tree.run("plan", env=env)
        self.assertEqual(plan_run.returncode, 0, plan_run.stderr)
        plan = json.loads(plan_run.stdout)
        self.assertFalse(os.path.exists(tree.path("code", "train.py")), "plan must not stage anything")
        self.assertFalse(os.path.exists(tree.path("output", "success")))
        result = tree.run(env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        probe = tree.probe()
        script = plan["steps"][-1]
        self.assertEqual(script["name"], "script")
        self.assertEqual(script["argv"][1:], probe["argv"])
        self.assertEqual(script["cwd"], probe["cwd"])
        for name, value in script["env"].items():
            self.assertEqual(probe["env"].get(name), value, name)
        self.assertEqual(probe["env"]["PYTHONPATH"], tree.path("code") + ":/extra/lib")

    def test_shell_entry_point_gets_arguments_literally(self):
        script = "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$SM_OUTPUT_DATA_DIR/args.txt\"\n"
        hps = {"sagemaker_program": "train.sh", "cmd": "$(touch /tmp/smlaunch-pwned)", "semi": "; rm -rf /",
               "sp": "a  b", "star": "*"}
        tree = Tree(self, hyperparameters=hps, code={"train.sh": script})
        os.makedirs(tree.path("output", "data"), exist_ok=True)
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        args = tree.read("output", "data", "args.txt").split("\n")[:-1]
        self.assertEqual(args, ["--cmd", "$(touch /tmp/smlaunch-pwned)", "--semi", "; rm -rf /", "--sp", "a  b",
                                "--star", "*"])
        self.assertFalse(os.path.exists("/tmp/smlaunch-pwned"))
        self.assertTrue(os.stat(tree.path("code", "train.sh")).st_mode & stat.S_IXUSR)

    def test_script_without_shebang_runs_with_sh(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "run", "n": 3},
                    code={"run": "echo \"$1 $2\" > \"$SM_OUTPUT_DATA_DIR/out.txt\"\n"})
        os.makedirs(tree.path("output", "data"), exist_ok=True)
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree.read("output", "data", "out.txt"), "-n 3\n")

    def test_package_entry_point_runs_as_module(self):
        setup = "from setuptools import setup\nsetup(name='userpkg', version='1.0', py_modules=['train'])\n"
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "k": "v"},
                    code={"train.py": PROBE, "setup.py": setup})
        target = os.path.join(tree.root, "site")
        env = clean_env(PIP_TARGET=target, PIP_NO_BUILD_ISOLATION="0")
        result = tree.run(env=env)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        probe = tree.probe()
        self.assertTrue(probe["argv"][0].endswith("train.py"))  # python -m train
        plan = json.loads(tree.run("plan", env=env).stdout)
        self.assertEqual(plan["steps"][-1]["argv"][1:3], ["-m", "train"])
        self.assertEqual(plan["steps"][0]["argv"][1:], ["-m", "pip", "install", "."])
        self.assertTrue(os.listdir(target), "pip install . put the package in PIP_TARGET")

    def test_script_exit_code_passes_through(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"},
                    code={"train.py": "import sys\nprint('bad things', file=sys.stderr)\nsys.exit(3)\n"})
        result = tree.run()
        self.assertEqual(result.returncode, 3)
        fields = harness.failure_fields(tree.read("output", "failure"))
        self.assertEqual(fields["class"], "ExecuteUserScriptError:")
        self.assertEqual(fields["exit_code"], 3)
        self.assertIn("bad things", fields["message"])
        self.assertEqual(fields["command"], harness.PYTHON + " train.py")
        self.assertFalse(os.path.exists(tree.path("output", "success")))

    def test_script_that_raises_names_the_exception(self):
        code = "def load():\n    raise ValueError('learning rate must be positive, got -1')\nload()\n"
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "lr": -1}, code={"train.py": code})
        result = tree.run()
        self.assertEqual(result.returncode, 1)
        text = tree.read("output", "failure")
        fields = harness.failure_fields(text)
        self.assertTrue(fields["message"].startswith("ValueError: learning rate must be positive, got -1"), text)
        self.assertIn("Traceback (most recent call last):", fields["message"])
        self.assertIn("ValueError", text[:1024])
        self.assertIn("Traceback", result.stderr, "stderr still passes through whole")

    def test_user_failure_file_is_kept(self):
        code = ("import os\nopen(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('mine')\n"
                "raise SystemExit(5)\n")
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": code})
        os.makedirs(tree.path("output"), exist_ok=True)
        result = tree.run()
        self.assertEqual(result.returncode, 5)
        self.assertEqual(tree.read("output", "failure"), "mine")

    def test_requirements_from_a_wheel_the_test_builds(self):
        wheels = os.path.join(self.id().replace(".", "_"))
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"},
                    code={"requirements.txt": "smlaunch-testdep==1.0\n",
                          "train.py": "import smlaunch_testdep, os\n"
                                      "open(os.environ['SM_MODEL_DIR'] + '/v', 'w').write(str(smlaunch_testdep.VALUE))\n"})
        wheels = os.path.join(tree.root, "wheels")
        harness.build_wheel(wheels, "smlaunch_testdep", module_text="VALUE = 4242\n")
        target = os.path.join(tree.root, "site")
        os.makedirs(tree.path("model"))
        env = clean_env(PIP_FIND_LINKS=wheels, PIP_TARGET=target, PYTHONPATH=target)
        result = tree.run(env=env)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(tree.read("model", "v"), "4242")

    def test_requirements_for_a_shell_entry_point_are_installed_too(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh"},
                    code={"requirements.txt": "smlaunch-testdep==1.0\n",
                          "train.sh": "#!/bin/sh\nexec \"$SMLAUNCH_TEST_PYTHON\" -c 'import smlaunch_testdep'\n"})
        wheels = os.path.join(tree.root, "wheels")
        harness.build_wheel(wheels, "smlaunch_testdep")
        target = os.path.join(tree.root, "site")
        env = clean_env(PIP_FIND_LINKS=wheels, PIP_TARGET=target, PYTHONPATH=target,
                        SMLAUNCH_TEST_PYTHON=harness.PYTHON)
        result = tree.run(env=env)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_unsatisfiable_requirement(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"},
                    code={"requirements.txt": "smlaunch-no-such-package==9.9.9\n", "train.py": PROBE})
        result = tree.run(env=clean_env(PIP_TARGET=os.path.join(tree.root, "site")))
        self.assertEqual(result.returncode, 67, result.stderr)
        fields = harness.failure_fields(tree.read("output", "failure"))
        self.assertEqual(fields["class"], "InstallRequirementsError:")
        self.assertIn("smlaunch-no-such-package==9.9.9", fields["message"])
        self.assertEqual(fields["command"], harness.PYTHON + " -m pip install -r requirements.txt")
        self.assertFalse(os.path.exists(tree.path("output", "data", "probe.json")), "the script must not run")

    def test_non_empty_code_dir_is_kept_with_a_warning(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": "raise SystemExit(4)\n"})
        os.makedirs(tree.path("code"))
        with open(tree.path("code", "train.py"), "w") as f:
            f.write(PROBE)
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("holds files smlaunch did not put there", result.stderr)

    def test_missing_program_gives_127(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "nope.py"}, code={"train.py": PROBE})
        result = tree.run()
        self.assertEqual(result.returncode, 127)
        fields = harness.failure_fields(tree.read("output", "failure"))
        self.assertIn("nope.py", fields["message"])

    def test_bad_config_names_file_and_key(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": PROBE})
        tree.write_config("resourceconfig.json", {"current_host": "algo-9", "hosts": ["algo-1"]})
        result = tree.run()
        self.assertEqual(result.returncode, 65)
        text = tree.read("output", "failure")
        fields = harness.failure_fields(text)
        self.assertEqual(fields["class"], "ConfigError:")
        self.assertIn("resourceconfig.json", fields["message"])
        self.assertIn("/hosts", fields["message"])
        self.assertIn("algo-9", fields["message"])
        self.assertIn("resourceconfig.json", result.stderr)

    def test_unresolvable_hosts_fail_clearly_within_the_timeout(self):
        hps = {"sagemaker_program": "train.py", "sagemaker_use_mpi": False}
        tree = Tree(self, hyperparameters=hps, hosts=("algo-1", "smlaunch-no-such-host.invalid"),
                    code={"train.py": PROBE})
        result = tree.run(env=clean_env(SMLAUNCH_DNS_TIMEOUT="1"), timeout=60)
        self.assertEqual(result.returncode, 68, result.stderr)
        self.assertIn("smlaunch-no-such-host.invalid", tree.read("output", "failure"))

    def test_the_train_link_dispatches_like_smlaunch_train(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"}, code={"train.py": PROBE})
        train = os.path.join(os.path.dirname(harness.SMLAUNCH), "train")
        env = clean_env(SAGEMAKER_BASE_DIR=tree.base, SMLAUNCH_PYTHON=harness.PYTHON)
        import subprocess
        result = subprocess.run([train], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_matches_reference(tree, tree.probe(), inherited=env)

    def test_the_binary_is_a_static_pie_that_still_resolves_host_names(self):
        """smlaunch is linked as a static PIE (cmake/StandardSettings.cmake): no dynamic loader
        to run at every start, still loaded at a random address; and its DNS wait still
        resolves names through /etc/hosts (glibc's `files` lookup is built in)."""
        if os.environ.get("SMLAUNCH_EXPECT_STATIC") != "ON":
            self.skipTest("not a static build (SMLAUNCH_STATIC_RUNTIME=OFF, or sanitizers)")
        with open(harness.SMLAUNCH, "rb") as f:
            header = f.read(64)
            self.assertEqual(header[:4], b"\x7fELF")
            e_type, = struct.unpack_from("<H", header, 16)
            e_phoff, = struct.unpack_from("<Q", header, 32)
            e_phentsize, e_phnum = struct.unpack_from("<HH", header, 54)
            f.seek(e_phoff)
            table = f.read(e_phentsize * e_phnum)
        segment_types = [struct.unpack_from("<I", table, i * e_phentsize)[0] for i in range(e_phnum)]
        self.assertEqual(e_type, 3, "ET_DYN: a position-independent executable")
        self.assertNotIn(3, segment_types, "a PT_INTERP segment: the binary asks for a dynamic loader")
        other = socket.gethostname()
        try:
            socket.getaddrinfo(other, None)
        except OSError:
            self.skipTest("this machine's own name (%s) does not resolve" % other)
        hps = {"sagemaker_program": "train.py", "sagemaker_use_mpi": False}
        tree = Tree(self, hyperparameters=hps, hosts=("localhost", other), current_host="localhost",
                    code={"train.py": PROBE})
        result = tree.run(env=clean_env(SMLAUNCH_DNS_TIMEOUT="20"), timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree.probe()["env"]["SM_HOSTS"], json.dumps(["localhost", other], separators=(",", ":")))


class TestChainerExample(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)
        try:
            import chainer  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("chainer is not installed in the test Python")

    def test_example_trains_and_saves_a_model(self):
        import subprocess
        import tempfile
        root = tempfile.mkdtemp(prefix="smlaunch-chainer-")
        self.addCleanup(lambda: __import__("shutil").rmtree(root, ignore_errors=True))
        example = os.path.join(harness.SOURCE_DIR, "examples", "chainer")
        subprocess.run([harness.PYTHON, os.path.join(example, "make_tree.py"), root, "--epochs", "3"],
                       check=True, capture_output=True)
        result = subprocess.run([harness.SMLAUNCH, "train", "--base-dir", root, "--python", harness.PYTHON],
                                env=clean_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        accuracy = float(result.stdout.strip().splitlines()[-1].split(":")[1])
        self.assertGreater(accuracy, 0.9)
        self.assertTrue(os.path.getsize(os.path.join(root, "model", "model.npz")) > 0)
        self.assertTrue(os.path.exists(os.path.join(root, "output", "success")))


if __name__ == "__main__":
    unittest.main()
