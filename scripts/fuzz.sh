#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, docs/FUZZING.md) with clang into
# build-fuzz and runs each for SECONDS (default 30) on a copy of its seed
# corpus. Fails if any target crashes, leaks, trips a sanitizer or breaks a
# property; the input that did it is left in build-fuzz/fuzz-findings/<name>/.
#
#   scripts/fuzz.sh [SECONDS]            every target
#   FUZZ_TARGETS="note bundle" scripts/fuzz.sh 60
# Environment: BUILD_DIR (build-fuzz), JOBS (2), FUZZ_TARGETS, FUZZ_SEED (libFuzzer
# -seed, for a repeatable run such as CI's; random when unset).
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then usage; exit 0; fi
SECONDS_EACH="${1:-30}"
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || [[ "$SECONDS_EACH" -eq 0 ]]; then
  echo "fuzz.sh: SECONDS must be a positive integer, got '$SECONDS_EACH'" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${JOBS:-2}"
TARGETS="${FUZZ_TARGETS:-gguf tokenizer tokenizer_data note bundle step_record}"
CLANGXX="$(command -v clang++ || command -v clang++-14 || true)"
CLANG="$(command -v clang || command -v clang-14 || true)"
if [[ -z "$CLANGXX" || -z "$CLANG" ]]; then
  echo "fuzz.sh: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi

cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_C_COMPILER="$CLANG" -DCMAKE_CXX_COMPILER="$CLANGXX" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTEPPROOF_FUZZ=ON \
  -DSTEPPROOF_CUDA=OFF -DSTEPPROOF_BUILD_BENCH=OFF >/dev/null
build_targets=()
for t in $TARGETS; do build_targets+=("${t}_fuzzer"); done
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${build_targets[@]}"

WORK="$BUILD_DIR/fuzz-work"
FINDINGS="$BUILD_DIR/fuzz-findings"
mkdir -p "$WORK" "$FINDINGS"
failed=()
for t in $TARGETS; do
  corpus="$WORK/$t"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$FINDINGS/$t"
  cp "$ROOT/tests/fuzz/corpus/$t/"* "$corpus/"
  echo "== $t: ${SECONDS_EACH}s"
  if (cd "$FINDINGS/$t" && \
      ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      "$BUILD_DIR/fuzz/${t}_fuzzer" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        ${FUZZ_SEED:+-seed="$FUZZ_SEED"} "$corpus" >"$WORK/$t.log" 2>&1); then
    grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$WORK/$t.log" || true
  else
    echo "!! $t failed; log: $WORK/$t.log; input in $FINDINGS/$t/" >&2
    tail -n 40 "$WORK/$t.log" >&2
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz.sh: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all targets ran ${SECONDS_EACH}s without a finding"
