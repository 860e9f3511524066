#!/usr/bin/env bash
# The CPU image for real: build docker/Dockerfile with a real engine and run it in containers,
# as SageMaker and its SDK's local mode run it.
#   docker/ci.sh                   (scripts/test.sh calls it; needs root, Debian 12)
# The engine is private to this checkout (docker/engine.sh: data under .cache/docker, no
# iptables rules, no ip_forward change); nothing of this machine's /etc/ssh, /root, /usr/local
# or /opt is touched. Checks, each in containers:
#   1. the image's numpy runs on OpenBLAS, and a job smlaunch starts runs this CPU's kernels;
#   2. one host: `docker run -v TREE:/opt/ml IMAGE train` trains the Chainer example;
#   3. two hosts with docker-compose.yml: ChainerMN over MPI between algo-1 and algo-2;
#   4. `serve` on a published loopback port answers /ping and a real prediction;
#   5. `docker stop -t 70` of a training container reaches the script (SIGTERM forwarded);
#   6. the SageMaker Python SDK's local mode as the client: fit on 1 and 2 hosts, a failing
#      job, deploy + predict + delete_endpoint (tests/sdk/test_sdk_local_mode.py).
# SMLAUNCH_DOCKER_KEEP=1 leaves the engine running afterwards (docker/engine.sh stop ends it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
if [ "$(id -u)" != 0 ]; then
  echo "docker/ci.sh: skipped: a Docker engine needs root"
  exit 0
fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "docker/ci.sh: skipped: the engine set-up is written for Debian 12; this is ${PRETTY_NAME:-unknown}"
  exit 0
fi

image="${SMLAUNCH_IMAGE:-smlaunch-chainer:cpu}"
docker=/usr/bin/docker
python=.venv/bin/python   # makes the job trees (numpy); scripts/setup.sh made it
work="$(mktemp -d /tmp/smlaunch-docker-ci.XXXXXX)"
project="smlaunch-ci-$$"            # compose project and container names of this run
network="$project-net"

docker/engine.sh start
eval "$(docker/engine.sh env)"
cleanup() {
  local rc=$?
  "$docker" ps -aq --filter "name=$project" | xargs -r "$docker" rm -f >/dev/null 2>&1 || true
  "$docker" ps -aq --filter "ancestor=$image" | xargs -r "$docker" rm -f >/dev/null 2>&1 || true
  SMLAUNCH_JOBS="$work/compose" docker-compose -p "$project" -f docker/docker-compose.yml down \
    --remove-orphans >/dev/null 2>&1 || true
  "$docker" network rm "$network" >/dev/null 2>&1 || true
  rm -rf "$work"
  [ "${SMLAUNCH_DOCKER_KEEP:-0}" = 1 ] || docker/engine.sh stop
  exit $rc
}
trap cleanup EXIT

docker/engine.sh base
echo "== docker/ci.sh: docker build -f docker/Dockerfile -t $image"
start=$(date +%s)
"$docker" build --network host -f docker/Dockerfile -t "$image" . > "$work/build.log" 2>&1 || {
  tail -60 "$work/build.log" >&2; echo "docker/ci.sh: the image did not build" >&2; exit 1; }
grep -E '^(Step [0-9]+/[0-9]+|check-image.sh|python-env.sh|runtime-packages.sh)|Using cache|^-r' "$work/build.log" \
  | sed 's/^/  build | /' | uniq
size=$("$docker" image inspect -f '{{.Size}}' "$image")
smlaunch_size=$("$docker" run --rm --network none --entrypoint stat "$image" -c %s /usr/local/bin/smlaunch)
echo "docker/ci.sh: built $image in $(( $(date +%s) - start )) s: image $((size / 1000000)) MB," \
     "smlaunch $((smlaunch_size / 1000)) kB"

echo "== docker/ci.sh: 1. numpy in the image runs on an optimized BLAS"
"$docker" run --rm --network none --entrypoint python3 "$image" -c '
import json, numpy, threadpoolctl
info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
print("docker/ci.sh: image BLAS:", json.dumps(info))
assert info and all(i["internal_api"] in ("openblas", "mkl", "blis") for i in info), info'

echo "== docker/ci.sh: 1b. a job that smlaunch starts in the image runs OpenBLAS's kernels for this CPU"
# The image's OpenBLAS (Debian's 0.3.21) falls back to its SSE3 kernels on CPUs newer than its
# table; smlaunch sets OPENBLAS_CORETYPE for the job (env/blas_core.hpp). Expected value from
# the CPU's flags, as tests/integration/test_blas.py states it.
expected=$("$python" -c 'import sys; sys.path.insert(0, "tests/integration"); import harness
print(harness.expected_openblas_core() or "")')
if [ -n "$expected" ]; then
  mkdir -p "$work/blas/input/config" "$work/blas/code"
  printf '%s\n' 'import json, numpy, threadpoolctl' \
    'print("kernels:", json.dumps(sorted({i["architecture"] for i in threadpoolctl.threadpool_info()' \
    '                                     if i["internal_api"] == "openblas"})))' > "$work/blas/code/kernels.py"
  echo '{"sagemaker_program": "\"kernels.py\""}' > "$work/blas/input/config/hyperparameters.json"
  echo '{"current_host": "algo-1", "hosts": ["algo-1"]}' > "$work/blas/input/config/resourceconfig.json"
  echo "{}" > "$work/blas/input/config/inputdataconfig.json"
  "$docker" run --rm --network none -v "$work/blas:/opt/ml" "$image" train > "$work/blas.log" 2>&1 \
    || { cat "$work/blas.log" >&2; exit 1; }
  grep -F "kernels: [\"$expected\"]" "$work/blas.log" || {
    cat "$work/blas.log" >&2; echo "docker/ci.sh: the job did not run OpenBLAS's $expected kernels" >&2; exit 1; }
else
  echo "docker/ci.sh: no AVX2 and FMA on this CPU: OpenBLAS's own choice is kept (nothing to check)"
fi

echo "== docker/ci.sh: 2. one host: docker run -v TREE:/opt/ml $image train"
"$python" examples/chainer/make_tree.py "$work/one" --epochs 2 --samples 2000 --code-in-tree >/dev/null
"$docker" run --rm --name "$project-train" --network none -e PIP_NO_INDEX=1 \
  -v "$work/one:/opt/ml" "$image" train > "$work/train.log" 2>&1 || { cat "$work/train.log" >&2; exit 1; }
grep '^final test accuracy' "$work/train.log"
test -f "$work/one/output/success"
test -s "$work/one/model/model.npz"

echo "== docker/ci.sh: 3. two hosts: docker-compose up (ChainerMN over MPI, algo-1 and algo-2)"
for h in algo-1 algo-2; do
  "$python" examples/chainer/make_tree.py "$work/compose/$h" --hosts 2 --current-host "$h" --slots 1 \
    --epochs 1 --samples 2000 --code-in-tree >/dev/null
done
mkdir -p "$work/compose/model"
export SMLAUNCH_JOBS="$work/compose" SMLAUNCH_IMAGE="$image"
PIP_NO_INDEX=1 timeout 600 docker-compose -p "$project" -f docker/docker-compose.yml up --no-build \
  --abort-on-container-exit > "$work/compose.log" 2>&1 || true
for h in algo-1 algo-2; do
  status=$("$docker" inspect -f '{{.State.ExitCode}}' "${project}_${h}_1" 2>/dev/null || echo missing)
  if [ "$status" != 0 ] || [ ! -f "$work/compose/$h/output/success" ]; then
    cat "$work/compose.log" >&2
    echo "docker/ci.sh: container $h exited with $status" >&2
    exit 1
  fi
done
# ChainerMN counts hosts by MPI_Get_processor_name: 2 hosts means each rank saw its own algo-N.
grep -E 'ChainerMN: communicator .*2 processes on 2 host\(s\)' "$work/compose.log"
grep 'final test accuracy' "$work/compose.log"
test -s "$work/compose/model/model.npz"
docker-compose -p "$project" -f docker/docker-compose.yml down >/dev/null 2>&1

echo "== docker/ci.sh: 4. serve on a published loopback port"
"$docker" network create "$network" >/dev/null
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$docker" run -d --name "$project-serve" --network "$network" -p "127.0.0.1:$port:8080" \
  -e PIP_NO_INDEX=1 -e SAGEMAKER_PROGRAM=train.py -e SAGEMAKER_MODEL_SERVER_WORKERS=2 \
  -v "$work/one/model:/opt/ml/model:ro" -v "$work/one/code:/opt/ml/code:ro" "$image" serve 2>&1 >/dev/null \
  | { grep -v 'IPv4 forwarding is disabled' || true; }   # host <-> container needs no forwarding
"$python" - "$port" "$work/one/input/data/test/test.npz" <<'PY' || { "$docker" logs "$project-serve" >&2; exit 1; }
import io, sys, time, urllib.request
import numpy as np
base = "http://127.0.0.1:%s" % sys.argv[1]
deadline = time.monotonic() + 120
while True:
    try:
        if urllib.request.urlopen(base + "/ping", timeout=2).status == 200:
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("serve never answered /ping")
    time.sleep(0.2)
test = np.load(sys.argv[2])
x, y = test["x"][:200], test["y"][:200]
body = io.BytesIO()
np.save(body, x)
request = urllib.request.Request(base + "/invocations", data=body.getvalue(),
                                 headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
predictions = np.load(io.BytesIO(urllib.request.urlopen(request, timeout=60).read()))
assert predictions.shape == (200, 10), predictions.shape
accuracy = float((predictions.argmax(axis=1) == y).mean())
print("docker/ci.sh: serve answered %s, accuracy on 200 test rows %.3f" % (predictions.shape, accuracy))
assert accuracy > 0.5, accuracy
PY
"$docker" stop -t 30 "$project-serve" >/dev/null
test "$("$docker" inspect -f '{{.State.ExitCode}}' "$project-serve")" = 0

echo "== docker/ci.sh: 5. docker stop -t 70 of a training container reaches the script"
mkdir -p "$work/stop/input/config" "$work/stop/code" "$work/stop/model" "$work/stop/output"
echo '{"sagemaker_program": "\"stop.sh\"", "sagemaker_submit_directory": "\"/opt/ml/code\""}' \
  > "$work/stop/input/config/hyperparameters.json"
echo '{"current_host": "algo-1", "hosts": ["algo-1"]}' > "$work/stop/input/config/resourceconfig.json"
echo '{}' > "$work/stop/input/config/inputdataconfig.json"
cat > "$work/stop/code/stop.sh" <<'SH'
#!/bin/sh
trap 'echo "stop.sh: got SIGTERM, saving a checkpoint"; echo saved > /opt/ml/model/checkpoint; exit 7' TERM
echo "stop.sh: training"
while :; do sleep 0.1; done
SH
chmod +x "$work/stop/code/stop.sh"
"$docker" run -d --name "$project-stop" --network none -v "$work/stop:/opt/ml" "$image" train >/dev/null
for _ in $(seq 1 300); do
  "$docker" logs "$project-stop" 2>&1 | grep -q 'stop.sh: training' && break
  sleep 0.1
done
start=$(date +%s)
"$docker" stop -t 70 "$project-stop" >/dev/null
elapsed=$(( $(date +%s) - start ))
status=$("$docker" inspect -f '{{.State.ExitCode}}' "$project-stop")
"$docker" logs "$project-stop" 2>&1 | sed 's/^/  stop | /'
if [ "$status" != 7 ] || [ "$(cat "$work/stop/model/checkpoint")" != saved ] || [ "$elapsed" -ge 60 ]; then
  echo "docker/ci.sh: docker stop: exit $status after ${elapsed} s (expected the script's 7, a checkpoint, no SIGKILL)" >&2
  exit 1
fi
grep -q 'ExitCode 7' "$work/stop/output/failure"
echo "docker/ci.sh: docker stop: the script got SIGTERM, exit $status after ${elapsed} s, output/failure written"

echo "== docker/ci.sh: 6. the SageMaker Python SDK's local mode as the client"
sdk_version=2.257.6
if ! .cache/sdk/bin/python -c "import sagemaker, sys; sys.exit(sagemaker.__version__ != '$sdk_version')" 2>/dev/null; then
  echo "docker/ci.sh: installing sagemaker==$sdk_version into .cache/sdk (test-only venv)"
  rm -rf .cache/sdk .cache/sdk.new   # made aside, then moved: an interrupted install leaves no half venv
  /usr/bin/python3 -m venv .cache/sdk.new
  env -u PIP_NO_INDEX PIP_CACHE_DIR="$repo/.cache/pip" .cache/sdk.new/bin/python -m pip install --quiet --disable-pip-version-check \
    "sagemaker==$sdk_version"
  mv .cache/sdk.new .cache/sdk
fi
mkdir -p "$work/bin"
ln -s "$docker" "$work/bin/docker"   # the engine's own client first on PATH, as for the SDK's calls
(cd tests/sdk && PATH="$work/bin:$PATH" SMLAUNCH_IMAGE="$image" SMLAUNCH_SDK_WORK="$work" \
   timeout 900 "$repo/.cache/sdk/bin/python" -m unittest -v test_sdk_local_mode) > "$work/sdk.log" 2>&1 \
  || { cat "$work/sdk.log" >&2; echo "docker/ci.sh: the SDK's local mode failed" >&2; exit 1; }
grep -E '^(sdk:|Ran |OK)|\.\.\. ok$' "$work/sdk.log" | sed 's/^/  sdk | /'
echo "docker/ci.sh: ok"
