#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan) in build-fuzz/ and
# run each over its corpus for SECONDS seconds (default 20; `scripts/fuzz.sh 600` for a
# long developer run). Exits non-zero when any target finds a crash, a leak, a UBSan
# report, a failed property, a timeout or an out-of-memory input; the input is saved
# under build-fuzz/fuzz-artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 60 fuzz_json
#
# The seed corpora (tests/fuzz/corpus/<target>/) are only read; what the fuzzers learn
# is kept in build-fuzz/fuzz-corpus/<target>/ for the next run. To replay one input:
#   build-fuzz/bin/<target> FILE
# SMLAUNCH_FUZZ_KEEP_GOING=1 fuzzes on after a crash (libFuzzer's -fork=1
# -ignore_crashes=1), saving every crashing input: for long runs past a known bug. The
# run still fails when any input was saved.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-20}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 64
fi
shift $(($# > 0 ? 1 : 0))
ALL_TARGETS=(fuzz_json fuzz_hyperparameters fuzz_config fuzz_archive_paths)
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=("${ALL_TARGETS[@]}"); fi
BUILD_DIR="${SMLAUNCH_FUZZ_BUILD_DIR:-build-fuzz}"

# Longest input per target: JSON up to a 4301-digit integer; three config files; a
# member name and a link target.
max_len() {
  case "$1" in
    fuzz_json | fuzz_hyperparameters) echo 8192 ;;
    fuzz_config) echo 16384 ;;
    fuzz_archive_paths) echo 512 ;;
    *) echo "scripts/fuzz.sh: unknown target $1 (known: ${ALL_TARGETS[*]})" >&2; exit 64 ;;
  esac
}
dict_for() { echo "tests/fuzz/dict/${1#fuzz_}.dict"; }
for t in "${TARGETS[@]}"; do max_len "$t" >/dev/null; done


scripts/install-packages.sh build fuzz
CC_BIN="$(command -v clang-14 || command -v clang)"
CXX_BIN="$(command -v clang++-14 || command -v clang++)"

echo "fuzz: configuring $BUILD_DIR with $CXX_BIN"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN" \
  -DSMLAUNCH_BUILD_TESTS=OFF -DSMLAUNCH_BUILD_FUZZERS=ON >"$BUILD_DIR.configure.log" 2>&1 ||
  { cat "$BUILD_DIR.configure.log" >&2; exit 1; }
rm -f "$BUILD_DIR.configure.log"
cmake --build "$BUILD_DIR" --target "${TARGETS[@]}"

# Sanitizer reports are fatal (UBSan is built with -fno-sanitize-recover=all too).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  corpus="$BUILD_DIR/fuzz-corpus/$t"
  artifacts="$BUILD_DIR/fuzz-artifacts/$t"
  log="$BUILD_DIR/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s (max_len $(max_len "$t")), log $log"
  marker="$artifacts/.started"
  touch "$marker"
  keep_going=()
  if [ "${SMLAUNCH_FUZZ_KEEP_GOING:-0}" = 1 ]; then
    keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  rc=0
  start=$(date +%s)
  # New inputs go to the first corpus dir (build-fuzz/), never into the seed corpus.
  "$BUILD_DIR/bin/$t" -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$t")" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -dict="$(dict_for "$t")" \
    -artifact_prefix="$artifacts/" "${keep_going[@]}" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  last="$(grep -aE '^#[0-9]+' "$log" | tail -1 || true)"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  if [ -z "$runs" ]; then # fork mode prints no final stats: take the last status line
    runs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")"
    if [ -n "$runs" ] && [ "$elapsed" -gt 0 ]; then speed=$((runs / elapsed)); fi
  fi
  cov="$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1, ft \2/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([0-9]*\(\/[0-9]*[a-zA-Z]*\)\{0,1\}\).*/corpus \1/p' <<<"$last")"
  line="$t: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-cov ?}, ${corp:-corpus ?}"
  mapfile -t saved < <(find "$artifacts" -type f -newer "$marker" | sort)
  if [ "$rc" -ne 0 ] || [ ${#saved[@]} -gt 0 ]; then
    line="$line: FAILED (exit $rc, ${#saved[@]} input(s) saved)"
    failed+=("$t")
    if [ ${#keep_going[@]} -eq 0 ]; then
      echo "---- $t: last lines of $log" >&2
      tail -n 60 "$log" >&2
    fi
    # Replay each saved input for its first report line (what failed, in one line).
    echo "---- $t: saved inputs and what each one triggers:" >&2
    for f in "${saved[@]}"; do
      what="$("$BUILD_DIR/bin/$t" "$f" 2>&1 | grep -a -m1 -E 'FUZZ PROPERTY FAILED|ERROR: (Address|Leak)Sanitizer|runtime error|ERROR: libFuzzer|terminate called|uncaught exception' || true)"
      echo "  $f: ${what:0:300}" >&2
    done
  fi
  echo "fuzz: $line"
  summary+=("$line")
done

echo "fuzz: summary (${SECONDS_PER_TARGET}s per target)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under $BUILD_DIR/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz: no crash, leak, UBSan report or failed property"
