#!/usr/bin/env bash
# The SageMaker SDK's local mode against smlaunch local / smlaunch serve (bench_sdk_local.py):
# starts the private Docker engine, builds the CPU image when it is missing (docker/ci.sh
# builds it too), installs the SDK's test-only venv, then prints the table. Root.
#   bench/sdk_local.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
image="${SMLAUNCH_IMAGE:-smlaunch-chainer:cpu}"
./scripts/setup.sh >/dev/null
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSMLAUNCH_BUILD_TESTS=OFF >/dev/null
cmake --build build-release >/dev/null
docker/engine.sh start >/dev/null
trap 'docker/engine.sh stop >/dev/null' EXIT
eval "$(docker/engine.sh env)"
if ! /usr/bin/docker image inspect "$image" >/dev/null 2>&1; then
  docker/engine.sh base >/dev/null
  /usr/bin/docker build -q --network host -f docker/Dockerfile -t "$image" . >/dev/null
fi
if ! .cache/sdk/bin/python -c "import sagemaker, sys; sys.exit(sagemaker.__version__ != '2.257.6')" 2>/dev/null; then
  rm -rf .cache/sdk && /usr/bin/python3 -m venv .cache/sdk
  PIP_CACHE_DIR="$PWD/.cache/pip" .cache/sdk/bin/python -m pip install -q --disable-pip-version-check sagemaker==2.257.6
fi
bin="$(mktemp -d)"; ln -s /usr/bin/docker "$bin/docker"
PATH="$bin:$PATH" .cache/sdk/bin/python bench/bench_sdk_local.py "$PWD/build-release/bin/smlaunch" "$PWD/.venv/bin/python" "$image" "$@" \
  > "$bin/bench.log" 2>&1 || { tail -40 "$bin/bench.log" >&2; exit 1; }
sed -n '/^| run | way |/,$p' "$bin/bench.log"   # the SDK prints its containers' logs before
rm -rf "$bin"
