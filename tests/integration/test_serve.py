"""`smlaunch serve`: real HTTP over loopback against the real binary, real Python workers
and (for the Chainer example) real Chainer. Every wait is bounded."""
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest

import harness

try:
    import numpy as np
except ImportError:  # pragma: no cover - the project's venv has it
    np = None

EXAMPLE_DIR = os.path.join(harness.SOURCE_DIR, "examples", "chainer")

# A plain numpy "model": model_fn records each call (pid) so tests can count them; the
# request's first value steers test behaviour (sleep, raise, report the pid).
NUMPY_MODULE = r'''
import os, time
import numpy as np

def model_fn(model_dir):
    with open(os.path.join(os.environ["SERVE_TEST_LOG"], "model_fn.log"), "a") as f:
        f.write("%d %s\n" % (os.getpid(), model_dir))
    scale = float(open(os.path.join(model_dir, "scale.txt")).read())
    return lambda x: np.asarray(x) * scale
'''

STEERED_MODULE = NUMPY_MODULE + r'''
class Boom(ValueError):
    pass

def predict_fn(data, model):
    first = float(np.asarray(data).ravel()[0]) if np.asarray(data).size else 0.0
    if first == -1:
        raise Boom("negative one is not allowed")
    if first == -2:
        with open(os.path.join(os.environ["SERVE_TEST_LOG"], "busy.pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(30)
    if first == -3:
        time.sleep(0.8)
    return model(data)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path):
    with open(path) as f:
        return f.read()


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class Server:
    """One `smlaunch serve` on a free port; stopped (SIGTERM, bounded) at cleanup."""

    def __init__(self, testcase, code, program="inference.py", model_files=None, model_data=None, env=None,
                 args=(), wait=True, binary=None):
        self.testcase = testcase
        self.root = tempfile.mkdtemp(prefix="smlaunch-serve-")
        self.base = os.path.join(self.root, "base")
        self.src = os.path.join(self.root, "src")
        self.log_dir = os.path.join(self.root, "log")
        os.makedirs(self.src)
        os.makedirs(self.log_dir)
        if isinstance(code, str):
            self.src = code  # a folder of its own (the Chainer example)
        else:
            for name, text in code.items():
                with open(os.path.join(self.src, name), "w") as f:
                    f.write(text)
        if model_files is not None:
            os.makedirs(os.path.join(self.base, "model"))
            for name, data in model_files.items():
                with open(os.path.join(self.base, "model", name), "wb") as f:
                    f.write(data if isinstance(data, bytes) else data.encode())
        self.port = free_port()
        environment = harness.clean_env(SAGEMAKER_PROGRAM=program, SAGEMAKER_SUBMIT_DIRECTORY=self.src,
                                        SAGEMAKER_BIND_TO_PORT=self.port, SAGEMAKER_MODEL_SERVER_WORKERS=2,
                                        SERVE_TEST_LOG=self.log_dir)
        environment.update({k: str(v) for k, v in (env or {}).items()})
        argv = [binary or harness.SMLAUNCH, *([] if binary else ["serve"]), "--base-dir", self.base,
                "--python", harness.PYTHON, "--bind-address", "127.0.0.1", *args]
        if model_data:
            argv += ["--model-data", model_data]
        self.stderr_path = os.path.join(self.root, "stderr.txt")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, env=environment, stdout=self.stderr, stderr=subprocess.STDOUT)
        testcase.addCleanup(self.close)
        if wait:
            self.wait_ready()

    def output(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.testcase.fail("serve exited with %s before it was ready:\n%s" % (self.proc.returncode, self.output()))
            try:
                status, _, _ = self.request("GET", "/ping", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.testcase.fail("serve was not ready within %d s:\n%s" % (timeout, self.output()))

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def invoke(self, body, content_type=None, accept=None, timeout=30):
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body, headers, timeout)

    def model_fn_calls(self):
        path = os.path.join(self.log_dir, "model_fn.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line.split()[0] for line in f if line.strip()]

    def wait_model_fn_calls(self, count, timeout=60):
        """Wait until model_fn has run `count` times (/ping answers once one worker is ready)."""
        deadline = time.monotonic() + timeout
        while len(self.model_fn_calls()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.model_fn_calls()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.testcase.fail("serve did not stop within %d s after %s" % (timeout, sig))

    def close(self):
        if self.proc.poll() is None:
            # SIGTERM first: the server's end-of-life sweep ends what user code left (a child
            # forked by a worker that was then killed is the server's, as subreaper).
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        subprocess.run(["rm", "-rf", self.root])


def require_numpy(testcase):
    harness.require_binary(testcase)
    if np is None:
        raise unittest.SkipTest("numpy is not importable by the test Python")


class NumpyModelTest(unittest.TestCase):
    """One server (2 workers) with a plain numpy callable, shared by the read-only checks."""

    @classmethod
    def setUpClass(cls):
        require_numpy(cls)
        cls._holder = unittest.TestCase()
        cls.server = Server(cls._holder, {"inference.py": NUMPY_MODULE}, model_files={"scale.txt": "2"})

    @classmethod
    def tearDownClass(cls):
        cls._holder.doCleanups()

    def test_ping(self):
        status, headers, body = self.server.request("GET", "/ping")
        self.assertEqual((status, body), (200, b""))
        status, _, body = self.server.request("HEAD", "/ping")
        self.assertEqual((status, body), (200, b""))

    def test_json_in_json_out(self):
        status, headers, body = self.server.invoke(json.dumps([[1, 2], [3, 4.5]]), "application/json", "application/json")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), [[2.0, 4.0], [6.0, 9.0]])

    def test_json_strings_become_float32(self):
        # As the reference: np.array(json.loads(s)).astype(float32) turns "42" into 42.0.
        status, _, body = self.server.invoke('["42","6","9"]', "application/json", "application/x-npy")
        self.assertEqual(status, 200, body)
        array = np.load(io.BytesIO(body))
        self.assertEqual(array.dtype, np.float32)
        self.assertEqual(array.tolist(), [84.0, 12.0, 18.0])

    def test_csv_in_csv_out(self):
        status, headers, body = self.server.invoke("1,2\n3,4\n", "text/csv", "text/csv")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "text/csv")
        self.assertEqual(body, b"2.0,4.0\n6.0,8.0\n")

    def test_csv_one_column_is_one_value_per_line(self):
        status, _, body = self.server.invoke("42\n6\n9\n", "text/csv", "text/csv")
        self.assertEqual((status, body), (200, b"84.0\n12.0\n18.0\n"))

    def test_npy_keeps_its_dtype(self):
        array = np.arange(6, dtype=np.int64).reshape(2, 3)
        status, headers, body = self.server.invoke(npy_bytes(array), "application/x-npy", "application/x-npy")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/x-npy")
        result = np.load(io.BytesIO(body))
        self.assertEqual(result.dtype, np.float64)  # int64 * 2.0 (float): numpy's rules, not a cast
        self.assertEqual(result.tolist(), (array * 2.0).tolist())
        status, _, body = self.server.invoke(npy_bytes(np.ones(3, dtype=np.float16)), "application/x-npy", "application/x-npy")
        self.assertEqual(np.load(io.BytesIO(body)).dtype, np.float16)
        # The answer is byte for byte what np.save writes (the fast encoder's contract).
        for array in (np.arange(12, dtype=np.float32).reshape(3, 4), np.asfortranarray(np.ones((2, 5))), np.float32(7)):
            status, _, body = self.server.invoke(npy_bytes(array), "application/x-npy", "application/x-npy")
            self.assertEqual(body, npy_bytes(array * 2))

    def test_every_content_type_to_every_accept(self):
        data = [[1.0, 2.0], [3.0, 4.0]]
        bodies = {"application/json": json.dumps(data), "text/csv": "1,2\n3,4", "application/x-npy": npy_bytes(np.array(data, dtype=np.float32))}
        for content_type, body in bodies.items():
            for accept in bodies:
                with self.subTest(content_type=content_type, accept=accept):
                    status, headers, out = self.server.invoke(body, content_type, accept)
                    self.assertEqual(status, 200, out)
                    self.assertEqual(headers["Content-Type"], accept)
                    if accept == "application/json":
                        self.assertEqual(json.loads(out), [[2.0, 4.0], [6.0, 8.0]])
                    elif accept == "text/csv":
                        self.assertEqual(out, b"2.0,4.0\n6.0,8.0\n")
                    else:
                        self.assertEqual(np.load(io.BytesIO(out)).tolist(), [[2.0, 4.0], [6.0, 8.0]])

    def test_sagemaker_content_type_header_wins(self):
        status, headers, body = self.server.request("POST", "/invocations", "1,2", {"ContentType": "text/csv", "Content-Type": "application/json", "Accept": "text/csv"})
        self.assertEqual((status, body), (200, b"2.0\n4.0\n"))

    def test_no_content_type_is_json_and_no_accept_is_the_default(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        conn.putrequest("POST", "/invocations", skip_accept_encoding=True)
        conn.putheader("Content-Length", "3")
        conn.endheaders(b"[1]")
        response = conn.getresponse()
        self.assertEqual((response.status, response.getheader("Content-Type"), response.read()), (200, "application/json", b"[2.0]"))
        conn.close()
        status, headers, body = self.server.invoke("[1]", "application/json", "*/*")
        self.assertEqual((status, headers["Content-Type"], body), (200, "application/json", b"[2.0]"))

    def test_media_type_parameters_and_accept_lists(self):
        status, headers, body = self.server.invoke("[1]", "application/json; charset=utf-8", "text/html, text/csv;q=0.5, application/x-npy;q=0.9")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/x-npy")

    def test_415_unsupported_content_type(self):
        status, headers, body = self.server.invoke(b"\x00", "image/png", "application/json")
        self.assertEqual(status, 415, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        error = json.loads(body)
        self.assertEqual(error["error"], "UnsupportedContentType")
        self.assertIn("image/png", error["message"])

    def test_406_unsupported_accept(self):
        status, _, body = self.server.invoke("[1]", "application/json", "image/png")
        self.assertEqual(status, 406, body)
        error = json.loads(body)
        self.assertEqual(error["error"], "UnsupportedAccept")
        self.assertIn("image/png", error["message"])

    def test_400_undecodable_bodies(self):
        for content_type, body in (("application/json", "[1, 2"), ("application/x-npy", b"not npy")):
            with self.subTest(content_type=content_type):
                status, _, out = self.server.invoke(body, content_type)
                self.assertEqual(status, 400, out)
                self.assertEqual(json.loads(out)["error"], "BadRequest")

    def test_npy_with_python_objects_is_refused(self):
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        status, _, out = self.server.invoke(buffer.getvalue(), "application/x-npy")
        self.assertEqual(status, 400, out)

    def test_404_and_405(self):
        status, headers, body = self.server.request("GET", "/models")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body)["error"], "NotFound")
        status, headers, body = self.server.request("GET", "/invocations")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "POST")

    def test_keep_alive_connection_serves_many_requests(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        for i in range(50):
            conn.request("POST", "/invocations", body=json.dumps([i]), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            self.assertEqual((response.status, json.loads(response.read())), (200, [2.0 * i]))
        conn.close()

    def test_chunked_body(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        chunks = [b"[[1, 2],", b" [3, 4]", b"]"]
        conn.request("POST", "/invocations", body=iter(chunks), encode_chunked=True,
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        self.assertEqual((response.status, json.loads(response.read())), (200, [[2.0, 4.0], [6.0, 8.0]]))
        # The connection stays usable for a request with a length.
        conn.request("POST", "/invocations", body="[5]", headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        self.assertEqual((response.status, response.read()), (200, b"[10.0]"))
        conn.close()

    def test_body_over_the_limit_is_413_without_reading_it(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(2 << 30))
        conn.endheaders()
        response = conn.getresponse()
        self.assertEqual(response.status, 413)
        self.assertEqual(json.loads(response.read())["error"], "PayloadTooLarge")
        conn.close()

    def test_curl(self):
        out = subprocess.run(["curl", "-sS", "--max-time", "30", "-H", "Content-Type: text/csv", "-H", "Accept: application/json",
                              "--data-binary", "1,2,3", "http://127.0.0.1:%d/invocations" % self.server.port],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout), [2.0, 4.0, 6.0])

    def test_sagemaker_predictor_style_npy_client(self):
        # What sagemaker.predictor.Predictor with NumpySerializer/NumpyDeserializer sends:
        # np.save'd bytes, Content-Type and Accept application/x-npy; np.load on the answer.
        data = np.random.RandomState(0).rand(4, 8).astype(np.float32)
        buffer = io.BytesIO()
        np.save(buffer, data)
        status, headers, body = self.server.request("POST", "/invocations", buffer.getvalue(),
                                                    {"Content-type": "application/x-npy", "Accept": "application/x-npy"})
        self.assertEqual(status, 200, body)
        np.testing.assert_array_equal(np.load(io.BytesIO(body), allow_pickle=True), data * 2)

    def test_64_concurrent_clients(self):
        errors = []
        results = {}

        def client(n):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
                for i in range(5):
                    value = n * 100 + i
                    conn.request("POST", "/invocations", body=npy_bytes(np.array([value], dtype=np.int64)),
                                 headers={"Content-Type": "application/x-npy", "Accept": "application/json"})
                    response = conn.getresponse()
                    results[(n, i)] = (response.status, json.loads(response.read()))
                conn.close()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 320)
        for (n, i), (status, value) in results.items():
            self.assertEqual((status, value), (200, [2.0 * (n * 100 + i)]))

    def test_100_mib_body(self):
        array = np.arange(100 * 1024 * 1024 // 4, dtype=np.float32)
        body = npy_bytes(array)
        self.assertGreaterEqual(len(body), 100 * 1024 * 1024)
        status, headers, out = self.server.invoke(body, "application/x-npy", "application/x-npy", timeout=120)
        self.assertEqual(status, 200, out[:300])
        result = np.load(io.BytesIO(out))
        self.assertEqual(result.shape, array.shape)
        self.assertEqual(float(result[-1]), float(array[-1]) * 2)
        # curl sends Expect: 100-continue for a body this size: answered, not waited out.
        path = os.path.join(self.server.root, "big.npy")
        with open(path, "wb") as f:
            f.write(body)
        started = time.monotonic()
        out = subprocess.run(["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                              "-H", "Content-Type: application/x-npy", "-H", "Accept: application/x-npy",
                              "--data-binary", "@" + path, "http://127.0.0.1:%d/invocations" % self.server.port],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split()[0], "200")
        self.assertEqual(int(out.stdout.split()[1]), len(body))
        del started

    def test_model_fn_once_per_worker(self):
        self.server.wait_model_fn_calls(2)
        for i in range(40):
            self.assertEqual(self.server.invoke(json.dumps([i]), "application/json")[0], 200)
        calls = self.server.model_fn_calls()
        self.assertEqual(len(calls), 2, calls)
        self.assertEqual(len(set(calls)), 2, calls)


THREADS_MODULE = r'''
import json, os

def model_fn(model_dir):
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    path = os.path.join(os.environ["SERVE_TEST_LOG"], "threads-%d.json" % os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump({n: os.environ.get(n) for n in names + ("OPENBLAS_CORETYPE",)}, f)
    os.rename(path + ".tmp", path)  # whole, once listed
    return lambda x: x
'''


class ThreadBudgetTest(unittest.TestCase):
    """Issue 13: several workers share the CPUs (cpus / workers threads each); one worker
    keeps every core; a value the user set is never replaced."""

    def setUp(self):
        require_numpy(self)

    def worker_threads(self, workers, env=None):
        server = Server(self, {"inference.py": THREADS_MODULE}, model_files={},
                        env=dict(env or {}, SAGEMAKER_MODEL_SERVER_WORKERS=workers))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [n for n in os.listdir(server.log_dir) if n.startswith("threads-") and n.endswith(".json")]
            if len(found) == workers:
                break
            time.sleep(0.02)
        seen = [json.loads(read(os.path.join(server.log_dir, n))) for n in sorted(found)]
        self.assertEqual(len(seen), workers, seen)
        self.assertEqual(server.stop(), 0, server.output())
        # Every worker runs OpenBLAS's kernels for this CPU (env/blas_core.hpp), or the user's.
        core = (env or {}).get("OPENBLAS_CORETYPE", harness.expected_openblas_core())
        self.assertEqual([w.pop("OPENBLAS_CORETYPE") for w in seen], [core] * workers)
        return seen, server.output()

    def test_each_of_several_workers_gets_its_share(self):
        share = str(max(1, os.cpu_count() // 2))
        seen, output = self.worker_threads(2)
        for worker in seen:
            self.assertEqual(worker, {"OMP_NUM_THREADS": share, "OPENBLAS_NUM_THREADS": share,
                                      "MKL_NUM_THREADS": share})
        self.assertIn("thread budget: OMP_NUM_THREADS=%s (%s = %d cpus / 2 workers)" % (share, share, os.cpu_count()),
                      output)

    def test_the_users_value_is_kept(self):
        share = str(max(1, os.cpu_count() // 2))
        seen, output = self.worker_threads(2, {"OPENBLAS_NUM_THREADS": "7"})
        for worker in seen:
            self.assertEqual(worker, {"OMP_NUM_THREADS": share, "OPENBLAS_NUM_THREADS": "7", "MKL_NUM_THREADS": share})
        self.assertIn("thread budget: OPENBLAS_NUM_THREADS=7 (user)", output)

    def test_the_users_openblas_core_type_is_kept(self):
        _, output = self.worker_threads(2, {"OPENBLAS_CORETYPE": "Sandybridge"})
        self.assertIn("OPENBLAS_CORETYPE=Sandybridge (set by the user)", output)

    def test_one_worker_keeps_every_core(self):
        seen, _ = self.worker_threads(1)
        self.assertEqual(seen, [{"OMP_NUM_THREADS": None, "OPENBLAS_NUM_THREADS": None, "MKL_NUM_THREADS": None}])


class ChainerModelTest(unittest.TestCase):
    """The Chainer example's model.npz, packed as model.tar.gz, served by the default
    predict_fn with real Chainer through the example's own model_fn."""

    def test_example_model_through_default_predict_fn(self):
        require_numpy(self)
        try:
            import chainer  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("chainer is not importable by the test Python")
        work = tempfile.mkdtemp(prefix="smlaunch-serve-chainer-")
        self.addCleanup(subprocess.run, ["rm", "-rf", work])
        # Build and save the example's MLP, and compute the expected answers with it.
        x = np.random.RandomState(1).rand(5, 12).astype(np.float32)
        np.save(os.path.join(work, "x.npy"), x)
        script = r'''
import sys, numpy as np, chainer
sys.path.insert(0, sys.argv[1])
from train import MLP, model_fn
model = MLP(16, 3)
x = np.load(sys.argv[2] + "/x.npy")
with chainer.using_config("train", False), chainer.no_backprop_mode():
    model(x)
chainer.serializers.save_npz(sys.argv[2] + "/model.npz", model)
loaded = model_fn(sys.argv[2])
with chainer.using_config("train", False), chainer.no_backprop_mode():
    np.save(sys.argv[2] + "/expected.npy", loaded(x).array)
'''
        done = subprocess.run([harness.PYTHON, "-c", script, EXAMPLE_DIR, work], capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        expected = np.load(os.path.join(work, "expected.npy"))
        model_tar = os.path.join(work, "model.tar.gz")
        with tarfile.open(model_tar, "w:gz") as tar:
            tar.add(os.path.join(work, "model.npz"), arcname="model.npz")

        server = Server(self, EXAMPLE_DIR, program="train.py", model_data=model_tar, env={"SAGEMAKER_MODEL_SERVER_WORKERS": 1})
        self.assertTrue(os.path.exists(os.path.join(server.base, "model", "model.npz")))
        status, headers, body = server.invoke(npy_bytes(x), "application/x-npy", "application/x-npy")
        self.assertEqual(status, 200, body)
        # The workers run this CPU's OpenBLAS kernels (OPENBLAS_CORETYPE), the expected values
        # OpenBLAS's own choice: float32 sums in another order differ in the last bits, which
        # rtol alone rejects for an output near zero (2.98e-08 off 0.0016 failed once).
        np.testing.assert_allclose(np.load(io.BytesIO(body)), expected, rtol=1e-5, atol=1e-6)
        status, _, body = server.invoke(json.dumps(x.tolist()), "application/json", "application/json")
        self.assertEqual(status, 200, body)
        np.testing.assert_allclose(np.array(json.loads(body)), expected, rtol=1e-5, atol=1e-6)
        # Chainer was imported by the user's module, not by smlaunch for a non-Chainer model.
        self.assertEqual(server.stop(), 0)


class FailureTest(unittest.TestCase):
    """Errors in user code, timeouts, dead workers, draining."""

    def setUp(self):
        require_numpy(self)

    def steered(self, **env):
        environment = {"SAGEMAKER_MODEL_SERVER_TIMEOUT": 5}
        environment.update(env)
        return Server(self, {"inference.py": STEERED_MODULE}, model_files={"scale.txt": "3"}, env=environment)

    def test_user_exception_is_500_naming_it(self):
        server = self.steered()
        status, headers, body = server.invoke("[-1]", "application/json")
        self.assertEqual(status, 500, body)
        error = json.loads(body)
        self.assertEqual(error["error"], "Boom")
        self.assertEqual(error["message"], "negative one is not allowed")
        self.assertEqual(error["function"], "predict_fn")
        self.assertIn("Traceback", server.output())
        # The worker survives its user's exception: no worker loads the model again.
        self.assertEqual(len(server.wait_model_fn_calls(2)), 2)
        self.assertEqual(server.invoke("[1]", "application/json")[2], b"[3.0]")
        self.assertEqual(server.invoke("[-1]", "application/json")[0], 500)
        self.assertEqual(server.invoke("[1]", "application/json")[2], b"[3.0]")
        self.assertEqual(len(server.model_fn_calls()), 2)

    def test_timeout_is_504_and_the_worker_is_replaced(self):
        server = self.steered(SAGEMAKER_MODEL_SERVER_TIMEOUT=1, SAGEMAKER_MODEL_SERVER_WORKERS=1)
        started = time.monotonic()
        status, _, body = server.invoke("[-2]", "application/json", timeout=30)
        self.assertEqual(status, 504, body)
        self.assertLess(time.monotonic() - started, 20)
        self.assertEqual(json.loads(body)["error"], "Timeout")
        busy = int(read(os.path.join(server.log_dir, "busy.pid")))
        deadline = time.monotonic() + 20
        while os.path.exists("/proc/%d" % busy) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists("/proc/%d" % busy), "the timed-out worker is still running")
        server.wait_ready()
        status, _, body = server.invoke("[1]", "application/json")
        self.assertEqual((status, body), (200, b"[3.0]"))
        calls = server.model_fn_calls()
        self.assertEqual(len(calls), 2, calls)  # the replacement loaded the model once
        self.assertNotIn(str(busy), calls[1:])

    def test_worker_killed_mid_request_is_500_and_restarted(self):
        server = self.steered(SAGEMAKER_MODEL_SERVER_TIMEOUT=60, SAGEMAKER_MODEL_SERVER_WORKERS=1)
        result = {}
        thread = threading.Thread(target=lambda: result.update(r=server.invoke("[-2]", "application/json", timeout=60)))
        thread.start()
        pid_file = os.path.join(server.log_dir, "busy.pid")
        deadline = time.monotonic() + 30
        while not os.path.exists(pid_file) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)
        os.kill(int(read(pid_file)), signal.SIGKILL)
        thread.join(60)
        status, _, body = result["r"]
        self.assertEqual(status, 500, body)
        self.assertEqual(json.loads(body)["error"], "WorkerDied")
        server.wait_ready()
        self.assertEqual(server.invoke("[2]", "application/json")[:3:2], (200, b"[6.0]"))
        self.assertEqual(len(server.model_fn_calls()), 2)

    def test_sigterm_drains_requests_in_flight(self):
        server = self.steered(SAGEMAKER_MODEL_SERVER_WORKERS=2)
        results = []
        threads = [threading.Thread(target=lambda: results.append(server.invoke("[-3]", "application/json", timeout=60)))
                   for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)  # all four sent; two are running, two are queued
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        self.assertEqual([r[0] for r in results], [200] * 4, results)
        self.assertEqual(sorted(r[2] for r in results), [b"[-9.0]"] * 4)
        self.assertEqual(server.proc.wait(timeout=30), 0, server.output())
        with self.assertRaises(OSError):
            server.request("GET", "/ping", timeout=5)

    def test_orphans_of_user_code_are_reaped(self):
        code = NUMPY_MODULE + r'''
import subprocess
def predict_fn(data, model):
    # The sleep outlives its shell: an orphan, reparented to smlaunch (the subreaper).
    subprocess.run(["sh", "-c", "sleep 0.2 &"], check=True)
    return model(data)
'''
        server = Server(self, {"inference.py": code}, model_files={"scale.txt": "1"}, env={"SAGEMAKER_MODEL_SERVER_WORKERS": 1})
        for _ in range(3):
            self.assertEqual(server.invoke("[1]", "application/json")[0], 200)

        def zombies():
            found = []
            for pid in os.listdir("/proc"):
                try:
                    with open("/proc/%s/stat" % pid) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if pid.isdigit() and fields[0] == "Z" and int(fields[1]) == server.proc.pid:
                    found.append(pid)
            return found

        deadline = time.monotonic() + 10
        time.sleep(0.5)
        while zombies() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(zombies(), [])

    def test_sigterm_when_idle_stops_at_once(self):
        server = self.steered()
        started = time.monotonic()
        self.assertEqual(server.stop(), 0)
        self.assertLess(time.monotonic() - started, 15)


class StartupErrorTest(unittest.TestCase):
    """Bad set-ups end with a documented exit code and a message naming the problem."""

    def setUp(self):
        harness.require_binary(self)

    def run_to_end(self, code, env=None, args=(), program="inference.py", model_files=None, timeout=120):
        server = Server(self, code, program=program, env=env, args=args, wait=False,
                        model_files=model_files if model_files is not None else {"scale.txt": "1"})
        try:
            server.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("serve did not exit within %d s:\n%s" % (timeout, server.output()))
        return server.proc.returncode, server.output()

    def test_model_fn_raising(self):
        code, out = self.run_to_end({"inference.py": "def model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n"})
        self.assertEqual(code, 69, out)
        self.assertIn("ModelLoadError", out)
        self.assertIn("RuntimeError: weights are corrupt", out)

    def test_model_fn_that_never_returns(self):
        started = time.monotonic()
        code, out = self.run_to_end({"inference.py": "import time\ndef model_fn(model_dir):\n    time.sleep(60)\n"},
                                    env={"SMLAUNCH_MODEL_LOAD_TIMEOUT": "1"})
        self.assertEqual(code, 69, out)
        self.assertIn("did not load the model within 1 s", out)
        self.assertLess(time.monotonic() - started, 30)

    def test_module_without_model_fn(self):
        code, out = self.run_to_end({"inference.py": "x = 1\n"})
        self.assertEqual(code, 69, out)
        self.assertIn("defines no model_fn", out)

    def test_module_that_does_not_import(self):
        code, out = self.run_to_end({"inference.py": "import no_such_module_here\n"})
        self.assertEqual(code, 69, out)
        self.assertIn("No module named 'no_such_module_here'", out)
        code, out = self.run_to_end({"inference.py": NUMPY_MODULE}, program="missing.py")
        self.assertEqual(code, 69, out)
        self.assertIn("No module named 'missing'", out)

    def test_no_program(self):
        code, out = self.run_to_end({"inference.py": NUMPY_MODULE}, program="")
        self.assertEqual(code, 64, out)
        self.assertIn("SAGEMAKER_PROGRAM", out)

    def test_bad_environment_values(self):
        for name, value in (("SAGEMAKER_MODEL_SERVER_WORKERS", "two"), ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"),
                            ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "-1"), ("SAGEMAKER_BIND_TO_PORT", "70000"),
                            ("SAGEMAKER_CONTAINER_LOG_LEVEL", "loud")):
            with self.subTest(name=name, value=value):
                code, out = self.run_to_end({"inference.py": NUMPY_MODULE}, env={name: value})
                self.assertEqual(code, 64, out)
                self.assertIn(name, out)
                self.assertIn(value, out)

    def test_port_in_use(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            code, out = self.run_to_end({"inference.py": NUMPY_MODULE}, env={"SAGEMAKER_BIND_TO_PORT": port})
        self.assertEqual(code, 71, out)
        self.assertIn("BindError", out)
        self.assertIn(str(port), out)
        self.assertIn("Address already in use", out)

    def test_missing_model_data(self):
        code, out = self.run_to_end({"inference.py": NUMPY_MODULE}, args=("--model-data", "/nonexistent/model.tar.gz"))
        self.assertEqual(code, 66, out)
        self.assertIn("/nonexistent/model.tar.gz", out)


class EntryTest(unittest.TestCase):
    def setUp(self):
        require_numpy(self)

    def test_serve_link_and_model_folder_and_requirements(self):
        # `serve` on PATH (the link beside smlaunch), code with a requirements.txt (pip runs,
        # hermetic), model data given as a folder.
        model = tempfile.mkdtemp(prefix="smlaunch-serve-model-")
        self.addCleanup(subprocess.run, ["rm", "-rf", model])
        with open(os.path.join(model, "scale.txt"), "w") as f:
            f.write("5")
        link = os.path.join(os.path.dirname(harness.SMLAUNCH), "serve")
        self.assertTrue(os.path.islink(link))
        server = Server(self, {"inference.py": NUMPY_MODULE, "requirements.txt": "numpy\n"}, model_data=model, binary=link,
                        env={"SAGEMAKER_MODEL_SERVER_WORKERS": 1, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
        status, headers, body = server.invoke("[1, 2]", "application/json")
        self.assertEqual((status, headers["Content-Type"], body), (200, "text/csv", b"5.0\n10.0\n"))
        self.assertIn(model, read(os.path.join(server.log_dir, "model_fn.log")))
        self.assertIn("pip install -r requirements.txt", server.output())
        self.assertEqual(server.stop(), 0)

    def test_help(self):
        out = subprocess.run([harness.SMLAUNCH, "serve", "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0)
        for name in ("SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_MODEL_SERVER_WORKERS", "SAGEMAKER_MODEL_SERVER_TIMEOUT",
                     "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY"):
            self.assertIn(name, out.stdout)


if __name__ == "__main__":
    unittest.main()
