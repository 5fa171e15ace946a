#!/usr/bin/env bash
# `stepproof-audit verify --rpc --contract` against a real local chain: the
# real stepproofd, anvil (from clients/anchor/node_modules) and engineer A's
# deploy.js / anchor.js. A bundle whose log checkpoint was anchored verifies
# on chain (exit 0); a bundle of a trace logged after the anchor is "not
# anchored" (exit 1); an address with no contract fails (exit 1); an
# unreachable node is an I/O error (exit 2).
#
# usage: anchor_e2e_test.sh BIN_DIR TESTS_BIN_DIR SOURCE_DIR
# Exits 77 (skipped) when node or the anvil package is not installed.
set -euo pipefail

BIN_DIR=${1:?usage: anchor_e2e_test.sh BIN_DIR TESTS_BIN_DIR SOURCE_DIR}
TESTS_BIN_DIR=${2:?}
SOURCE_DIR=${3:?}
STEPPROOFD=$BIN_DIR/stepproofd
SP=$BIN_DIR/stepproof
AUDIT=$BIN_DIR/stepproof-audit
ANCHOR_DIR=$SOURCE_DIR/clients/anchor
ANVIL=$ANCHOR_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
# shellcheck source=server_lib.sh
source "$HERE/server_lib.sh"

if ! command -v node >/dev/null || [[ ! -x "$ANVIL" ]]; then
  echo "SKIP: needs node and clients/anchor/node_modules (anvil)"
  exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepproof-e2e-anchor.XXXXXX")
ANVIL_PID=""
cleanup() {
  local rc=$?
  stop_server
  if [[ -n "$ANVIL_PID" ]]; then
    kill -TERM "$ANVIL_PID" 2>/dev/null || true
    wait "$ANVIL_PID" 2>/dev/null || true
  fi
  if ((rc != 0 && rc != 77)); then
    echo "--- FAILED (exit $rc); server stderr tail:" >&2
    tail -n 20 "$WORK"/server*.err 2>/dev/null >&2 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# --- stepproofd (embedded model, or a tiny random one)
MODEL_FLAGS=()
if ! start_server "$WORK/data" "$WORK/server0"; then
  grep -q "no embedded model" "$WORK/server0.err" || die "stepproofd failed to start"
  "$TESTS_BIN_DIR/e2e_tiny_model" "$WORK/tiny.gguf"
  MODEL_FLAGS=(--model "$WORK/tiny.gguf" --max-tokens 40)
  start_server "$WORK/data" "$WORK/server1" "${MODEL_FLAGS[@]}" || die "stepproofd failed to start"
fi
S=(--server "$SERVER_ADDR")
VKEY=$("$SP" "${S[@]}" key)
pass "stepproofd on $SERVER_ADDR"

# --- a local chain
"$ANVIL" --host 127.0.0.1 --port 0 --accounts 3 >"$WORK/anvil.out" 2>&1 &
ANVIL_PID=$!
RPC=""
for _ in $(seq 1 200); do
  PORT=$(sed -n 's/.*Listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/anvil.out" | head -n1)
  if [[ -n "$PORT" ]]; then RPC="http://127.0.0.1:$PORT"; break; fi
  kill -0 "$ANVIL_PID" 2>/dev/null || die "anvil exited: $(cat "$WORK/anvil.out")"
  sleep 0.1
done
[[ -n "$RPC" ]] || die "anvil did not start"
# anvil's well-known first development account (never a real key).
( umask 077; echo 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 >"$WORK/anchor.key" )
ORIGIN=$(echo "$VKEY" | cut -d+ -f1)
expect_exit 0 "$WORK/deploy.out" node "$ANCHOR_DIR/bin/deploy.js" --rpc "$RPC" \
  --key-file "$WORK/anchor.key" --origin "$ORIGIN" --out "$WORK/deployment.json"
CONTRACT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["contract"])' "$WORK/deployment.json")
[[ "$CONTRACT" =~ ^0x[0-9a-fA-F]{40}$ ]] || die "no contract address in deployment.json"
pass "RootAnchor deployed at $CONTRACT on $RPC"

# --- a trace, logged, then the log anchored
expect_exit 0 "$WORK/gen1.out" "$SP" "${S[@]}" generate --prompt "What is 478 + 854?" \
  --seed 1 --wait-log 60 --out "$WORK/trace1.json"
TRACE1=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["trace_id"])' "$WORK/trace1.json")
contains "$WORK/gen1.out" "with the trace's inclusion in the global log"
expect_exit 0 "$WORK/anchor.out" node "$ANCHOR_DIR/bin/anchor.js" "${S[@]}" --key "$VKEY" \
  --rpc "$RPC" --contract "$CONTRACT" --key-file "$WORK/anchor.key"
contains "$WORK/anchor.out" "recorded in stepproofd"
expect_exit 0 "$WORK/p1.out" "$SP" "${S[@]}" proof --trace "$TRACE1" --step 0 --out "$WORK/b1.json"
pass "trace $TRACE1 logged and the log anchored"

expect_exit 0 "$WORK/v1.out" "$AUDIT" verify "$WORK/b1.json" --key "$VKEY" --rpc "$RPC" \
  --contract "$CONTRACT"
contains "$WORK/v1.out" "chain anchor: the log checkpoint of size"
contains "$WORK/v1.out" "is the root anchored on contract $CONTRACT"
expect_exit 0 "$WORK/v1b.out" "$AUDIT" verify "$WORK/b1.json" --key "$VKEY" --rpc "$RPC"
contains "$WORK/v1b.out" "pass --contract with an address you trust"
expect_exit 0 "$WORK/v1j.out" "$AUDIT" --json verify "$WORK/b1.json" --key "$VKEY" --rpc "$RPC" \
  --contract "$CONTRACT"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["chain_anchor"]["verified"] is True' \
  "$WORK/v1j.out" || die "--json lacks chain_anchor"
pass "verify --rpc: the bundle's log checkpoint is anchored on chain"

# --- a trace logged after the anchor: its log checkpoint is not anchored
expect_exit 0 "$WORK/gen2.out" "$SP" "${S[@]}" generate --prompt "What is 5 + 9?" \
  --seed 2 --wait-log 60 --out "$WORK/trace2.json"
contains "$WORK/gen2.out" "with the trace's inclusion in the global log"
TRACE2=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["trace_id"])' "$WORK/trace2.json")
expect_exit 0 "$WORK/p2.out" "$SP" "${S[@]}" proof --trace "$TRACE2" --step 0 --out "$WORK/b2.json"
expect_exit 0 "$WORK/v2off.out" "$AUDIT" verify "$WORK/b2.json" --key "$VKEY"
expect_exit 1 "$WORK/v2.out" "$AUDIT" verify "$WORK/b2.json" --key "$VKEY" --rpc "$RPC" \
  --contract "$CONTRACT"
contains "$WORK/v2.out" "NOT VERIFIED"
contains "$WORK/v2.out" "not anchored"
pass "a bundle whose log checkpoint is not anchored: exit 1, not anchored"

# --- wrong address, unreachable node, flags
expect_exit 1 "$WORK/v3.out" "$AUDIT" verify "$WORK/b1.json" --key "$VKEY" --rpc "$RPC" \
  --contract 0x00000000000000000000000000000000000000aa
contains "$WORK/v3.out" "NOT VERIFIED"
expect_exit 2 "$WORK/v4.out" "$AUDIT" verify "$WORK/b1.json" --key "$VKEY" \
  --rpc http://127.0.0.1:1 --contract "$CONTRACT"
expect_exit 2 "$WORK/v5.out" "$AUDIT" verify "$WORK/b1.json" --key "$VKEY" --contract "$CONTRACT"
contains "$WORK/v5.out" "--contract needs --rpc"
pass "no contract at the address: exit 1; unreachable node and --contract alone: exit 2"

stop_server
echo "all $CHECKS checks passed"
