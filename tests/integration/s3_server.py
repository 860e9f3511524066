"""A real S3-compatible server for the staging tests: moto's server, which checks AWS
Signature V4 on every request once its first few set-up actions are done.

moto lives in its own venv (.cache/moto, made by scripts/setup.sh); this module starts it
on loopback, creates a user with a key and a bucket, and uploads objects with boto3 (run
in moto's venv), so the launcher's own client is the only one under test.
"""
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

MOTO_PYTHON = os.path.join(os.environ.get("SMLAUNCH_TEST_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")),
                           ".cache", "moto", "bin", "python")

# Run by moto's Python: the first four actions are unauthenticated (INITIAL_NO_AUTH_ACTION_COUNT).
SETUP = r'''
import json, sys, boto3
endpoint, bucket = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="trainer")
key = iam.create_access_key(UserName="trainer")["AccessKey"]
iam.put_user_policy(UserName="trainer", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
boto3.client("s3", **kw).create_bucket(Bucket=bucket)
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
'''
UPLOAD = r'''
import sys, boto3
endpoint, key_id, secret, bucket, key, path = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                  aws_secret_access_key=secret)
s3.upload_file(path, bucket, key)
print(s3.head_object(Bucket=bucket, Key=key)["ETag"])
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available():
    if not os.access(MOTO_PYTHON, os.X_OK):
        return False, "moto is not installed in .cache/moto (run scripts/setup.sh)"
    return True, ""


class S3Server:
    bucket = "training-code"

    def __init__(self):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="4", MOTO_ALLOW_NONEXISTENT_REGION="true")
        moto_server = os.path.join(os.path.dirname(MOTO_PYTHON), "moto_server")
        self.proc = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        out = subprocess.run([MOTO_PYTHON, "-c", SETUP, self.endpoint, self.bucket], check=True,
                             capture_output=True, text=True, timeout=120).stdout
        keys = json.loads(out.strip().splitlines()[-1])
        self.key_id, self.secret = keys["id"], keys["secret"]

    def upload(self, key, path):
        out = subprocess.run([MOTO_PYTHON, "-c", UPLOAD, self.endpoint, self.key_id, self.secret, self.bucket, key,
                              path], check=True, capture_output=True, text=True, timeout=300).stdout
        return out.strip().strip('"')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FlakyProxy:
    """Forwards to `target`, but answers the first `failures` requests with 503."""

    def __init__(self, target, failures):
        self.requests = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self, method):
                proxy.requests += 1
                if proxy.requests <= failures:
                    body = b"<Error><Code>SlowDown</Code><Message>try again</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                req = urllib.request.Request(target + self.path, method=method,
                                             headers={k: v for k, v in self.headers.items()})
                try:
                    resp = urllib.request.urlopen(req, timeout=60)
                    status, headers, data = resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as e:
                    status, headers, data = e.code, e.headers, e.read()
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)

            def do_GET(self):
                self._forward("GET")

            def do_HEAD(self):
                self._forward("HEAD")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class CredentialsEndpoint:
    """The ECS/SageMaker container credentials endpoint, answering with fixed keys."""

    def __init__(self, key_id, secret, token=""):
        document = json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret, "Token": token,
                               "Expiration": "2099-01-01T00:00:00Z"}).encode()
        self.calls = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.calls += 1
                outer.authorization = self.headers.get("Authorization")
                self.send_response(200)
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/v2/credentials/abc" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
