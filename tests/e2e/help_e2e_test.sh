#!/usr/bin/env bash
# Every program the build puts in BIN_DIR and BENCH_DIR answers --help with
# exit status 0 and a usage text on stdout.
#   help_e2e_test.sh BIN_DIR BENCH_DIR
set -uo pipefail
bin_dir="$1"
bench_dir="$2"
failures=0
checked=0
for prog in "$bin_dir"/* "$bench_dir"/*; do
  [[ -f "$prog" && -x "$prog" ]] || continue
  name="$(basename "$prog")"
  for flag in --help; do
    out="$(timeout 60 "$prog" "$flag" 2>/dev/null)"
    rc=$?
    checked=$((checked + 1))
    if [[ $rc -ne 0 ]]; then
      echo "FAIL: $name $flag exited with $rc" >&2
      failures=$((failures + 1))
    elif ! grep -qiE "usage|$name|benchmark" <<<"$out"; then
      echo "FAIL: $name $flag printed no usage on stdout: '${out:0:200}'" >&2
      failures=$((failures + 1))
    fi
  done
done
if [[ $checked -lt 4 ]]; then
  echo "FAIL: only $checked runs: are $bin_dir and $bench_dir the build's folders?" >&2
  exit 1
fi
echo "help_e2e_test: $checked runs, $failures failures"
[[ $failures -eq 0 ]]
