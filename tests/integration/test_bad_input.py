"""Issue 7: bad input never crashes, never hangs, never writes outside the tree, and
always ends with a documented exit code and a failure file that says what is wrong."""
import json
import os
import subprocess
import unittest

import harness
from harness import PROBE, Tree, clean_env

CONFIG = 65
STAGING = 66
NOT_FOUND = 127
NOT_EXECUTABLE = 126

GOOD_HPS = {"sagemaker_program": '"train.py"'}
GOOD_RC = {"current_host": "algo-1", "hosts": ["algo-1"]}
GOOD_IDC = {"train": {"TrainingInputMode": "File"}}


def raw(text):
    return text.encode() if isinstance(text, str) else text


class TestBadInput(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def run_case(self, files=None, hps=None, code=None, env=None, expect=CONFIG, mentions=(), args=()):
        """files: {config file name: bytes|str|obj|None (missing)}; hps: raw hyperparameters."""
        tree = Tree(self, raw_hyperparameters=dict(hps if hps is not None else GOOD_HPS),
                    code=code if code is not None else {"train.py": PROBE})
        for name, content in (files or {}).items():
            path = tree.path("input", "config", name)
            if content is None:
                os.remove(path)
            elif isinstance(content, (bytes, str)):
                with open(path, "wb") as f:
                    f.write(raw(content))
            else:
                with open(path, "w") as f:
                    json.dump(content, f)
        outside_before = set(os.listdir(tree.root))
        result = tree.run(args=args, env=env, timeout=60)
        self.assertEqual(result.returncode, expect, result.stderr[-3000:])
        self.assertLess(result.returncode, 128, "no death by signal")
        text = tree.read("output", "failure")
        fields = harness.failure_fields(text)
        self.assertEqual(fields["exit_code"], expect)
        for m in mentions:
            self.assertIn(m, fields["message"], text)
        # The first line names the class and the problem (the file and key for config errors).
        if expect in (CONFIG, STAGING):
            self.assertGreater(len(fields["first_line"]), len(fields["class"]) + 5, text)
            for m in mentions[:1]:
                self.assertIn(m, fields["first_line"], text)
        self.assertFalse(os.path.exists(tree.path("output", "success")))
        self.assertFalse(os.path.exists(tree.path("output", "data", "probe.json")), "the script must not run")
        self.assertEqual(set(os.listdir(tree.root)), outside_before, "nothing written beside the tree")
        return fields

    # --- each config file: missing, empty, not JSON, wrong type, truncated, huge, not UTF-8, NUL
    def test_config_files(self):
        for name in ("hyperparameters.json", "resourceconfig.json", "inputdataconfig.json"):
            cases = {
                "missing": (None, "missing"),
                "empty": ("", "empty"),
                "whitespace": ("  \n ", "empty"),
                "not json": ("hello", "not valid JSON"),
                "wrong type list": ("[1, 2]", "expected an object"),
                "wrong type string": ('"text"', "expected an object"),
                "wrong type number": ("42", "expected an object"),
                "truncated": ('{"a": ', "not valid JSON"),
                "not utf-8": (b'{"a": "\xff\xfe"}', "UTF-8"),
                "nul byte": (b'{"a": 1}\x00', "not valid JSON"),
                "bom": (b'\xef\xbb\xbf{}', "BOM"),
                "deep nesting": ("[" * 100000 + "]" * 100000, "Nesting"),
            }
            for label, (content, mention) in cases.items():
                with self.subTest(file=name, case=label):
                    self.run_case(files={name: content}, mentions=(name, mention))

    def test_a_100_mib_config_file(self):
        big = '{"x": "' + "a" * (100 * 1024 * 1024) + '"}'
        self.run_case(files={"hyperparameters.json": big}, mentions=("hyperparameters.json", "MiB limit"))

    # --- hosts
    def test_hosts(self):
        cases = {
            "empty hosts": ({"current_host": "algo-1", "hosts": []}, ("/hosts", "empty")),
            "current host missing from hosts": ({"current_host": "algo-9", "hosts": ["algo-1"]}, ("/hosts", "algo-9")),
            "duplicated host": ({"current_host": "algo-1", "hosts": ["algo-1", "algo-1"]}, ("/hosts/1", "twice")),
            "no current_host": ({"hosts": ["algo-1"]}, ("/current_host", "missing")),
            "no hosts": ({"current_host": "algo-1"}, ("/hosts", "missing")),
            "hosts not a list": ({"current_host": "algo-1", "hosts": "algo-1"}, ("/hosts", "list")),
            "host not a string": ({"current_host": "algo-1", "hosts": ["algo-1", 7]}, ("/hosts/1",)),
            "host with a space": ({"current_host": "algo-1", "hosts": ["algo-1", "a b"]}, ("/hosts/1", "valid host")),
            "host with a shell char": ({"current_host": "algo-1", "hosts": ["algo-1", "$(id)"]}, ("/hosts/1",)),
            "current_host a number": ({"current_host": 1, "hosts": ["algo-1"]}, ("/current_host",)),
            "instance group without hosts": ({"current_host": "algo-1", "hosts": ["algo-1"],
                                              "instance_groups": [{"instance_group_name": "g"}]},
                                             ("/instance_groups/0/hosts",)),
            "interface with a slash": ({"current_host": "algo-1", "hosts": ["algo-1"],
                                        "network_interface_name": "eth0/../x"}, ("/network_interface_name",)),
        }
        for label, (rc, mentions) in cases.items():
            with self.subTest(label):
                self.run_case(files={"resourceconfig.json": rc}, mentions=("resourceconfig.json",) + mentions)

    # --- channels
    def test_channel_names(self):
        for name, mention in (("a/b", "'/'"), ("..", "'..'"), (".", "'.'"), ("", "empty"), ("x\u0000y", "NUL"),
                              ("../../etc", "'/'")):
            with self.subTest(repr(name)):
                self.run_case(files={"inputdataconfig.json": {name: {}}}, mentions=("inputdataconfig.json", mention))

    # --- hyperparameter names and values
    def test_hyperparameter_names(self):
        for name, mention in (("", "empty"), ("a=b", "'='"), ("x\u0000", "NUL")):
            with self.subTest(repr(name)):
                self.run_case(hps=dict(GOOD_HPS, **{name: '"v"'}), mentions=("hyperparameters.json", mention))

    def test_a_nul_in_a_value_is_refused(self):
        self.run_case(hps=dict(GOOD_HPS, v='"a\\u0000b"'), mentions=("/v", "NUL"))

    def test_a_nul_inside_a_dict_value_is_refused(self):
        # str() of a dict escapes the NUL, but its argument "k=v,..." would carry it raw and
        # execve would cut the argument there: refused, naming the key.
        self.run_case(hps=dict(GOOD_HPS, d='{"k": "a\\u0000b", "z": 1}'), mentions=("/d", "NUL"))

    def test_a_value_nested_past_pythons_recursion_limit_is_refused(self):
        # The reference's json.loads raises RecursionError (its job fails); 600 levels decode.
        self.run_case(hps=dict(GOOD_HPS, deep="[" * 1000 + "]" * 1000), mentions=("/deep", "RecursionError"))
        tree = Tree(self, raw_hyperparameters=dict(GOOD_HPS, deep="[" * 600 + "]" * 600), code={"train.py": PROBE})
        result = tree.run(timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertEqual(json.loads(tree.probe()["env"]["SM_HPS"])["deep"], json.loads("[" * 600 + "]" * 600))

    def test_plan_prints_values_that_are_not_utf8(self):
        # An inherited variable may hold any bytes, and json.loads keeps a lone surrogate:
        # `plan` prints them ({"hex": ...}) instead of failing.
        tree = Tree(self, raw_hyperparameters=dict(GOOD_HPS, s='"\\ud800"'), code={"train.py": PROBE})
        env = clean_env()
        env_bytes = {k.encode(): v.encode() for k, v in env.items()}
        env_bytes[b"TEST_BYTES_VALUE"] = b"\xff\xfe"
        result = subprocess.run([harness.SMLAUNCH, "plan", "--base-dir", tree.base, "--python", harness.PYTHON],
                                env=env_bytes, capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        plan = json.loads(result.stdout)
        step = plan["steps"][-1]
        self.assertEqual(step["env"]["TEST_BYTES_VALUE"], {"hex": "fffe"})
        self.assertEqual(step["argv"][-1], {"hex": "eda080"})
        self.assertEqual(tree.run(timeout=60).returncode, 0, "train runs the same tree")

    def test_shell_metacharacters_reach_the_script_literally(self):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py", "a": "$(touch /tmp/smlaunch-pwned-1)",
                                           "b": "; rm -rf / #", "c": "`touch /tmp/smlaunch-pwned-2`", "d": "| cat"},
                    code={"train.py": PROBE})
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        argv = tree.probe()["argv"]
        self.assertEqual(argv[1:], ["-a", "$(touch /tmp/smlaunch-pwned-1)", "-b", "; rm -rf / #",
                                    "-c", "`touch /tmp/smlaunch-pwned-2`", "-d", "| cat"])
        self.assertFalse(os.path.exists("/tmp/smlaunch-pwned-1"))
        self.assertFalse(os.path.exists("/tmp/smlaunch-pwned-2"))

    # --- sagemaker_program
    def test_entry_points(self):
        cases = [
            ("missing", {}, None, CONFIG, ("sagemaker_program", "missing")),
            ("null", {"sagemaker_program": "null"}, None, CONFIG, ("sagemaker_program", "missing")),
            ("a number", {"sagemaker_program": "5"}, None, CONFIG, ("sagemaker_program", "integer")),
            ("a list", {"sagemaker_program": '["a"]'}, None, CONFIG, ("sagemaker_program", "list")),
            ("empty", {"sagemaker_program": '""'}, None, CONFIG, ("sagemaker_program", "empty")),
            ("absolute", {"sagemaker_program": '"/bin/true"'}, None, CONFIG, ("absolute",)),
            ("dotdot", {"sagemaker_program": '"../train.py"'}, None, CONFIG, ("'..'",)),
            ("a directory", {"sagemaker_program": '"lib"'}, {"train.py": PROBE, "lib/x.py": ""}, CONFIG,
             ("directory",)),
            ("missing file", {"sagemaker_program": '"nope.py"'}, None, NOT_FOUND, ("nope.py",)),
            ("not executable", {"sagemaker_program": '"run"'}, {"run": "\x7fELF garbage"}, NOT_EXECUTABLE, ()),
        ]
        for label, hps, code, expect, mentions in cases:
            with self.subTest(label):
                self.run_case(hps=hps, code=code, expect=expect, mentions=mentions)

    # --- MPI counts and options
    def test_mpi_counts_and_options(self):
        cases = [
            ("zero slots", {"sagemaker_process_slots_per_host": "0"}, ("sagemaker_process_slots_per_host",)),
            ("negative slots", {"sagemaker_process_slots_per_host": "-2"}, ("sagemaker_process_slots_per_host",)),
            ("absurd slots", {"sagemaker_process_slots_per_host": "100000000"}, ("1 to 1024",)),
            ("slots not a number", {"sagemaker_mpi_num_of_processes_per_host": '"many"'}, ("whole number",)),
            ("zero processes", {"sagemaker_num_processes": "0"}, ("sagemaker_num_processes",)),
            ("too many processes", {"sagemaker_num_processes": "5"}, ("sagemaker_num_processes", "1 to 1")),
            ("unbalanced quote", {"sagemaker_additional_mpi_options": '"-x \'A=b"'}, ("unbalanced",)),
            ("unbalanced double quote", {"sagemaker_mpi_custom_mpi_options": '"-x \\"A=b"'}, ("unbalanced",)),
            ("trailing backslash", {"sagemaker_mpi_custom_mpi_options": '"-x A\\\\"'}, ("backslash",)),
            # An option without its value would take smlaunch's rank step as its value, and
            # mpirun then failed on "rank", an executable it could not find.
            ("-x without its value", {"sagemaker_mpi_custom_mpi_options": '"-x"'},
             ("sagemaker_mpi_custom_mpi_options", '"-x"')),
            ("-mca with one value", {"sagemaker_additional_mpi_options": '"-x A=1 -mca btl_tcp_if_include"'},
             ("sagemaker_additional_mpi_options", '"-mca"', "2 words")),
            ("--NCCL_DEBUG without its level", {"sagemaker_mpi_custom_mpi_options": '"--NCCL_DEBUG"'},
             ("sagemaker_mpi_custom_mpi_options", '"--NCCL_DEBUG"')),
        ]
        for label, extra, mentions in cases:
            with self.subTest(label):
                self.run_case(hps=dict(GOOD_HPS, sagemaker_use_mpi="true", **extra), mentions=mentions)

    # --- where the code comes from
    def test_submit_directories(self):
        cases = [
            ("missing folder", '"/nonexistent/smlaunch/src"', ("/nonexistent/smlaunch/src", "does not exist")),
            ("missing file uri", '"file:///nonexistent/code.tar.gz"', ("does not exist",)),
            ("s3 without a key", '"s3://bucket-only"', ("s3://bucket/key",)),
        ]
        for label, value, mentions in cases:
            with self.subTest(label):
                self.run_case(hps=dict(GOOD_HPS, sagemaker_submit_directory=value), expect=STAGING, mentions=mentions)

    def test_a_corrupt_archive(self):
        tree_probe = Tree(self, raw_hyperparameters=GOOD_HPS)
        archive = os.path.join(tree_probe.root, "code.tar.gz")
        with open(archive, "wb") as f:
            f.write(b"\x1f\x8b\x08\x00 this is not really gzip")
        self.run_case(hps=dict(GOOD_HPS, sagemaker_submit_directory=json.dumps(archive)), expect=STAGING,
                      mentions=("code.tar.gz",))

    # --- the command line and its environment twins
    def test_bad_options_are_usage_errors(self):
        for args, env in ((["--grace-period", "soon"], None), (["--num-gpus", "-1"], None), (["--bogus"], None),
                          ([], {"SMLAUNCH_SSHD_PORT": "99999"}), ([], {"SMLAUNCH_LOG_LEVEL": "loud"})):
            with self.subTest(args=args, env=env):
                tree = Tree(self, raw_hyperparameters=GOOD_HPS, code={"train.py": PROBE})
                result = tree.run(args=args, env=clean_env(**(env or {})), timeout=30)
                self.assertEqual(result.returncode, 64, result.stderr)
                self.assertIn("smlaunch: error:", result.stderr)

    def test_a_missing_base_directory(self):
        result = subprocess.run([harness.SMLAUNCH, "train", "--base-dir", "/nonexistent/smlaunch/base"],
                                env=clean_env(), capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, CONFIG)
        self.assertIn("/nonexistent/smlaunch/base", result.stderr)
        self.assertFalse(os.path.exists("/nonexistent/smlaunch"))


if __name__ == "__main__":
    unittest.main()
