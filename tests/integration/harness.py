"""Helpers for the integration tests: fake /opt/ml trees and the real smlaunch binary."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import zipfile

SMLAUNCH = os.environ.get("SMLAUNCH_BIN", "")
PYTHON = os.environ.get("SMLAUNCH_TEST_PYTHON", sys.executable)
SOURCE_DIR = os.environ.get("SMLAUNCH_TEST_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

# Records what a script receives; every probe run leaves output/data/probe.json.
PROBE = r'''
import json, os, sys
out = os.path.join(os.environ.get("SM_OUTPUT_DATA_DIR", "/nonexistent"), "probe.json")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump({"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd(),
               "path0": sys.path[0]}, f)
'''


def sdk_encode(hyperparameters):
    """Encode hyperparameters as the SageMaker Python SDK does: each value as JSON text."""
    return {k: json.dumps(v) for k, v in hyperparameters.items()}


def clean_env(**extra):
    """A scrubbed environment: nothing of the machine's pip, SageMaker or smlaunch settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "SMLAUNCH_", "SAGEMAKER_", "SM_", "OMPI_", "PYTHON"))
           and k not in ("TRAINING_JOB_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "CURRENT_HOST")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1",
                "LANG": "C.UTF-8", "SMLAUNCH_DNS_TIMEOUT": "0"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Tree:
    """A fake SageMaker tree in a temporary directory."""

    def __init__(self, testcase, hyperparameters=None, hosts=("algo-1",), current_host=None,
                 channels=("train",), resource_extra=None, raw_hyperparameters=None, code=None):
        self.root = tempfile.mkdtemp(prefix="smlaunch-test-")
        testcase.addCleanup(self._cleanup, testcase)
        self.testcase = testcase
        self.base = os.path.join(self.root, "opt", "ml")
        self.src = os.path.join(self.root, "src")
        os.makedirs(os.path.join(self.base, "input", "config"))
        os.makedirs(self.src)
        hps = dict(raw_hyperparameters) if raw_hyperparameters is not None else sdk_encode(hyperparameters or {})
        hps.setdefault("sagemaker_submit_directory", json.dumps("file://" + self.src))
        rc = {"current_host": current_host or hosts[0], "hosts": list(hosts)}
        rc.update(resource_extra or {})
        self.write_config("hyperparameters.json", hps)
        self.write_config("resourceconfig.json", rc)
        self.write_config("inputdataconfig.json", {c: {"TrainingInputMode": "File"} for c in channels})
        for c in channels:
            os.makedirs(os.path.join(self.base, "input", "data", c), exist_ok=True)
        for name, text in (code or {}).items():
            self.add_code(name, text)

    def _cleanup(self, testcase):
        # Keep the tree of a failed test for inspection.
        outcome = getattr(testcase, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        if not failed:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print("kept test tree:", self.root, file=sys.stderr)

    def write_config(self, name, obj):
        with open(os.path.join(self.base, "input", "config", name), "w") as f:
            if isinstance(obj, (bytes, str)):
                f.write(obj if isinstance(obj, str) else obj.decode("latin-1"))
            else:
                json.dump(obj, f)

    def add_code(self, name, text, mode=0o644):
        path = os.path.join(self.src, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def read(self, *parts):
        with open(self.path(*parts)) as f:
            return f.read()

    def probe(self):
        with open(self.path("output", "data", "probe.json")) as f:
            return json.load(f)

    def run(self, command="train", args=(), env=None, timeout=120, time_rss=False, **kwargs):
        """Run smlaunch on this tree; returns a CompletedProcess with text output.
        time_rss: under /usr/bin/time, whose peak RSS line peak_rss_kib() reads."""
        environment = env if env is not None else clean_env()
        argv = [SMLAUNCH, command, "--base-dir", self.base, "--python", PYTHON, *args]
        if time_rss:
            argv = ["/usr/bin/time", "-f", "maxrss_kib=%M"] + argv
        return subprocess.run(argv, env=environment, capture_output=True, timeout=timeout,
                              text=True, errors="replace", **kwargs)


def peak_rss_kib(result):
    """The peak RSS of a Tree.run(time_rss=True), in KiB."""
    return int(re.search(r"maxrss_kib=(\d+)", result.stderr).group(1))


def rss_limit_kib(mib):
    """A memory bound of `mib` MiB for smlaunch, three times that under AddressSanitizer
    (its shadow and redzones: 591 MB seen where 228 MB without)."""
    asan = "libasan" in subprocess.run(["ldd", SMLAUNCH], capture_output=True, text=True).stdout
    return mib * 1024 * (3 if asan else 1)


def build_wheel(directory, name, version="1.0", module_text="VALUE = 42\n"):
    """Write a minimal pure-Python wheel by hand (no build tools, no index)."""
    os.makedirs(directory, exist_ok=True)
    dist = "%s-%s.dist-info" % (name, version)
    path = os.path.join(directory, "%s-%s-py3-none-any.whl" % (name, version))
    files = {
        "%s/__init__.py" % name: module_text,
        "%s/METADATA" % dist: "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version),
        "%s/WHEEL" % dist: "Wheel-Version: 1.0\nGenerator: smlaunch-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join("%s,,\n" % f for f in files) + "%s/RECORD,,\n" % dist
    with zipfile.ZipFile(path, "w") as z:
        for f, text in files.items():
            z.writestr(f, text)
        z.writestr("%s/RECORD" % dist, record)
    return path


def alive(pid):
    """True while pid is a process that is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cpu_flags():
    """The flags of /proc/cpuinfo's first processor."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def expected_openblas_core():
    """OPENBLAS_CORETYPE as smlaunch sets it on this CPU (env/blas_core.hpp), None where it
    leaves it unset; stated here from the CPU's flags, not taken from the code under test."""
    flags = cpu_flags()
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def require_binary(testcase):
    if not SMLAUNCH or not os.access(SMLAUNCH, os.X_OK):
        raise unittest.SkipTest("SMLAUNCH_BIN is not set to the smlaunch binary")


def failure_fields(text):
    """Split output/failure into its CONTRACT fields."""
    lines = text.split("\n")
    # "ConfigError: <file>: key ...": smlaunch's own classes say what is wrong on line 1 too.
    fields = {"class": lines[0].split(" ", 1)[0], "first_line": lines[0]}
    assert lines[1].startswith("ExitCode "), text
    fields["exit_code"] = int(lines[1].split(" ", 1)[1])
    rest = "\n".join(lines[2:])
    assert rest.startswith('ErrorMessage "'), text
    msg_end = rest.rfind('"\nCommand "')
    fields["message"] = rest[len('ErrorMessage "'):msg_end]
    fields["command"] = rest[msg_end + len('"\nCommand "'):].rstrip("\n").rstrip('"')
    return fields
