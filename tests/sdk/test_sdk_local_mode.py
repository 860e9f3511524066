"""The SageMaker Python SDK's local mode as a real client of the CPU image (issue 18).

Run by docker/ci.sh, with the image built, its private engine in DOCKER_HOST and the SDK
(sagemaker==2.257.6) in a test-only venv:
    SMLAUNCH_IMAGE=smlaunch-chainer:cpu .cache/sdk/bin/python -m unittest -v test_sdk_local_mode
Exactly as a user without AWS credentials runs it: `Chainer(..., instance_type='local',
image_uri=IMAGE)`, `fit` on one host and on two (ChainerMN over MPI between the SDK's
containers), a job that fails (the SDK raises; the failure file it copies back carries the
script's exception although the SDK's compose file gives the container a TTY), `deploy` +
`predict` with the Chainer predictor's NumPy serializers, `delete_endpoint`. The two SDK
settings such a user needs (README, "The SageMaker SDK's local mode"): telemetry off, and a
`code_location` that is never used (else `deploy` asks STS for a default bucket); and,
without credentials, AWS_EC2_METADATA_DISABLED=true (else boto3 probes EC2's metadata).

A socket guard wraps every connect of this process: only Unix sockets, loopback and the
engine's own bridge networks may be reached; anything else is refused and fails the suite.
"""
import ipaddress
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(REPO, "examples", "chainer")
IMAGE = os.environ.get("SMLAUNCH_IMAGE", "smlaunch-chainer:cpu")
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"   # never checked in local mode


class SocketGuard:
    """Refuses (and records) any connection that would leave this machine's loopback and
    the Docker engine's bridges."""

    def __init__(self):
        self.refused = []
        self._subnets = None
        self._connect = socket.socket.connect
        self._connect_ex = socket.socket.connect_ex
        guard = self

        def connect(sock, address):
            guard.check(sock, address)
            return guard._connect(sock, address)

        def connect_ex(sock, address):
            guard.check(sock, address)
            return guard._connect_ex(sock, address)

        socket.socket.connect = connect
        socket.socket.connect_ex = connect_ex

    def bridge_subnets(self, refresh=False):
        if self._subnets is None or refresh:
            ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True,
                                 timeout=30).stdout.split()
            subnets = []
            if ids:
                out = subprocess.run(["docker", "network", "inspect", *ids], capture_output=True, text=True,
                                     timeout=30).stdout
                for network in json.loads(out or "[]"):
                    for config in (network.get("IPAM") or {}).get("Config") or []:
                        if config.get("Subnet"):
                            subnets.append(ipaddress.ip_network(config["Subnet"]))
            self._subnets = subnets
        return self._subnets

    def check(self, sock, address):
        if sock.family == socket.AF_UNIX:
            return
        host = address[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = ipaddress.ip_address(socket.gethostbyname(host))
        if ip.is_loopback:
            return
        if any(ip in net for net in self.bridge_subnets()) or any(ip in net for net in self.bridge_subnets(True)):
            return
        self.refused.append("%s:%s" % (host, address[1]))
        raise OSError(101, "socket guard: %s is outside loopback and the Docker bridges" % host)


GUARD = SocketGuard()   # before boto3 and the SDK open anything
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Without credentials, boto3 would look for them in EC2's instance metadata (169.254.169.254).
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import numpy as np  # noqa: E402
from sagemaker.chainer import Chainer  # noqa: E402
from sagemaker.local import LocalSession  # noqa: E402

sys.path.insert(0, EXAMPLE)
import generate_data  # noqa: E402

WORK = tempfile.mkdtemp(prefix="smlaunch-sdk-", dir=os.environ.get("SMLAUNCH_SDK_WORK"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session():
    # The user's two settings: no telemetry (it calls STS and an S3 URL), local code.
    s = LocalSession(sagemaker_config={"SchemaVersion": "1.0",
                                       "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    s.config = {"local": {"local_code": True, "container_root": WORK, "serving_port": free_port()}}
    return s


def data():
    train, test = os.path.join(WORK, "data", "train"), os.path.join(WORK, "data", "test")
    if not os.path.exists(test):
        subprocess.run([sys.executable, os.path.join(EXAMPLE, "generate_data.py"), train, test,
                        "--samples", "2000"], check=True, capture_output=True, timeout=120)
    return {"train": "file://" + train, "test": "file://" + test}


def estimator(name, instance_count=1, **hyperparameters):
    output = os.path.join(WORK, name)
    os.makedirs(output, exist_ok=True)
    return Chainer(entry_point="train.py", source_dir=EXAMPLE, role=ROLE, image_uri=IMAGE,
                   instance_count=instance_count, instance_type="local", sagemaker_session=session(),
                   output_path="file://" + output, code_location="s3://unused-bucket/code",
                   hyperparameters=dict({"epochs": 1}, **hyperparameters),
                   environment={"PIP_NO_INDEX": "1"},
                   use_mpi=instance_count > 1, num_processes=instance_count if instance_count > 1 else None,
                   process_slots_per_host=1 if instance_count > 1 else None), output


def members(path):
    with tarfile.open(path) as t:
        return {m.name: (t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}


def only_file(folder, name):
    found = [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files if f == name]
    assert len(found) == 1, (folder, name, found)
    return found[0]


class TestSdkLocalMode(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(GUARD.refused, [], "connections that left loopback and the Docker bridges")

    def test_fit_on_one_host(self):
        est, output = estimator("one")
        est.fit(data(), wait=True, logs=False)
        model = members(only_file(output, "model.tar.gz"))
        self.assertIn("model.npz", model)
        self.assertIn("success", members(only_file(output, "output.tar.gz")))

    def test_fit_on_two_hosts_with_chainermn(self):
        est, output = estimator("two", instance_count=2)
        est.fit(data(), wait=True, logs=False)
        self.assertIn("model.npz", members(only_file(output, "model.tar.gz")))
        self.assertIn("success", members(only_file(output, "output.tar.gz")))

    def test_a_failing_job_raises_and_its_failure_file_names_the_exception(self):
        est, output = estimator("failing", **{"fail-on-rank": 0})
        raised = False
        try:
            est.fit(data(), wait=True, logs=False)
        except RuntimeError:
            raised = True
        latest = subprocess.run(["docker", "ps", "-a", "-l", "-q", "--filter", "ancestor=" + IMAGE],
                                capture_output=True, text=True, timeout=30).stdout.strip()
        status = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", latest],
                                capture_output=True, text=True, timeout=30).stdout.strip()
        self.assertEqual(status, "1", "the training container's exit status")
        if not raised:
            # docker-compose 1.29 reads a container's status right after its log stream ends
            # and can still find it running (then `up --abort-on-container-exit` exits 0 and
            # the SDK cannot know). Seen once in ~10 runs on a loaded machine.
            print("sdk: note: the container exited 1 but docker-compose 1.29 reported 0 (its race)")
        failure = members(only_file(output, "output.tar.gz")).get("failure")
        self.assertIsNotNone(failure, "no failure file in output.tar.gz")
        failure = failure.decode()
        self.assertIn("RuntimeError: rank 0 failed on purpose", failure)
        self.assertNotIn("wrote nothing", failure)

    def test_deploy_predict_and_delete(self):
        est, _ = estimator("served", epochs=2)
        est.fit(data(), wait=True, logs=False)
        predictor = est.deploy(initial_instance_count=1, instance_type="local")
        try:
            test = np.load(os.path.join(WORK, "data", "test", "test.npz"))
            x, y = test["x"][:100], test["y"][:100]
            scores = predictor.predict(x)     # the Chainer predictor: NumPy in, NumPy out
            self.assertEqual(scores.shape, (100, 10))
            accuracy = float((scores.argmax(axis=1) == y).mean())
            print("sdk: predicted 100 test rows, accuracy %.2f" % accuracy)
            self.assertGreater(accuracy, 0.5)
        finally:
            predictor.delete_endpoint()
        running = subprocess.run(["docker", "ps", "-q", "--filter", "ancestor=" + IMAGE],
                                 capture_output=True, text=True, timeout=30).stdout.split()
        self.assertEqual(running, [], "the endpoint's container outlived delete_endpoint")


if __name__ == "__main__":
    unittest.main()
