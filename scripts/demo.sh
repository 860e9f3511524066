#!/usr/bin/env bash
# Set up, build, and run the example Chainer job end to end with `smlaunch local`: two
# simulated hosts (algo-1, algo-2, each in its own network namespace) training with
# ChainerMN over MPI, then model.tar.gz and output.tar.gz. Several hosts need root; as
# another user the same job runs on one host.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

work="$(mktemp -d /tmp/smlaunch-demo.XXXXXX)"
hosts=2
if [ "$(id -u)" != 0 ]; then
  hosts=1
  echo "demo: not root, so one host (several hosts need network namespaces: run as root for two)"
fi
echo
echo "demo: generating the example's data under $work/data"
.venv/bin/python examples/chainer/generate_data.py "$work/data/train" "$work/data/test" >/dev/null
command=(build/bin/smlaunch local --entry-point examples/chainer/train.py --python "$PWD/.venv/bin/python"
         --hyperparameter epochs=3 --channel "train=$work/data/train" --channel "test=$work/data/test"
         --instance-count "$hosts" --processes-per-host 2 --job-dir "$work/job")
echo "demo: \$ ${command[*]}"
echo
set +e
"${command[@]}" | tee "$work/stdout.log"
status=${PIPESTATUS[0]}
set -e
echo
echo "demo: smlaunch local exited with status $status"
echo "demo: model:  $work/job/model.tar.gz: $(tar -tzf "$work/job/model.tar.gz" | tr '\n' ' ')"
echo "demo: output: $work/job/output.tar.gz: $(tar -tzf "$work/job/output.tar.gz" | grep -E '^(success|failure|data/metrics.json)$' | tr '\n' ' ')"
grep -E 'final test accuracy' "$work/stdout.log" | sed 's/^/demo: /'
exit "$status"
