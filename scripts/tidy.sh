#!/usr/bin/env bash
# Run clang-tidy (.clang-tidy at the top), then check .clang-format's layout, over every first-party .cpp file in base/, env/,
# fetch/, launcher/, local/, mpi/, process/ and serve/; fails on any warning. Works from a
# clean clone: installs clang-tidy and
# the C++ build dependencies when missing, then configures build-tidy/ for its
# compile_commands.json (configuring is enough: no source is generated, nothing is built).
#   scripts/tidy.sh                      # everything
#   scripts/tidy.sh launcher/cli.cpp     # just these files
#   TIDY_JOBS=4 scripts/tidy.sh          # parallel clang-tidy processes (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
build_dir="build-tidy"
jobs="${TIDY_JOBS:-2}"


scripts/install-packages.sh build tidy

# Tests are not checked, so they are not configured (no GTest needed).
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DSMLAUNCH_BUILD_TESTS=OFF >/dev/null
db="$build_dir/compile_commands.json"

# The files to check: those given, else every .cpp under base/, env/, fetch/, launcher/, local/, mpi/, process/ and serve/ (not
# tests/; mpi/hostname_shim.c is C and not checked). Each must be in the compilation
# database, so that none is checked with guessed flags or silently skipped.
if [ $# -gt 0 ]; then
  files=()
  for f in "$@"; do
    f="${f#"$root"/}"
    files+=("${f#./}")
  done
else
  mapfile -t files < <(find base env fetch launcher local mpi process serve -name '*.cpp' -type f | sort)
fi
for f in "${files[@]}"; do
  if ! grep -qF "\"file\": \"$root/$f\"" "$db"; then
    echo "tidy: $f is not in $db (not part of any target?)" >&2
    exit 1
  fi
done

echo "tidy: clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p') on ${#files[@]} files, $jobs at a time"
log="$build_dir/clang-tidy.log"
rc=0
if command -v run-clang-tidy >/dev/null; then
  # run-clang-tidy takes regular expressions: match exactly these paths.
  regexes=()
  for f in "${files[@]}"; do regexes+=("^$(printf '%s' "$root/$f" | sed 's/[.[\*^$()+?{|]/\\&/g')\$"); done
  # (it always passes --use-color: the colours are taken out of the log)
  run-clang-tidy -quiet -j "$jobs" -p "$build_dir" "${regexes[@]}" 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g' >"$log" || rc=$?
else
  printf '%s\n' "${files[@]}" |
    xargs -P "$jobs" -n 1 clang-tidy --quiet -p "$build_dir" >"$log" 2>&1 || rc=$?
fi
# WarningsAsErrors makes clang-tidy fail on any finding; a warning that somehow is not an
# error fails the run too.
if [ "$rc" -ne 0 ] || grep -qE '(warning|error): ' "$log"; then
  grep -vE '^(clang-tidy|/usr/bin/clang-tidy|[0-9]+ warnings? (and [0-9]+ errors? )?generated|Suppressed [0-9]+ warnings|Use -header-filter|Error while processing)' "$log" >&2 || true
  echo "tidy: FAILED after ${SECONDS} s (full output: $log)" >&2
  exit 1
fi
echo "tidy: clean (${SECONDS} s)"

# .clang-format is the layout: every first-party source and header must already be in it
# (only when checking everything; `clang-format -i <file>` fixes one).
if [ $# -eq 0 ]; then
  mapfile -t sources < <(find base env fetch launcher local mpi process serve \( -name '*.cpp' -o -name '*.hpp' \) -type f | sort)
  unformatted=()
  for f in "${sources[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
  done
  if [ ${#unformatted[@]} -gt 0 ]; then
    echo "tidy: not formatted as .clang-format says (run: clang-format -i FILE): ${unformatted[*]}" >&2
    exit 1
  fi
  echo "tidy: clang-format $(clang-format --version | sed -n 's/.*version \([0-9.]*\).*/\1/p'): ${#sources[@]} files formatted"
fi
