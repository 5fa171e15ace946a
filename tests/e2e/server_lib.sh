# Shared by the end-to-end tests: start and stop
# a real stepproofd on a free loopback port. Source it; it defines
#   start_server DATA_DIR LOG_PREFIX [extra stepproofd flags...]
#       sets SERVER_PID and SERVER_ADDR (host:port read from the
#       "listening on" line); fails if the server does not come up in 120 s
#   stop_server   SIGTERM, wait (up to 30 s, then SIGKILL); sets SERVER_RC
# The caller's EXIT trap must call stop_server so no server ever leaks.
# And the checks every end-to-end script reports with:
#   pass MSG        counts and prints "ok N - MSG"
#   die MSG         fails the script
#   expect_exit CODE OUTFILE CMD...   runs CMD (timeout EXPECT_TIMEOUT
#                   seconds, default 300), stdout+stderr to OUTFILE, and
#                   fails unless it exits with CODE
#   contains FILE TEXT              fails unless FILE holds TEXT

SERVER_PID=""
SERVER_ADDR=""
SERVER_RC=""

start_server() {
  local data_dir=$1 log=$2
  shift 2
  : >"$log.out"
  : >"$log.err"
  "$STEPPROOFD" --data-dir "$data_dir" --listen 127.0.0.1:0 "$@" \
    >"$log.out" 2>"$log.err" &
  SERVER_PID=$!
  local deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)); do
    if SERVER_ADDR=$(sed -n 's/^listening on \(.*\)$/\1/p' "$log.out" | head -n1) &&
       [[ -n "$SERVER_ADDR" ]]; then
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null && SERVER_RC=0 || SERVER_RC=$?
      SERVER_PID=""
      echo "stepproofd exited ($SERVER_RC) before listening:" >&2
      tail -n 20 "$log.err" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "stepproofd did not print 'listening on' within 120 s" >&2
  return 1
}

stop_server() {
  SERVER_RC=""
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "stepproofd did not stop on SIGTERM within 30 s; killing it" >&2
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null && SERVER_RC=0 || SERVER_RC=$?
  SERVER_PID=""
}

CHECKS=0
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() {
  local want=$1 out=$2
  shift 2
  local got=0
  timeout "${EXPECT_TIMEOUT:-300}" "$@" >"$out" 2>&1 || got=$?
  if [[ "$got" != "$want" ]]; then
    echo "--- output of: $*" >&2
    cat "$out" >&2
    die "exit status $got, expected $want: $*"
  fi
}
contains() { grep -qF -- "$2" "$1" || { cat "$1" >&2; die "'$1' lacks: $2"; }; }
