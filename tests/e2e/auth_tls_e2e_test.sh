#!/usr/bin/env bash
# The CLIs against a stepproofd that requires an API token and serves TLS:
# --tls-ca trusts the test CA; a plaintext client fails; Generate without or
# with a wrong --token is refused (exit 1, with a hint), with --token @FILE
# it works; read calls stay public; watch and consistency work over TLS.
#
# usage: auth_tls_e2e_test.sh BIN_DIR TESTS_BIN_DIR
set -euo pipefail

BIN_DIR=${1:?usage: auth_tls_e2e_test.sh BIN_DIR TESTS_BIN_DIR}
TESTS_BIN_DIR=${2:?}
STEPPROOFD=$BIN_DIR/stepproofd
SP=$BIN_DIR/stepproof
AUDIT=$BIN_DIR/stepproof-audit
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=server_lib.sh
source "$HERE/server_lib.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stepproof-e2e-tls.XXXXXX")
cleanup() {
  local rc=$?
  stop_server
  if ((rc != 0)); then
    echo "--- FAILED (exit $rc); server stderr tail:" >&2
    tail -n 20 "$WORK"/server*.err 2>/dev/null >&2 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

EXPECT_TIMEOUT=120  # expect_exit (server_lib.sh): commands here finish fast

# --- a test CA and a server certificate for 127.0.0.1
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout ca.key -out ca.pem -subj /CN=stepproof-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -out server.pem -extfile san.ext 2>/dev/null
( umask 077; echo "s3cret-token-for-tests" >token.txt; echo "wrong-token" >wrong.txt )
cd - >/dev/null

SERVER_FLAGS=(--api-token-file "$WORK/token.txt" --tls-cert "$WORK/server.pem"
              --tls-key "$WORK/server.key")
MAX_TOKENS=300
if ! start_server "$WORK/data" "$WORK/server0" "${SERVER_FLAGS[@]}"; then
  grep -q "no embedded model" "$WORK/server0.err" || die "stepproofd failed to start"
  "$TESTS_BIN_DIR/e2e_tiny_model" "$WORK/tiny.gguf"
  SERVER_FLAGS+=(--model "$WORK/tiny.gguf")
  MAX_TOKENS=40
  start_server "$WORK/data" "$WORK/server1" "${SERVER_FLAGS[@]}" || die "stepproofd failed to start"
fi
S=(--server "$SERVER_ADDR" --tls-ca "$WORK/ca.pem")
pass "stepproofd with TLS and an API token on $SERVER_ADDR"

expect_exit 0 "$WORK/key.out" "$SP" "${S[@]}" key
KEY=$(cat "$WORK/key.out")
expect_exit 1 "$WORK/plain.out" "$SP" --server "$SERVER_ADDR" key
pass "read calls are public over TLS; a plaintext client is refused (exit 1)"

expect_exit 1 "$WORK/notoken.out" "$SP" "${S[@]}" generate --prompt "What is 1 + 2?" \
  --max-tokens "$MAX_TOKENS"
contains "$WORK/notoken.out" "--token"
expect_exit 1 "$WORK/wrong.out" "$SP" "${S[@]}" --token @"$WORK/wrong.txt" generate \
  --prompt "What is 1 + 2?" --max-tokens "$MAX_TOKENS"
expect_exit 0 "$WORK/gen.out" "$SP" "${S[@]}" --token @"$WORK/token.txt" generate \
  --prompt "What is 1 + 2?" --max-tokens "$MAX_TOKENS" --out "$WORK/trace.json"
expect_exit 0 "$WORK/gen2.out" "$SP" "${S[@]}" --token s3cret-token-for-tests generate \
  --prompt "What is 2 + 2?" --max-tokens "$MAX_TOKENS"
expect_exit 0 "$WORK/vt.out" "$AUDIT" verify-trace "$WORK/trace.json" --key "$KEY"
pass "Generate needs the token (none or wrong: exit 1); with --token @FILE or inline it works"

expect_exit 0 "$WORK/cp.out" "$SP" "${S[@]}" checkpoint
cp "$WORK/cp.out" "$WORK/cp.note"
expect_exit 0 "$WORK/cons.out" "$AUDIT" consistency "$WORK/cp.note" "$WORK/cp.note" "${S[@]}" \
  --key "$KEY"
expect_exit 0 "$WORK/watch.out" "$AUDIT" watch "${S[@]}" --key "$KEY" --interval 0 --count 2
contains "$WORK/watch.out" "signature OK"
pass "consistency and watch over TLS"

stop_server
echo "all $CHECKS checks passed"
