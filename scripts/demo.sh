#!/usr/bin/env bash
# make demo: the whole StepProof story in under a minute.
#
#   1. start stepproofd with its defaults (embedded model, CPU engine, SQLite,
#      a fresh signing key) on a free loopback port with a temporary data dir
#   2. ask it an arithmetic question; watch each reasoning step arrive, each
#      one committed to a Merkle tree and signed as it is produced
#   3. export one step's proof bundle and verify it offline, with nothing but
#      the server's public key
#   4. show that a tampered copy fails, and (when /usr/bin/python3 has
#      `cryptography`) check the bundle with the independent Python verifier
#   5. check the whole trace, then see it land in the append-only log
#   6. play a dishonest operator (a copy of the log, same key, another trace)
#      and watch the monitor catch the two histories
# The server is stopped on every exit path.
#
# usage: scripts/demo.sh [BUILD_DIR]   (default: build)
#   STEPPROOF_DEMO_MODEL=PATH.gguf serves that model instead of the embedded one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
BIN="$BUILD/bin"
STEPPROOFD="$BIN/stepproofd"
SP="$BIN/stepproof"
AUDIT="$BIN/stepproof-audit"
PY=/usr/bin/python3
QUESTION="What is 478 + 854?"

for b in "$STEPPROOFD" "$SP" "$AUDIT"; do
  if [[ ! -x "$b" ]]; then
    echo "demo: $b is missing; build first (make build, or make demo)" >&2
    exit 2
  fi
done
if [[ ! -x "$PY" ]]; then
  echo "demo: needs $PY (scripts/install-deps.sh installs it)" >&2
  exit 2
fi

if [[ -t 1 ]]; then
  B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
  B="" G="" R="" D="" N=""
fi
STEP=0
chapter() { STEP=$((STEP + 1)); printf '\n%s== %d. %s%s\n' "$B" "$STEP" "$*" "$N"; }
say() { printf '%s\n' "$*"; }
run() { printf '%s$ %s%s\n' "$D" "$*" "$N"; "$@"; }
# Shows a command with short names for the binaries and temp paths.
show() { printf '%s$ %s%s\n' "$D" "$*" "$N"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepproof-demo.XXXXXX")
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if ((rc != 0)) && [[ -f "$WORK/server.err" ]]; then
    echo "--- demo failed (exit $rc); stepproofd's last log lines:" >&2
    tail -n 15 "$WORK/server.err" >&2
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server [flags...]: starts stepproofd on $DATA_DIR, sets SERVER_PID
# and ADDR.
DATA_DIR="$WORK/data"
start_server() {
  : >"$WORK/server.out"
  "$STEPPROOFD" --data-dir "$DATA_DIR" --listen 127.0.0.1:0 "$@" \
    >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 1200); do
    ADDR=$(sed -n 's/^listening on \(.*\)$/\1/p' "$WORK/server.out" | head -n1)
    [[ -n "$ADDR" ]] && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      return 1
    fi
    sleep 0.1
  done
  echo "demo: stepproofd did not start listening within 120 s" >&2
  return 1
}

stop_demo_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}

START=$SECONDS
chapter "Start the server"
say "stepproofd with its defaults: the embedded model on the CPU engine, an SQLite"
say "store and a signing key it creates on first start, in a temporary data dir,"
say "on a free loopback port."
show "stepproofd --data-dir $WORK/data --listen 127.0.0.1:0${STEPPROOF_DEMO_MODEL:+ --model $STEPPROOF_DEMO_MODEL}"
MAX_TOKENS=512
MODEL_FLAGS=()
if [[ -n "${STEPPROOF_DEMO_MODEL:-}" ]]; then
  MODEL_FLAGS=(--model "$STEPPROOF_DEMO_MODEL")
fi
if ! start_server "${MODEL_FLAGS[@]}"; then
  if ((${#MODEL_FLAGS[@]} == 0)) && grep -q "no embedded model" "$WORK/server.err" &&
     [[ -x "$BUILD/tests/e2e_tiny_model" ]]; then
    say "${R}This build has no embedded model (models/stepproof-arith.gguf was missing"
    say "when it was built). Going on with a tiny RANDOM model: its words are noise,"
    say "but every proof below is real.${N}"
    "$BUILD/tests/e2e_tiny_model" "$WORK/tiny.gguf"
    MAX_TOKENS=48
    MODEL_FLAGS=(--model "$WORK/tiny.gguf")
    start_server "${MODEL_FLAGS[@]}" || { echo "demo: stepproofd failed to start" >&2; exit 1; }
  else
    echo "demo: stepproofd failed to start:" >&2
    tail -n 15 "$WORK/server.err" >&2
    exit 1
  fi
fi
S=(--server "$ADDR")
say "listening on $ADDR"
"$SP" "${S[@]}" key >"$WORK/vkey.txt"
say "its public (verifier) key, all an auditor needs later:"
say "  $(cat "$WORK/vkey.txt")"

chapter "Ask a question; every reasoning step is committed as it is produced"
say "Each step below is a leaf of the trace's Merkle tree; the server signed a"
say "checkpoint of the tree after each one, so even a client cut off mid-stream"
say "holds proof of what it received."
show "stepproof generate --prompt \"$QUESTION\" --greedy --out trace.json"
"$SP" "${S[@]}" generate --prompt "$QUESTION" --greedy --max-tokens "$MAX_TOKENS" \
  --out "$WORK/trace.json"

read -r TRACE_ID LAST LAST_KIND < <("$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))
s = t["steps"][-1]
print(t["trace_id"], s["index"], s["kind"])' "$WORK/trace.json")

chapter "Export one step's proof bundle"
say "Step $LAST (the $LAST_KIND) as a self-contained JSON file: the step record and"
say "its salt, its Merkle inclusion proof and the signed trace checkpoint."
show "stepproof proof --trace $TRACE_ID --step $LAST --out bundle.json"
"$SP" "${S[@]}" proof --trace "$TRACE_ID" --step "$LAST" --out "$WORK/bundle.json" >/dev/null
"$PY" -c '
import json, sys
b = json.load(open(sys.argv[1]))
r = b["record"]
print("  record: trace %s, index %d, kind %s, text %s" % (r["trace_id"], r["index"], r["kind"], json.dumps(r.get("text", ""))[:60]))
print("  inclusion proof: %d hashes; trace checkpoint: %s" % (len(b["inclusion_proof"]), b["trace_checkpoint"].split("\n")[1] + " leaves, signed"))' "$WORK/bundle.json"

chapter "Verify it offline, with only the verifier key"
show "stepproof-audit verify bundle.json --key @vkey.txt"
"$AUDIT" verify "$WORK/bundle.json" --key "@$WORK/vkey.txt"
say "${G}exit status 0: verified${N}"

chapter "Tamper with a copy: change the step's text"
"$PY" - "$WORK/bundle.json" "$WORK/tampered.json" <<'PYEOF'
import json, re, sys
b = json.load(open(sys.argv[1]))
text = b["record"].get("text", "")
m = re.search(r"\d(?=\D*$)", text)
if m:  # change the last digit, e.g. the answer
    d = m.group(0)
    new = text[:m.start()] + str((int(d) + 1) % 10) + text[m.end():]
else:
    new = text + "!"
b["record"]["text"] = new
json.dump(b, open(sys.argv[2], "w"), indent=2, ensure_ascii=False)
print("  text was: %s" % json.dumps(text, ensure_ascii=False))
print("  now:      %s" % json.dumps(new, ensure_ascii=False))
PYEOF
show "stepproof-audit verify tampered.json --key @vkey.txt"
rc=0
"$AUDIT" verify "$WORK/tampered.json" --key "@$WORK/vkey.txt" || rc=$?
if ((rc == 1)); then
  say "${G}exit status 1: the tampered copy is rejected, and the message says which check failed${N}"
else
  say "${R}unexpected exit status $rc for the tampered copy${N}"
  exit 1
fi

if "$PY" -c "import cryptography" 2>/dev/null && [[ -f "$ROOT/clients/python/stepproof_verify.py" ]]; then
  chapter "A second opinion: the independent Python verifier"
  say "Written from docs/FORMAT.md alone, sharing no code with the C++ verifier."
  show "python3 clients/python/stepproof_verify.py --key-file vkey.txt bundle.json"
  "$PY" "$ROOT/clients/python/stepproof_verify.py" --key-file "$WORK/vkey.txt" "$WORK/bundle.json"
  rc=0
  "$PY" "$ROOT/clients/python/stepproof_verify.py" --key-file "$WORK/vkey.txt" \
    "$WORK/tampered.json" >"$WORK/py_tampered.out" 2>&1 || rc=$?
  if ((rc == 1)); then
    say "${G}and it rejects the tampered copy too:${N} $(head -n1 "$WORK/py_tampered.out")"
  else
    say "${R}the Python verifier returned $rc for the tampered copy${N}"
    exit 1
  fi
fi

chapter "Check the whole trace, and find it in the append-only log"
say "The trace file holds every step and its bundle: verify-trace checks each one"
say "and that the final signed checkpoint commits to exactly these steps, no more,"
say "no fewer, in this order."
show "stepproof-audit verify-trace trace.json --key @vkey.txt"
"$AUDIT" verify-trace "$WORK/trace.json" --key "@$WORK/vkey.txt" >"$WORK/vt.out"
head -n 1 "$WORK/vt.out"
grep -E "^  (every step|inclusion promise|log inclusion)" "$WORK/vt.out"
say "Sealed traces are leaves of one global append-only log, whose signed"
say "checkpoint (a C2SP tlog-checkpoint) anyone can fetch, keep and later compare"
say "(stepproof-audit consistency / watch): the operator cannot rewrite history"
say "without being caught."
show "stepproof checkpoint"
"$SP" "${S[@]}" checkpoint | sed 's/^./  &/'

chapter "An operator who shows two histories is caught"
say "Play a dishonest operator: keep a secret copy of the log (same signing key),"
say "let the original record one trace and the copy another. A monitor that saw"
say "the original checks what the copy shows against it."
stop_demo_server
cp -a "$WORK/data" "$WORK/data-fork"
# fork_step DATA_DIR QUESTION: serve DATA_DIR, ask QUESTION, run the monitor.
fork_step() {
  DATA_DIR=$1
  start_server "${MODEL_FLAGS[@]}" || { echo "demo: stepproofd failed to restart" >&2; exit 1; }
  S=(--server "$ADDR")
  show "stepproof generate --prompt \"$2\"   # on ${1##*/}"
  "$SP" "${S[@]}" generate --prompt "$2" --greedy --max-tokens "$MAX_TOKENS" \
    --out "$WORK/fork-trace.json" >/dev/null
  show "stepproof-audit watch --key @vkey.txt --count 1 --state monitor.note"
  WATCH_RC=0
  "$AUDIT" watch "${S[@]}" --key "@$WORK/vkey.txt" --interval 0 --count 1 \
    --state "$WORK/monitor.note" >"$WORK/watch.out" 2>&1 || WATCH_RC=$?
  { grep -v "^resuming" "$WORK/watch.out" || true; } | head -n 1 | sed "s/^/  /"
  stop_demo_server
}
fork_step "$WORK/data" "What is 12 + 30?"
((WATCH_RC == 0)) || { echo "demo: the monitor failed on the honest log" >&2; exit 1; }
fork_step "$WORK/data-fork" "What is 2 + 2?"
if ((WATCH_RC == 1)); then
  say "${G}exit status 1: both checkpoints carry the server's signature, so together"
  say "they prove the operator signed two different histories${N}"
else
  say "${R}unexpected exit status $WATCH_RC from the monitor${N}"
  exit 1
fi

chapter "Done"
say "done in $((SECONDS - START)) s. Try it yourself: docs/CLI.md"
say "  $BIN/stepproofd &      # then wait for its 'listening on 127.0.0.1:7700' line"
say "  $BIN/stepproof generate --prompt \"What is 12 + 30?\" --out trace.json"
say "  $BIN/stepproof key > vkey.txt"
say "  $BIN/stepproof-audit verify-trace trace.json --key @vkey.txt"
