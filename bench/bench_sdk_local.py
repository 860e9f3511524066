"""The SageMaker Python SDK's local mode against smlaunch's own local tools, same job, same
machine, same invocation (issue 18's table). Run by bench/sdk_local.sh, which starts the
private Docker engine and builds the image first:
    .cache/sdk/bin/python bench/bench_sdk_local.py SMLAUNCH VENV_PYTHON IMAGE [--runs N]

Rows (median of N runs, interleaved):
  fit, 1 host          SDK: Chainer(...).fit() in-process, and the whole `python` process
                       smlaunch: `smlaunch local --instance-count 1`, the whole process
  fit, 2 hosts         the same with ChainerMN over MPI (SDK: two containers; smlaunch: two
                       network namespaces; needs root)
  deploy + 1 predict   SDK: deploy() + predict() of 100 rows (its fixed sleeps included)
                       smlaunch: `smlaunch serve --model-data model.tar.gz` until /ping
                       answers 200, then the same prediction over HTTP
"""
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
EXAMPLE = os.path.join(REPO, "examples", "chainer")
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sdk_estimator(image, work, hosts):
    from sagemaker.chainer import Chainer
    from sagemaker.local import LocalSession
    session = LocalSession(sagemaker_config={"SchemaVersion": "1.0",
                                             "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    session.config = {"local": {"local_code": True, "container_root": work, "serving_port": free_port()}}
    return Chainer(entry_point="train.py", source_dir=EXAMPLE, role=ROLE, image_uri=image,
                   instance_count=hosts, instance_type="local", sagemaker_session=session,
                   output_path="file://" + tempfile.mkdtemp(dir=work), code_location="s3://unused-bucket/code",
                   hyperparameters={"epochs": 1}, environment={"PIP_NO_INDEX": "1"},
                   use_mpi=hosts > 1, num_processes=hosts if hosts > 1 else None,
                   process_slots_per_host=1 if hosts > 1 else None)


def channels(work):
    return {"train": "file://" + os.path.join(work, "data", "train"),
            "test": "file://" + os.path.join(work, "data", "test")}


def one_fit(image, work, hosts):
    """The whole-process case: import the SDK, fit, exit."""
    sdk_estimator(image, work, hosts).fit(channels(work), wait=True, logs=False)


def timed(f):
    start = time.monotonic()
    result = f()
    return time.monotonic() - start, result


def quiet_run(argv, **kw):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600, **kw)


def predict_rows(work):
    import numpy as np
    test = np.load(os.path.join(work, "data", "test", "test.npz"))
    return test["x"][:100]


def serve_ready_and_predict(smlaunch, python, work, model_tar, x):
    import numpy as np
    port = free_port()
    server = subprocess.Popen([smlaunch, "serve", "--base-dir", tempfile.mkdtemp(dir=work), "--model-data", model_tar,
                               "--program", "train.py", "--submit-directory", EXAMPLE, "--workers", "1",
                               "--port", str(port), "--bind-address", "127.0.0.1", "--python", python],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, PIP_NO_INDEX="1"))
    start = time.monotonic()
    try:
        while time.monotonic() - start < 120:
            try:
                if urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.02)
        body = io.BytesIO()
        np.save(body, x)
        request = urllib.request.Request("http://127.0.0.1:%d/invocations" % port, data=body.getvalue(),
                                         headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
        scores = np.load(io.BytesIO(urllib.request.urlopen(request, timeout=60).read()))
        assert scores.shape == (100, 10), scores.shape
        return time.monotonic() - start
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--one-fit":
        one_fit(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    smlaunch, python, image = sys.argv[1:4]
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    work = tempfile.mkdtemp(prefix="smlaunch-bench-sdk-")
    quiet_run([python, os.path.join(EXAMPLE, "generate_data.py"), os.path.join(work, "data", "train"),
               os.path.join(work, "data", "test"), "--samples", "2000"])
    hosts_cases = [1, 2] if os.geteuid() == 0 else [1]
    rows = {}
    x = predict_rows(work)
    for _ in range(runs):
        for hosts in hosts_cases:
            fit_s, _ = timed(lambda: sdk_estimator(image, work, hosts).fit(channels(work), wait=True, logs=False))
            rows.setdefault(("fit, %d host%s" % (hosts, "s" if hosts > 1 else ""), "SDK fit()"), []).append(fit_s)
            whole, _ = timed(lambda: quiet_run([sys.executable, __file__, "--one-fit", image, work, str(hosts)]))
            rows.setdefault(("fit, %d host%s" % (hosts, "s" if hosts > 1 else ""), "SDK whole process"), []).append(whole)
            job = tempfile.mkdtemp(dir=work)
            local, _ = timed(lambda: quiet_run(
                [smlaunch, "local", "--entry-point", os.path.join(EXAMPLE, "train.py"), "--python", python,
                 "--hyperparameter", "epochs=1", "--channel", "train=" + os.path.join(work, "data", "train"),
                 "--channel", "test=" + os.path.join(work, "data", "test"), "--instance-count", str(hosts),
                 "--job-dir", os.path.join(job, "job")], env=dict(os.environ, PIP_NO_INDEX="1")))
            rows.setdefault(("fit, %d host%s" % (hosts, "s" if hosts > 1 else ""), "smlaunch local"), []).append(local)
        est = sdk_estimator(image, work, 1)
        est.fit(channels(work), wait=True, logs=False)

        def deploy_and_predict():
            predictor = est.deploy(initial_instance_count=1, instance_type="local")
            try:
                assert predictor.predict(x).shape == (100, 10)
            except BaseException:
                predictor.delete_endpoint()
                raise
            return predictor
        deployed, predictor = timed(deploy_and_predict)
        predictor.delete_endpoint()
        rows.setdefault(("deploy + first predict", "SDK deploy() + predict()"), []).append(deployed)
        model_tar = os.path.join(job, "job", "model.tar.gz")
        rows.setdefault(("deploy + first predict", "smlaunch serve --model-data, ready + predict"), []).append(
            serve_ready_and_predict(smlaunch, python, work, model_tar, x))
    print("| run | way | median (s) | runs (s) |")
    print("| --- | --- | ---: | --- |")
    for (case, way), values in rows.items():
        print("| %s | %s | %.2f | %s |" % (case, way, statistics.median(values), ", ".join("%.2f" % v for v in values)))
    subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
