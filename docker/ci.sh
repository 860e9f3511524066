#!/usr/bin/env bash
# What CI checks of the images, on a machine without a Docker engine: run the runtime
# stage's scripts on this machine (Debian 12, as root), install smlaunch where the image
# has it, then run training jobs on that installed layout exactly as a container would:
# `train` from PATH, the image's Python, the image's SSH set-up.
#   docker/ci.sh        (after scripts/setup.sh has built build/; scripts/test.sh calls it)
# It changes this machine as the Dockerfile changes an image: Debian packages, a venv in
# /opt/smlaunch/venv, smlaunch in /usr/local, root's SSH key and /etc/ssh/*.d/smlaunch.conf.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
if [ "$(id -u)" != 0 ]; then
  echo "docker/ci.sh: skipped: it sets up this machine as the image (needs root)"
  exit 0
fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "docker/ci.sh: skipped: the CPU image is Debian 12; this is ${PRETTY_NAME:-unknown}"
  exit 0
fi
prefix="${SMLAUNCH_PREFIX:-/usr/local}"
venv="${SMLAUNCH_VENV:-/opt/smlaunch/venv}"

echo "== docker/ci.sh: the runtime stage's scripts"
docker/scripts/runtime-packages.sh
SMLAUNCH_VENV="$venv" docker/scripts/python-env.sh
docker/scripts/ssh-for-mpi.sh
echo "== docker/ci.sh: install (the image's COPY --from=build)"
cmake --install build --prefix "$prefix" >/dev/null
# The image's environment (Dockerfile ENV), nothing of this shell's.
image_env=(env -i HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 PYTHONIOENCODING=UTF-8 PYTHONDONTWRITEBYTECODE=1
           PYTHONUNBUFFERED=1 SMLAUNCH_VENV="$venv"
           PATH="$venv/bin:$prefix/sbin:$prefix/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
"${image_env[@]}" SMLAUNCH_PREFIX="$prefix" docker/scripts/check-image.sh

work="$(mktemp -d /tmp/smlaunch-docker-ci.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "== docker/ci.sh: SSH as the image sets it up (root's key, no host-key prompt for algo-*, PAM)"
unshare --net sh -c '
  ip link set lo up
  /usr/sbin/sshd -D -e -p 2222 -o ListenAddress=127.0.0.1 2>"$1/sshd.log" & sshd=$!
  ok=1
  for i in $(seq 1 50); do
    if ssh -o BatchMode=yes -o ConnectTimeout=2 -o HostName=127.0.0.1 -p 2222 root@algo-1 true 2>"$1/ssh.log"; then ok=0; break; fi
    sleep 0.1
  done
  kill $sshd; wait $sshd 2>/dev/null
  [ $ok = 0 ] || { cat "$1/ssh.log" "$1/sshd.log" >&2; exit 1; }
' sh "$work"
echo "docker/ci.sh: ssh root@algo-1 with the image's key and config: ok"

echo "== docker/ci.sh: a training job, as \`docker run IMAGE train\` runs it"
"${image_env[@]}" python3 examples/chainer/make_tree.py "$work/opt/ml" --epochs 2 --samples 2000 --code-in-tree >/dev/null
(cd "$work" && "${image_env[@]}" SAGEMAKER_BASE_DIR="$work/opt/ml" PIP_NO_INDEX=1 train) | tee "$work/train.log"
test -f "$work/opt/ml/output/success"
test -s "$work/opt/ml/model/model.npz"
grep -q '^final test accuracy' "$work/train.log"

echo "== docker/ci.sh: two hosts with MPI on the installed layout (smlaunch local)"
"${image_env[@]}" python3 examples/chainer/generate_data.py "$work/data/train" "$work/data/test" --samples 2000 >/dev/null
(cd "$work" && "${image_env[@]}" PIP_NO_INDEX=1 smlaunch local --entry-point "$repo/examples/chainer/train.py" \
   --hyperparameter epochs=1 --channel train=data/train --channel test=data/test --instance-count 2 --job-dir job) \
   | tee "$work/local.log"
tar -tzf "$work/job/model.tar.gz" | grep -qx model.npz
tar -tzf "$work/job/output.tar.gz" | grep -qx success

echo "== docker/ci.sh: that model served, as \`docker run IMAGE serve\` serves it (in a private network namespace)"
cat > "$work/client.py" <<'PY'
import json, sys, time, urllib.request
import numpy as np
base = "http://127.0.0.1:8080"
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
test = np.load(sys.argv[1])
body = json.dumps(test["x"][:4].tolist()).encode()
request = urllib.request.Request(base + "/invocations", data=body,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
predictions = np.array(json.loads(urllib.request.urlopen(request, timeout=60).read()))
assert predictions.shape == (4, 10), predictions.shape
print("docker/ci.sh: serve answered", predictions.shape, "labels", predictions.argmax(axis=1).tolist(),
      "expected", test["y"][:4].tolist())
PY
"${image_env[@]}" PIP_NO_INDEX=1 WORK="$work" REPO="$repo" unshare --net sh -c '
  ip link set lo up
  smlaunch serve --base-dir "$WORK/srv" --model-data "$WORK/job/model.tar.gz" --program train.py \
    --submit-directory "$REPO/examples/chainer" --workers 1 --port 8080 & server=$!
  python3 "$WORK/client.py" "$WORK/data/test/test.npz"; rc=$?
  kill -TERM $server; wait $server || rc=1
  exit $rc'
echo "docker/ci.sh: ok"
