#!/usr/bin/env bash
# End to end over real gRPC: the real stepproofd on a free loopback port with
# a temporary data dir; the `stepproof` CLI generates traces and fetches
# bundles; `stepproof-audit` verifies them (and rejects tampered copies with
# exit 1); the server restarts on the same data dir, old bundles still verify,
# the key is unchanged and the log stayed consistent across the restart
# (`stepproof-audit consistency`, `watch`), and a forked copy of the log
# (same key, two histories) is caught by both.
#
# usage: cli_e2e_test.sh BIN_DIR TESTS_BIN_DIR
# (BIN_DIR holds stepproofd, stepproof, stepproof-audit; TESTS_BIN_DIR holds
# e2e_tiny_model, used when the build has no embedded model.)
set -euo pipefail

BIN_DIR=${1:?usage: cli_e2e_test.sh BIN_DIR TESTS_BIN_DIR}
TESTS_BIN_DIR=${2:?usage: cli_e2e_test.sh BIN_DIR TESTS_BIN_DIR}
STEPPROOFD=$BIN_DIR/stepproofd
SP=$BIN_DIR/stepproof
AUDIT=$BIN_DIR/stepproof-audit
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
# shellcheck source=server_lib.sh
source "$HERE/server_lib.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepproof-e2e.XXXXXX")
cleanup() {
  local rc=$?
  stop_server
  if ((rc != 0)); then
    echo "--- FAILED (exit $rc); server stderr tail:" >&2
    tail -n 30 "$WORK"/server*.err 2>/dev/null >&2 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# json_field FILE PYTHON-SUBSCRIPT: prints d<SUBSCRIPT> of the JSON in FILE.
json_field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$@"; }
json_len() { "$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$@"; }

# --- the model: the embedded one, or a tiny random one when not built in
MODEL_FLAGS=()
MAX_TOKENS=300
if ! start_server "$WORK/data" "$WORK/server0"; then
  grep -q "no embedded model" "$WORK/server0.err" || die "stepproofd failed to start"
  "$TESTS_BIN_DIR/e2e_tiny_model" "$WORK/tiny.gguf"
  MODEL_FLAGS=(--model "$WORK/tiny.gguf")
  MAX_TOKENS=40
  echo "# no embedded model in this build: using a tiny random model"
  start_server "$WORK/data" "$WORK/server1" "${MODEL_FLAGS[@]}" || die "stepproofd failed to start"
else
  stop_server  # restart below with the same flags as every later start
  start_server "$WORK/data" "$WORK/server1" || die "stepproofd failed to restart"
fi
S=(--server "$SERVER_ADDR")
pass "stepproofd listening on $SERVER_ADDR"

# --- the key: the CLI's answer equals the line the server printed at start
expect_exit 0 "$WORK/key.out" "$SP" "${S[@]}" key
KEY=$(cat "$WORK/key.out")
PRINTED=$(sed -n 's/^verifier key: //p' "$WORK/server1.out" | head -n1)
[[ -n "$KEY" && "$KEY" == "$PRINTED" ]] || die "stepproof key '$KEY' != server's '$PRINTED'"
printf '%s\n' "$KEY" >"$WORK/vkey.txt"
pass "stepproof key matches the key stepproofd printed"

# --- generate a trace, with its file
expect_exit 0 "$WORK/gen1.out" "$SP" "${S[@]}" generate --prompt "What is 478 + 854?" \
  --seed 7 --max-tokens "$MAX_TOKENS" --wait-log 60 --out "$WORK/trace1.json"
contains "$WORK/gen1.out" "started"
contains "$WORK/gen1.out" "sealed:"
TRACE1=$(json_field "$WORK/trace1.json" '["trace_id"]')
NSTEPS=$(json_len "$WORK/trace1.json" steps)
[[ "$TRACE1" =~ ^[0-9a-f]{32}$ ]] || die "bad trace id '$TRACE1'"
((NSTEPS >= 1)) || die "trace file has no steps"
LAST=$((NSTEPS - 1))
pass "generate wrote trace $TRACE1 with $NSTEPS leaves"

# --- the whole trace verifies offline, with the key inline and as @file
expect_exit 0 "$WORK/vt1.out" "$AUDIT" verify-trace "$WORK/trace1.json" --key "$KEY"
contains "$WORK/vt1.out" "VERIFIED trace $TRACE1"
# generate --out waited for the log (--wait-log): the file's
# bundles carry the trace's log inclusion.
contains "$WORK/vt1.out" "log inclusion: the trace is leaf"
expect_exit 0 "$WORK/vt1b.out" "$AUDIT" verify-trace "$WORK/trace1.json" --key "@$WORK/vkey.txt"
pass "verify-trace accepts the trace file"

# --- one step's bundle: fetched, verified, and what was verified is reported
expect_exit 0 "$WORK/proof.out" "$SP" "${S[@]}" proof --trace "$TRACE1" --step "$LAST" \
  --out "$WORK/b_last.json"
expect_exit 0 "$WORK/v_last.out" "$AUDIT" verify "$WORK/b_last.json" --key "@$WORK/vkey.txt"
contains "$WORK/v_last.out" "VERIFIED step $LAST"
contains "$WORK/v_last.out" "of trace $TRACE1"
got=0; "$AUDIT" verify - --key "$KEY" <"$WORK/b_last.json" >"$WORK/v_stdin.out" 2>&1 || got=$?
[[ $got == 0 ]] || { cat "$WORK/v_stdin.out" >&2; die "verify - (stdin) exited $got"; }
# The step text the auditor reports is the text the generate stream showed.
"$PY" - "$WORK/trace1.json" "$WORK/b_last.json" <<'PYEOF' || die "bundle record differs from the streamed step"
import json, sys
t = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
s = t["steps"][-1]
assert b["record"]["index"] == s["index"], (b["record"]["index"], s["index"])
assert b["record"]["kind"] == s["kind"]
if s["kind"] != "header":
    assert b["record"]["text"] == s["text"]
PYEOF
expect_exit 0 "$WORK/v0.out" "$SP" "${S[@]}" proof --trace "$TRACE1" --step 0 --out "$WORK/b0.json"
expect_exit 0 "$WORK/v0.out" "$AUDIT" verify "$WORK/b0.json" --key "$KEY"
contains "$WORK/v0.out" "prompt:"
contains "$WORK/v0.out" "What is 478 + 854?"
pass "proof bundles of the header and step $LAST verify and say what they commit to"

# --- tampering is caught (exit 1) and named
"$PY" - "$WORK/b_last.json" "$WORK/b_tampered.json" <<'PYEOF'
import json, sys
b = json.load(open(sys.argv[1]))
b["record"]["salt"] = ("0" if b["record"]["salt"][0] != "0" else "1") + b["record"]["salt"][1:]
json.dump(b, open(sys.argv[2], "w"), indent=2)
PYEOF
expect_exit 1 "$WORK/vt.out" "$AUDIT" verify "$WORK/b_tampered.json" --key "$KEY"
contains "$WORK/vt.out" "NOT VERIFIED"
expect_exit 1 "$WORK/vtj.out" "$AUDIT" --json verify "$WORK/b_tampered.json" --key "$KEY"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["verified"] is False and d["error"]' \
  "$WORK/vtj.out" || die "verify --json of a tampered bundle"
"$PY" - "$WORK/trace1.json" "$WORK/trace_tampered.json" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))
r = t["steps"][-1]["bundle"]["record"]
r["salt"] = ("0" if r["salt"][0] != "0" else "1") + r["salt"][1:]
json.dump(t, open(sys.argv[2], "w"))
PYEOF
expect_exit 1 "$WORK/vtt.out" "$AUDIT" verify-trace "$WORK/trace_tampered.json" --key "$KEY"
contains "$WORK/vtt.out" "NOT VERIFIED"
contains "$WORK/vtt.out" "step $LAST:"
# Another server's key (same name, fresh Ed25519 key): the signature check fails.
OTHER_KEY=$("$PY" - "$KEY" <<'PYEOF'
import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
name = sys.argv[1].split("+")[0]
pub = Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
kid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
print("%s+%s+%s" % (name, kid.hex(), base64.b64encode(b"\x01" + pub).decode()))
PYEOF
)
expect_exit 1 "$WORK/vk.out" "$AUDIT" verify "$WORK/b_last.json" --key "$OTHER_KEY"
contains "$WORK/vk.out" "NOT VERIFIED"
# generate checks the stream live against a pinned key: another key fails it.
expect_exit 1 "$WORK/genk.out" "$SP" "${S[@]}" generate --prompt "What is 1 + 1?" \
  --max-tokens "$MAX_TOKENS" --key "$OTHER_KEY" --out "$WORK/never.json"
contains "$WORK/genk.out" "stream does not check"
[[ ! -e "$WORK/never.json" ]] || die "generate wrote a trace file for a stream that does not check"
expect_exit 0 "$WORK/genk2.out" "$SP" "${S[@]}" generate --prompt "What is 1 + 1?" \
  --max-tokens "$MAX_TOKENS" --key "@$WORK/vkey.txt"
contains "$WORK/genk2.out" "signed checkpoints, each committing to exactly the leaves received; key"
contains "$WORK/genk2.out" "(pinned)"
BAD_ID_KEY="$(echo "$KEY" | cut -d+ -f1)+00000000+$(echo "$KEY" | cut -d+ -f3-)"
expect_exit 2 "$WORK/vbad.out" "$AUDIT" verify "$WORK/b_last.json" --key "$BAD_ID_KEY"
contains "$WORK/vbad.out" "does not parse"
expect_exit 2 "$WORK/nokey.out" "$AUDIT" verify "$WORK/b_last.json"
contains "$WORK/nokey.out" "--key is required"
expect_exit 2 "$WORK/nofile.out" "$AUDIT" verify "$WORK/missing.json" --key "$KEY"
expect_exit 2 "$WORK/badflag.out" "$AUDIT" verify "$WORK/b_last.json" --key "$KEY" --frobnicate
contains "$WORK/badflag.out" "unknown flag --frobnicate"
expect_exit 0 "$WORK/help.out" "$AUDIT" --help
contains "$WORK/help.out" "exit status: 0 verified, 1 not verified, 2 usage or I/O error"
expect_exit 0 "$WORK/help2.out" "$SP" --help
contains "$WORK/help2.out" "--withhold-prompt"
expect_exit 2 "$WORK/u1.out" "$SP" "${S[@]}" frobnicate
contains "$WORK/u1.out" "unknown command \"frobnicate\""
expect_exit 2 "$WORK/u2.out" "$SP" "${S[@]}" proof --trace "$TRACE1"
contains "$WORK/u2.out" "proof needs --step N"
expect_exit 2 "$WORK/u3.out" "$SP" "${S[@]}" generate
contains "$WORK/u3.out" "generate needs --prompt"
expect_exit 2 "$WORK/u4.out" "$SP" "${S[@]}" generate --prompt x --seed -1
contains "$WORK/u4.out" "--seed"
expect_exit 1 "$WORK/u5.out" "$SP" --server 127.0.0.1:1 key
contains "$WORK/u5.out" "is stepproofd running there?"
expect_exit 1 "$WORK/u6.out" "$SP" "${S[@]}" proof --trace 00000000000000000000000000000000 --step 0
pass "tampered bundle and trace fail with exit 1; usage errors exit 2, server errors 1; --help exits 0"

# --- --json: one JSON object per line, events in order
expect_exit 0 "$WORK/gen2.jsonl" "$SP" "${S[@]}" --json generate --prompt "What is 12 + 30?" \
  --greedy --max-tokens "$MAX_TOKENS" --out "$WORK/trace2.json"
"$PY" - "$WORK/gen2.jsonl" <<'PYEOF' || die "--json output is not one event object per line"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
keys = [next(iter(e)) for e in events]
assert keys[0] == "started", keys
assert keys[-2:] == ["sealed", "written"], keys
assert all(k == "step" for k in keys[1:-2]), keys
assert events[-1]["written"]["sealed"] is True
PYEOF
expect_exit 0 "$WORK/vt2.out" "$AUDIT" --json verify-trace "$WORK/trace2.json" --key "$KEY"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["verified"] is True' "$WORK/vt2.out"
expect_exit 0 "$WORK/proof.jsonl" "$SP" "${S[@]}" --json proof --trace "$TRACE1" --step 0
"$PY" - "$WORK/proof.jsonl" "$WORK/b0_from_json.json" <<'PYEOF' || die "proof --json"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 1, lines
d = json.loads(lines[0])
assert d["step"] == 0 and d["bundle"]["format"] == "stepproof.bundle/v1", d.keys()
json.dump(d["bundle"], open(sys.argv[2], "w"))
PYEOF
expect_exit 0 "$WORK/v_from_json.out" "$AUDIT" verify "$WORK/b0_from_json.json" --key "$KEY"
pass "--json generate, proof and verify-trace emit one JSON object per line"

# --- a withheld prompt: the header commits to SHA-256(salt || templated
# prompt); the salt is in the trace file. The templated prompt is the one a
# normal trace of the same question records.
expect_exit 0 "$WORK/genw.out" "$SP" "${S[@]}" generate --prompt "What is 12 + 30?" \
  --withhold-prompt --max-tokens "$MAX_TOKENS" --out "$WORK/trace_w.json"
contains "$WORK/genw.out" "commitment salt is in the file"
expect_exit 0 "$WORK/vtw.out" "$AUDIT" --json verify-trace "$WORK/trace_w.json" --key "$KEY"
# (vt2.out: `verify-trace --json` of the open trace of the same question.)
"$PY" - "$WORK/vt2.out" "$WORK/vtw.out" "$WORK/trace_w.json" <<'PYEOF' || die "withheld prompt commitment"
import hashlib, json, sys
open_prompt = json.load(open(sys.argv[1]))["steps"][0]["header"]["prompt"]
withheld = json.load(open(sys.argv[2]))["steps"][0]["header"]
assert "prompt" not in withheld, withheld
salt = bytes.fromhex(json.load(open(sys.argv[3]))["prompt_salt"])
assert len(salt) == 32
want = hashlib.sha256(salt + open_prompt.encode()).hexdigest()
assert withheld["prompt_commitment"] == want, (withheld["prompt_commitment"], want)
PYEOF
pass "--withhold-prompt: the header holds SHA-256(salt || prompt), the salt is in the file"

# --- the log integrates the traces; a fresh bundle carries log inclusion
wait_log_size() {  # wait_log_size MIN OUTFILE
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if timeout 30 "$SP" "${S[@]}" --json checkpoint >"$2.json" 2>/dev/null &&
       (( $(json_field "$2.json" '["size"]') >= $1 )); then
      timeout 30 "$SP" "${S[@]}" checkpoint >"$2"
      return 0
    fi
    sleep 0.2
  done
  die "the log did not reach size $1 within 30 s"
}
wait_log_size 2 "$WORK/cp_before.note"
SIZE_BEFORE=$(json_field "$WORK/cp_before.note.json" '["size"]')
expect_exit 0 "$WORK/proof_log.out" "$SP" "${S[@]}" proof --trace "$TRACE1" --step "$LAST" \
  --out "$WORK/b_last_logged.json"
contains "$WORK/proof_log.out" "with its log inclusion proof"
expect_exit 0 "$WORK/v_logged.out" "$AUDIT" verify "$WORK/b_last_logged.json" --key "$KEY"
contains "$WORK/v_logged.out" "log inclusion: the trace is leaf"
pass "log checkpoint of size $SIZE_BEFORE; a fresh bundle verifies with log inclusion"

# --- restart on the same data dir
stop_server
[[ "$SERVER_RC" == 0 ]] || die "stepproofd exited $SERVER_RC on SIGTERM"
start_server "$WORK/data" "$WORK/server2" "${MODEL_FLAGS[@]}" || die "stepproofd failed to restart"
S=(--server "$SERVER_ADDR")
expect_exit 0 "$WORK/key2.out" "$SP" "${S[@]}" key
[[ "$(cat "$WORK/key2.out")" == "$KEY" ]] || die "the key changed across the restart"
pass "restarted on $SERVER_ADDR with the same key"

for f in b_last.json b_last_logged.json b0.json; do
  expect_exit 0 "$WORK/old_$f.out" "$AUDIT" verify "$WORK/$f" --key "$KEY"
done
expect_exit 0 "$WORK/vt1r.out" "$AUDIT" verify-trace "$WORK/trace1.json" --key "$KEY"
expect_exit 0 "$WORK/proof_r.out" "$SP" "${S[@]}" proof --trace "$TRACE1" --step "$LAST" \
  --out "$WORK/b_last_after.json"
expect_exit 0 "$WORK/v_after.out" "$AUDIT" verify "$WORK/b_last_after.json" --key "$KEY"
cmp -s <(json_field "$WORK/b_last_after.json" '["encoded_record"]') \
       <(json_field "$WORK/b_last.json" '["encoded_record"]') ||
  die "the stored record changed across the restart"
expect_exit 0 "$WORK/trace_cmd.out" "$SP" "${S[@]}" trace "$TRACE1"
contains "$WORK/trace_cmd.out" "trace $TRACE1: sealed"
pass "old bundles and the trace file still verify; the server serves the same record"

# --- one more trace after the restart; the log grew consistently
expect_exit 0 "$WORK/gen3.out" "$SP" "${S[@]}" generate --prompt "What is 5 + 9?" \
  --seed 3 --max-tokens "$MAX_TOKENS" --out "$WORK/trace3.json"
wait_log_size $((SIZE_BEFORE + 1)) "$WORK/cp_after.note"
SIZE_AFTER=$(json_field "$WORK/cp_after.note.json" '["size"]')
expect_exit 0 "$WORK/cons.out" "$AUDIT" consistency "$WORK/cp_before.note" "$WORK/cp_after.note" \
  "${S[@]}" --key "$KEY"
contains "$WORK/cons.out" "VERIFIED: the log checkpoint of size $SIZE_AFTER"
pass "log consistent across the restart: size $SIZE_BEFORE -> $SIZE_AFTER"

# A checkpoint whose root was edited no longer carries a valid signature.
"$PY" - "$WORK/cp_before.note" "$WORK/cp_forged.note" <<'PYEOF'
import base64, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
root = bytearray(base64.b64decode(lines[2])); root[0] ^= 1
lines[2] = base64.b64encode(bytes(root)).decode()
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines))
PYEOF
expect_exit 1 "$WORK/cons_forged.out" "$AUDIT" consistency "$WORK/cp_forged.note" \
  "$WORK/cp_after.note" "${S[@]}" --key "$KEY"
contains "$WORK/cons_forged.out" "NOT VERIFIED"
pass "a checkpoint with an edited root fails the consistency check"

# --- the monitor: bounded watch, and it resumes from its state file
expect_exit 0 "$WORK/watch.out" "$AUDIT" watch "${S[@]}" --key "$KEY" --interval 0.2 --count 3 \
  --state "$WORK/watch.state"
contains "$WORK/watch.out" "size $SIZE_AFTER"
expect_exit 0 "$WORK/watch2.out" "$AUDIT" watch "${S[@]}" --key "$KEY" --interval 0 --count 1 \
  --state "$WORK/watch.state"
contains "$WORK/watch2.out" "resuming from"
cp "$WORK/cp_forged.note" "$WORK/watch_forged.state"
expect_exit 1 "$WORK/watch3.out" "$AUDIT" watch "${S[@]}" --key "$KEY" --interval 0 --count 1 \
  --state "$WORK/watch_forged.state"
pass "watch follows the log, resumes from its state, rejects a forged state"

# --- a log that shows two histories: a copy of the data dir (same signing
# key, same log so far) grows differently from the original. The monitor
# that saw one history catches the other.
stop_server
[[ "$SERVER_RC" == 0 ]] || die "stepproofd exited $SERVER_RC on SIGTERM"
cp -a "$WORK/data" "$WORK/data_fork"
start_server "$WORK/data" "$WORK/server3" "${MODEL_FLAGS[@]}" || die "stepproofd failed to restart"
S=(--server "$SERVER_ADDR")
expect_exit 0 "$WORK/gen_a.out" "$SP" "${S[@]}" generate --prompt "What is 6 + 7?" \
  --max-tokens "$MAX_TOKENS" --wait-log 60 --out "$WORK/trace_a.json"
expect_exit 0 "$WORK/watch_a.out" "$AUDIT" watch "${S[@]}" --key "$KEY" --interval 0 --count 1 \
  --state "$WORK/monitor.state"
stop_server
start_server "$WORK/data_fork" "$WORK/server4" "${MODEL_FLAGS[@]}" || die "forked stepproofd failed"
S=(--server "$SERVER_ADDR")
expect_exit 0 "$WORK/key_f.out" "$SP" "${S[@]}" key
[[ "$(cat "$WORK/key_f.out")" == "$KEY" ]] || die "the fork should sign with the same key"
expect_exit 0 "$WORK/gen_b.out" "$SP" "${S[@]}" generate --prompt "What is 8 + 9?" \
  --max-tokens "$MAX_TOKENS" --wait-log 60 --out "$WORK/trace_b.json"
expect_exit 1 "$WORK/watch_b.out" "$AUDIT" watch "${S[@]}" --key "$KEY" --interval 0 --count 1 \
  --state "$WORK/monitor.state"
contains "$WORK/watch_b.out" "ALERT: the log shows two histories"
expect_exit 0 "$WORK/gen_b2.out" "$SP" "${S[@]}" generate --prompt "What is 9 + 9?" \
  --max-tokens "$MAX_TOKENS" --wait-log 60 --out "$WORK/trace_b2.json"
expect_exit 1 "$WORK/watch_b2.out" "$AUDIT" watch "${S[@]}" --key "$KEY" --interval 0 --count 1 \
  --state "$WORK/monitor.state"
contains "$WORK/watch_b2.out" "is not consistent with the one of size"
expect_exit 0 "$WORK/cp_b.out" "$SP" "${S[@]}" checkpoint
cp "$WORK/cp_b.out" "$WORK/cp_b.note"
expect_exit 1 "$WORK/cons_fork.out" "$AUDIT" consistency "$WORK/monitor.state" "$WORK/cp_b.note" \
  "${S[@]}" --key "$KEY"
contains "$WORK/cons_fork.out" "NOT VERIFIED"
pass "a forked log (same key, two histories) is caught by watch and consistency"

stop_server
[[ "$SERVER_RC" == 0 ]] || die "stepproofd exited $SERVER_RC on SIGTERM"
echo "all $CHECKS checks passed"
