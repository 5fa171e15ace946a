#!/usr/bin/env bash
# Runs the quick benchmarks (a few minutes in all) whose figures are recorded
# in docs/PERFORMANCE.md. The long ones (10M-leaf proofs, the 1.9 GB
# R1-Distill-shaped model, the load generator) are run by hand with the
# commands given in docs/PERFORMANCE.md.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
B=$BUILD/bench
need() { [[ -x $B/$1 ]] || { echo "bench: $B/$1 is missing; run 'make build' first" >&2; exit 2; }; }
echo "load: $(uptime)"
need merkle_bench
echo "== merkle (one core)"; taskset -c 0 "$B/merkle_bench" --benchmark_min_time=0.5
need provenance_log_bench
echo "== provenance log: integration into SQLite";  "$B/provenance_log_bench" --mode=integrate --traces=100000
echo "== provenance log: proofs at 1M leaves";     "$B/provenance_log_bench" --mode=proofs --leaves=1000000
echo "== provenance log: bundle verification";     "$B/provenance_log_bench" --mode=verify
if [[ -x $B/provenance_overhead_bench ]]; then
  echo "== provenance overhead at the embedded model"; "$B/provenance_overhead_bench"
fi
echo "done; compare with docs/PERFORMANCE.md"
