#!/usr/bin/env bash
# The start-up suite of bench_launcher.py inside the CPU image, where the launcher runs in a
# real job: the image's Python (its venv), PATH and file system, with this checkout's Release
# smlaunch and Debian's tini mounted in.
#   bench/startup_in_image.sh [bench_launcher.py options, e.g. --runs 1000 --cpu 1]
#   SMLAUNCH_BEFORE=/path/to/old/smlaunch bench/startup_in_image.sh ...   (times it beside, as --before)
#   SMLAUNCH_TREES_ON_VOLUME=1 bench/startup_in_image.sh ...   (the /opt/ml trees on a volume, as
#     SageMaker and its local mode mount /opt/ml/input, model and output, not in the overlay)
# Needs root, the Release build (build-release/bin/smlaunch) and the image (docker/ci.sh
# builds it; SMLAUNCH_IMAGE names another). The private engine is stopped again at the end
# when this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${SMLAUNCH_IMAGE:-smlaunch-chainer:cpu}"
smlaunch="$PWD/build-release/bin/smlaunch"
tini="$(command -v tini || true)"   # scripts/install-packages.sh bench
[ -x "$smlaunch" ] || { echo "startup_in_image.sh: build $smlaunch first (bench/run.sh does)" >&2; exit 1; }

started=0
eval "$(docker/engine.sh env)"
if ! /usr/bin/docker version >/dev/null 2>&1; then
  docker/engine.sh start >/dev/null
  started=1
fi
trap '[ "$started" = 0 ] || docker/engine.sh stop >/dev/null' EXIT
if ! /usr/bin/docker image inspect "$image" >/dev/null 2>&1; then
  echo "startup_in_image.sh: no image $image here; SMLAUNCH_DOCKER_KEEP=1 docker/ci.sh builds it" >&2
  exit 1
fi

mounts=(-v "$PWD/bench:/bench:ro" -v "$smlaunch:/usr/local/bin/smlaunch:ro")
before=()
if [ -n "${SMLAUNCH_BEFORE:-}" ]; then
  mounts+=(-v "$(realpath "$SMLAUNCH_BEFORE"):/usr/local/bin/smlaunch-before:ro")
  before=(--before /usr/local/bin/smlaunch-before)
fi
if [ -n "$tini" ]; then
  mounts+=(-v "$tini:/usr/bin/tini:ro")   # a supervisor's floor, as on the host
fi
volume=""
if [ -n "${SMLAUNCH_TREES_ON_VOLUME:-}" ]; then
  volume="$(mktemp -d "${TMPDIR:-/tmp}/smlaunch-bench-volume.XXXXXX")"
  mounts+=(-v "$volume:/volume" -e TMPDIR=/volume)
  trap '[ "$started" = 0 ] || docker/engine.sh stop >/dev/null; rm -rf "$volume"' EXIT
fi
# The image's python3 is its venv's (the PATH of the image); the bench's own trees live in
# the container's /tmp.
/usr/bin/docker run --rm --network none "${mounts[@]}" --entrypoint python3 "$image" \
  /bench/bench_launcher.py /usr/local/bin/smlaunch /opt/smlaunch/venv/bin/python3 --startup-only "${before[@]}" "$@"
