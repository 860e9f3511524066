#!/usr/bin/env bash
# Set up, build, and run the example Chainer job end to end on a fake SageMaker tree.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

tree="$(mktemp -d /tmp/smlaunch-demo.XXXXXX)"
echo
echo "demo: writing a fake SageMaker tree under $tree (as the SageMaker Python SDK would)"
.venv/bin/python examples/chainer/make_tree.py "$tree" --epochs 5
echo "demo: $ build/bin/smlaunch train --base-dir $tree --python .venv/bin/python"
echo
set +e
build/bin/smlaunch train --base-dir "$tree" --python "$PWD/.venv/bin/python" | tee "$tree/stdout.log"
status=${PIPESTATUS[0]}
set -e
echo
echo "demo: smlaunch exited with status $status"
echo "demo: model:   $(ls -l "$tree/model/model.npz" | awk '{print $5 " bytes"}') in $tree/model/model.npz"
echo "demo: outcome: $(ls "$tree/output" | grep -E '^(success|failure)$')"
grep -E '^final test accuracy' "$tree/stdout.log" | sed 's/^/demo: /'
exit "$status"
