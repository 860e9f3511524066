#!/usr/bin/env python3
"""Model-serving throughput and latency: `smlaunch serve` against the reference's stack
(nginx -> gunicorn with gevent workers -> Flask, all from Debian's packages), measured side
by side in one invocation with the same user module, the same model and the same default
handlers (smlaunch_serving.defaults, which follow the reference's).

Two small models, each through the same handlers on both stacks:
- chainer: the Chainer example's MLP (examples/chainer/train.py; its model_fn loads
  model.npz), 256 inputs, 64 hidden units, 10 outputs, through the default predict_fn
  with real Chainer;
- linear: a plain numpy callable (x @ W + b, 256 -> 10);
- first-row: no model at all (the first row of the input back): the serving stack alone.
Payloads are NPY (Content-Type and Accept application/x-npy, as the SDK's Predictor sends
them): 1 KiB (1 x 256 float32) and 1 MiB (1024 x 256). The load generator is wrk (one
thread, keep-alive), at 1 and 32 connections.

Usage: bench_serve.py SMLAUNCH PYTHON [--duration S] [--rounds N] [--workers N]
Installs nginx-light, gunicorn, python3-gevent, python3-flask and wrk with apt-get when
they are missing (root).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench_launcher import make_tree

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)

BASELINE_APP = r'''
"""The reference's serving path, as sagemaker_containers 2.5.0 + the Chainer container
wire it: a Flask app under gunicorn (gevent), the user's functions or the defaults, the
model loaded once per worker (lazily, on the first request, as the reference)."""
import importlib
import os

import flask

from smlaunch_serving import defaults

_state = {}


def _handlers():
    if not _state:
        user = importlib.import_module(os.environ["BENCH_MODULE"])
        _state["input_fn"] = getattr(user, "input_fn", defaults.input_fn)
        _state["predict_fn"] = getattr(user, "predict_fn", defaults.predict_fn)
        _state["output_fn"] = getattr(user, "output_fn", defaults.output_fn)
        _state["model"] = user.model_fn(os.environ["BENCH_MODEL_DIR"])
    return _state


app = flask.Flask(__name__)


@app.route("/ping", methods=["GET"])
def ping():
    _handlers()
    return flask.Response(status=200)


@app.route("/invocations", methods=["POST"])
def invocations():
    h = _handlers()
    request = flask.request
    content_type = request.headers.get("ContentType", request.headers.get("Content-Type", "application/json"))
    accept = request.headers.get("Accept")
    if not accept or accept == "*/*":
        accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
    data = request.get_data()
    if content_type in ("application/json", "text/csv"):
        data = data.decode("utf-8")
    result = h["output_fn"](h["predict_fn"](h["input_fn"](data, content_type), h["model"]), accept)
    body, mimetype = result if isinstance(result, tuple) else (result, accept)
    return flask.Response(body, mimetype=mimetype)
'''

# sagemaker_containers' etc/nginx.conf.template, with paths of this run (and `user root`
# so the workers can reach gunicorn's socket).
NGINX_CONF = r'''
user root;
worker_processes auto;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log;
worker_rlimit_nofile 4096;
events {{
  worker_connections 2048;
}}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log {root}/nginx-access.log combined;
  client_body_temp_path {root}/client_body;
  proxy_temp_path {root}/proxy;
  upstream gunicorn {{
    server unix:{root}/gunicorn.sock;
  }}
  server {{
    listen {port} deferred;
    client_max_body_size 0;
    keepalive_timeout 3;
    location ~ ^/(ping|invocations) {{
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header Host $http_host;
      proxy_redirect off;
      proxy_read_timeout 60s;
      proxy_pass http://gunicorn;
    }}
    location / {{
      return 404 "{{}}";
    }}
  }}
}}
'''

LINEAR_MODULE = '''
import os

import numpy as np


def model_fn(model_dir):
    with np.load(os.path.join(model_dir, "linear.npz")) as p:
        w, b = p["w"], p["b"]
    return lambda x: np.asarray(x, dtype=np.float32).reshape(len(x), -1) @ w + b
'''

# No computation at all (the first row back): what is measured is the serving stack alone.
FIRST_ROW_MODULE = '''
def model_fn(model_dir):
    return lambda x: x[:1]
'''

WRK_SCRIPT = '''
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-npy"
wrk.headers["Accept"] = "application/x-npy"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
'''


def ensure_packages(python):
    missing = []
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        missing.append("nginx-light")
    if not shutil.which("wrk"):
        missing.append("wrk")
    for module, package in (("gunicorn", "gunicorn"), ("gevent", "python3-gevent"), ("flask", "python3-flask")):
        if subprocess.run([python, "-c", "import " + module], capture_output=True).returncode != 0:
            missing.append(package)
    if missing:
        print("installing from Debian: " + " ".join(missing), file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        # nginx-light's package starts a system nginx on port 80: not ours, leave it be.


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ping(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready within %d s" % timeout)


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(port, script, connections, duration):
    argv = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration, "--latency", "-s", script,
            "http://127.0.0.1:%d/invocations" % port]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError("wrk saw failures:\n" + out)
    return {"rps": rps, "p50": p50, "p99": p99}


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


MODELS = (("chainer", "train"), ("linear", "linear"), ("first-row", "first_row"))


def start_smlaunch(args, python, root, code, model, module, env):
    port = free_port()
    serve_env = dict(env, SAGEMAKER_PROGRAM=module + ".py", SAGEMAKER_SUBMIT_DIRECTORY=code,
                     SAGEMAKER_MODEL_SERVER_WORKERS=str(args.workers), SAGEMAKER_BIND_TO_PORT=str(port))
    serve_env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([args.smlaunch, "serve", "--base-dir", os.path.join(root, "base-" + module), "--python", python,
                             "--model-data", model, "--log-level", "warning"], env=serve_env)
    wait_ping(port, proc)
    return port, [proc]


def smlaunch_blas_core(smlaunch, python, root, env):
    """OPENBLAS_CORETYPE as smlaunch gives its processes on this CPU (its serving workers
    too: env::blas_core_type), read from `smlaunch plan` on bench_launcher's scratch tree
    rather than restated here, so that the baseline's workers run the same OpenBLAS kernels;
    None where it sets none."""
    base, _ = make_tree(os.path.join(root, "blas-core"), "train.py", "pass\n")
    plan = json.loads(subprocess.run([smlaunch, "plan", "--base-dir", base, "--python", python], env=env,
                                     check=True, capture_output=True, text=True).stdout)
    return plan["blas_core_type"]["value"] or None


def start_baseline(args, python, nginx, root, model, module, env, blas_core):
    port = free_port()
    run_dir = os.path.join(root, "baseline-" + module)
    for d in ("client_body", "proxy"):
        os.makedirs(os.path.join(run_dir, d), exist_ok=True)
    with open(os.path.join(run_dir, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(root=run_dir, port=port))
    environment = dict(env, BENCH_MODULE=module, BENCH_MODEL_DIR=model)
    if blas_core and "OPENBLAS_CORETYPE" not in environment:
        environment["OPENBLAS_CORETYPE"] = blas_core
    environment["PYTHONPATH"] = root + ":" + env["PYTHONPATH"]
    log = open(os.path.join(run_dir, "gunicorn.log"), "w")
    gunicorn = subprocess.Popen([python, "-m", "gunicorn", "--timeout", "60", "-k", "gevent", "-b",
                                 "unix:" + os.path.join(run_dir, "gunicorn.sock"), "--worker-connections",
                                 str(1000 * args.workers), "-w", str(args.workers), "--log-level", "warning", "app:app"],
                                env=environment, stdout=log, stderr=log, cwd=root)
    nginx_proc = subprocess.Popen([nginx, "-c", os.path.join(run_dir, "nginx.conf")], stdout=log, stderr=log)
    wait_ping(port, nginx_proc)
    # Every gunicorn worker loads the model on its first request: warm them all.
    for _ in range(20 * args.workers):
        urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=60).read()
    return port, [nginx_proc, gunicorn]


def median_result(samples):
    ordered = sorted(samples, key=lambda r: r["rps"])
    return ordered[len(ordered) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("smlaunch")
    parser.add_argument("python")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--models", default=",".join(name for name, _ in MODELS),
                        help="comma-separated subset of: " + ", ".join(name for name, _ in MODELS))
    parser.add_argument("--payloads", default="1KiB,1MiB", help="comma-separated subset of: 1KiB, 1MiB")
    args = parser.parse_args()
    python = os.path.abspath(args.python)
    ensure_packages(python)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"

    root = tempfile.mkdtemp(prefix="smlaunch-bench-serve-")
    try:
        code = os.path.join(root, "code-src")
        model = os.path.join(root, "model")
        os.makedirs(code)
        os.makedirs(model)
        shutil.copy(os.path.join(SOURCE, "examples", "chainer", "train.py"), code)
        with open(os.path.join(code, "linear.py"), "w") as f:
            f.write(LINEAR_MODULE)
        with open(os.path.join(code, "first_row.py"), "w") as f:
            f.write(FIRST_ROW_MODULE)
        build = r'''
import sys, numpy as np, chainer
sys.path.insert(0, sys.argv[1])
from train import MLP
m = MLP(64, 10)
with chainer.using_config("train", False):
    m(np.zeros((1, 256), dtype=np.float32))
chainer.serializers.save_npz(sys.argv[2] + "/model.npz", m)
rng = np.random.RandomState(1)
np.savez(sys.argv[2] + "/linear.npz", w=rng.rand(256, 10).astype(np.float32), b=rng.rand(10).astype(np.float32))
for name, rows in (("1KiB", 1), ("1MiB", 1024)):
    np.save(sys.argv[3] + "/" + name + ".npy", np.random.RandomState(0).rand(rows, 256).astype(np.float32))
'''
        subprocess.run([python, "-c", build, code, model, root], check=True)
        scripts = {}
        for payload in ("1KiB", "1MiB"):
            path = os.path.join(root, payload + ".lua")
            with open(path, "w") as f:
                f.write(WRK_SCRIPT.format(body=os.path.join(root, payload + ".npy")))
            scripts[payload] = path

        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMLAUNCH_", "SAGEMAKER_", "PIP_"))}
        env["PYTHONPATH"] = code + ":" + os.path.join(SOURCE, "python")

        with open(os.path.join(root, "app.py"), "w") as f:
            f.write(BASELINE_APP)
        blas_core = smlaunch_blas_core(args.smlaunch, python, root, env)  # once: the same for every model
        ours, theirs = {}, {}
        for model_name, module in [(n, m) for n, m in MODELS if n in args.models.split(",")]:
            # Both stacks run at once, idle while the other is measured; each figure is
            # measured in turns, `--rounds` times, and the median round is kept, so a
            # change in the machine's load hits both alike.
            running = []
            try:
                port_ours, procs = start_smlaunch(args, python, root, code, model, module, env)
                running += procs
                port_theirs, procs = start_baseline(args, python, nginx, root, model, module, env, blas_core)
                running += procs
                for payload, script in [(p, s) for p, s in scripts.items() if p in args.payloads.split(",")]:
                    for connections in (1, 32):
                        key = (model_name, payload, connections)
                        samples = {"smlaunch": [], "baseline": []}
                        for name, port in (("smlaunch", port_ours), ("baseline", port_theirs)):
                            run_wrk(port, script, connections, 2)  # warm-up
                        for _ in range(args.rounds):
                            for name, port in (("smlaunch", port_ours), ("baseline", port_theirs)):
                                samples[name].append(run_wrk(port, script, connections, args.duration))
                        ours[key] = median_result(samples["smlaunch"])
                        theirs[key] = median_result(samples["baseline"])
                        for name, r in (("smlaunch", ours[key]), ("baseline", theirs[key])):
                            print("  %-8s %-7s %-5s %2d conn: %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms"
                                  % (name, model_name, payload, connections, r["rps"], r["p50"], r["p99"]), file=sys.stderr)
            finally:
                for proc in running:
                    stop(proc, signal.SIGQUIT if os.path.basename(proc.args[0]) == "nginx" else signal.SIGTERM)

        print("| model | payload | clients | smlaunch req/s | baseline req/s | throughput | smlaunch p50 / p99 (ms) | baseline p50 / p99 (ms) |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key in ours:
            o, t = ours[key], theirs[key]
            print("| %s | %s | %d | %.0f | %.0f | %.2fx | %.2f / %.2f | %.2f / %.2f |" % (
                key[0], key[1], key[2], o["rps"], t["rps"], o["rps"] / t["rps"], o["p50"], o["p99"], t["p50"], t["p99"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
