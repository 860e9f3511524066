#!/usr/bin/env python3
"""Soak of `smlaunch serve` with hostile clients (issue 16): a quiet run of normal traffic,
then `--minutes` of the same traffic with hostile clients beside it, printing the normal
requests' throughput and p50/p99 for both, and the front's and the workers' RSS at the
start and the end of the soak.

Normal clients: keep-alive, NPY 1 x 256 float32 in and out (as the SDK's Predictor sends
them), a plain numpy linear model through the default handlers.
Hostile clients, one thread of each kind:
- slow: a 4 KiB body sent 64 bytes at a time, 50 ms apart;
- never-reading: asks for a 16 MiB answer and never reads it (closed after 15 s);
- oversized: declares a 1 GiB body, sends 100 bytes, waits 2 s, closes;
- disconnecting: sends a request and closes at once;
- smuggling: Transfer-Encoding: gzip with a request hidden in the body.

Targets: RSS flat (within 10% from start to end), p99 of normal requests within 2x of the
quiet run. Only 127.0.0.1; every loop bounded in time and count.

Usage: soak_serve.py SMLAUNCH PYTHON [--minutes M] [--quiet-seconds S] [--clients N] [--workers N]
"""
import argparse
import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

MODULE = r'''
import numpy as np

def model_fn(model_dir):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 10)).astype(np.float32)
    return lambda x: np.asarray(x, dtype=np.float32) @ w

def predict_fn(data, model):
    if np.asarray(data).size and float(np.asarray(data).ravel()[0]) == -4:
        return np.zeros(4 * 1024 * 1024, dtype=np.float32)  # 16 MiB answer
    return model(data)
'''

MAX_OPS = 10_000_000  # a bound on every loop besides its deadline


def npy(array):
    import numpy as np
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def memory(pid):
    workers = children(pid)
    return rss_kib(pid), sum(rss_kib(w) for w in workers), len(workers)


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Normal(threading.Thread):
    def __init__(self, port, body, deadline):
        super().__init__(daemon=True)
        self.port, self.body, self.deadline = port, body, deadline
        self.latencies, self.errors = [], 0

    def run(self):
        conn = None
        for _ in range(MAX_OPS):
            if time.monotonic() >= self.deadline:
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                started = time.perf_counter()
                conn.request("POST", "/invocations", body=self.body,
                             headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.latencies.append(time.perf_counter() - started)
                else:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def request_head(content_type, length=None, extra=()):
    lines = ["POST /invocations HTTP/1.1", "Host: 127.0.0.1", "Content-Type: " + content_type,
             "Accept: application/x-npy"]
    if length is not None:
        lines.append("Content-Length: %d" % length)
    return ("\r\n".join(lines + list(extra)) + "\r\n\r\n").encode()


class Hostile(threading.Thread):
    def __init__(self, kind, port, deadline, big_body):
        super().__init__(daemon=True)
        self.kind, self.port, self.deadline, self.big_body = kind, port, deadline, big_body
        self.count = 0

    def wait(self, seconds):
        time.sleep(max(0.0, min(seconds, self.deadline - time.monotonic())))

    def once(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
            if self.kind == "slow":
                body = b"[" + b"1," * 2047 + b"1]"
                s.sendall(request_head("application/json", len(body)))
                for i in range(0, len(body), 64):
                    if time.monotonic() >= self.deadline:
                        return
                    s.sendall(body[i:i + 64])
                    self.wait(0.05)
                s.recv(65536)
            elif self.kind == "never-reading":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                s.sendall(request_head("application/x-npy", len(self.big_body)) + self.big_body)
                self.wait(15)
            elif self.kind == "oversized":
                s.sendall(request_head("application/json", 1 << 30) + b"[" + b"1," * 49)
                self.wait(2)
            elif self.kind == "disconnecting":
                body = b"[" + b"1," * 255 + b"1]"
                s.sendall(request_head("application/json", len(body)) + body)
                self.wait(0.01)
            elif self.kind == "smuggling":
                hidden = request_head("application/json", 3) + b"[1]"
                s.sendall(request_head("application/json", None, ["Transfer-Encoding: gzip"]) + hidden)
                s.recv(65536)
                self.wait(0.2)

    def run(self):
        for _ in range(MAX_OPS):
            if time.monotonic() >= self.deadline:
                break
            try:
                self.once()
                self.count += 1
            except OSError:
                self.count += 1
                self.wait(0.1)


KINDS = ("slow", "never-reading", "oversized", "disconnecting", "smuggling")


def hostile_process(port, seconds):
    """The hostile clients, in a process of their own (so their Python does not slow the
    normal clients' Python); prints how many times each kind ran."""
    import numpy as np
    big_body = npy(np.full((1, 256), -4, dtype=np.float32))
    deadline = time.monotonic() + seconds
    bad = [Hostile(kind, port, deadline, big_body) for kind in KINDS]
    for t in bad:
        t.start()
    for t in bad:
        t.join(timeout=seconds + 60)
    print(" ".join("%s=%d" % (t.kind, t.count) for t in bad))


def traffic(port, body, seconds, clients, hostile, samples=None, pid=None):
    deadline = time.monotonic() + seconds
    normal = [Normal(port, body, deadline) for _ in range(clients)]
    helper = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--hostile", str(port), "--seconds",
                               str(seconds)], stdout=subprocess.PIPE, text=True) if hostile else None
    started = time.monotonic()
    for t in normal:
        t.start()
    for _ in range(100000):
        if time.monotonic() >= deadline or samples is None:
            break
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
        samples.append(memory(pid))
    for t in normal:
        t.join(timeout=seconds + 60)
    elapsed = time.monotonic() - started
    kinds = {}
    if helper is not None:
        out, _ = helper.communicate(timeout=120)
        kinds = dict(item.split("=") for item in out.split())
    latencies = [x for t in normal for x in t.latencies]
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": sum(t.errors for t in normal),
        "hostile": kinds,
    }


def main():
    parser = argparse.ArgumentParser()
    if "--hostile" in sys.argv:
        index = sys.argv.index("--hostile")
        hostile_process(int(sys.argv[index + 1]), float(sys.argv[sys.argv.index("--seconds") + 1]))
        return
    parser.add_argument("smlaunch")
    parser.add_argument("python")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--quiet-seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import numpy as np

    root = tempfile.mkdtemp(prefix="smlaunch-soak-")
    try:
        os.makedirs(os.path.join(root, "code"))
        os.makedirs(os.path.join(root, "model"))
        with open(os.path.join(root, "code", "inference.py"), "w") as f:
            f.write(MODULE)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMLAUNCH_", "SAGEMAKER_"))}
        env.update({"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": os.path.join(root, "code")})
        log = open(os.path.join(root, "serve.log"), "wb")
        proc = subprocess.Popen([args.smlaunch, "serve", "--base-dir", root, "--python", args.python,
                                 "--bind-address", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                                 "--timeout", "10", "--quiet"], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit("serve exited with %s" % proc.returncode)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        body = npy(np.ones((1, 256), dtype=np.float32))
        traffic(port, body, 5, args.clients, False)  # warm-up
        quiet = traffic(port, body, args.quiet_seconds, args.clients, False)
        start_memory = memory(proc.pid)
        samples = []
        soak = traffic(port, body, args.minutes * 60, args.clients, True, samples, proc.pid)
        time.sleep(12)  # answers to never-reading clients are dropped within --timeout
        end_memory = memory(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
        print("quiet run, %.0f s, %d clients: %d requests, %.1f req/s, p50 %.2f ms, p99 %.2f ms, %d errors"
              % (args.quiet_seconds, args.clients, quiet["requests"], quiet["rps"], quiet["p50_ms"], quiet["p99_ms"],
                 quiet["errors"]))
        print("soak, %.1f min, %d clients + hostile %s: %d requests, %.1f req/s, p50 %.2f ms, p99 %.2f ms, %d errors"
              % (args.minutes, args.clients, soak["hostile"], soak["requests"], soak["rps"], soak["p50_ms"],
                 soak["p99_ms"], soak["errors"]))
        print("p99 soak / quiet: %.2f (target <= 2)" % (soak["p99_ms"] / quiet["p99_ms"]))
        for name, index in (("front", 0), ("workers", 1)):
            a, b = start_memory[index], end_memory[index]
            print("RSS %s: start %.1f MiB, end %.1f MiB, %+.1f%% (target within 10%%)"
                  % (name, a / 1024, b / 1024, 100.0 * (b - a) / a if a else float("nan")))
        if samples:
            print("RSS front every 10 s during the soak (MiB): min %.1f, max %.1f; workers: min %.1f, max %.1f"
                  % (min(x[0] for x in samples) / 1024, max(x[0] for x in samples) / 1024,
                     min(x[1] for x in samples) / 1024, max(x[1] for x in samples) / 1024))
        print("workers at start %d, at end %d; serve exited %d" % (start_memory[2], end_memory[2], code))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
