#!/usr/bin/env bash
# Installs every system package StepProof needs to build and test, idempotently.
# Runs apt-get update only when something is missing; uses sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libprotobuf-dev protobuf-compiler
  libssl-dev libsqlite3-dev sqlite3 libabsl-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-cryptography python3-grpcio python3-grpc-tools python3-protobuf
  clang libclang-rt-14-dev
)

# clients/anchor's Node packages (solc-js, ethers, gRPC, anvil), pinned by its
# package-lock.json. Runs `npm ci` only when node_modules is missing or was
# installed from another lock file (a hash of the lock is kept beside it).
# --ignore-scripts: nothing is downloaded outside the registry (anvil's binary
# comes in its platform package). A failure is a warning: the anchoring tests
# then skip and say why.
install_anchor_node_modules() {
  local dir lock stamp want
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/clients/anchor"
  lock="$dir/package-lock.json"
  stamp="$dir/node_modules/.stepproof-lock.sha256"
  [[ -f "$lock" ]] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: WARNING: npm not found; clients/anchor tests will be skipped" >&2
    return 0
  fi
  want="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "install-deps: clients/anchor node_modules current"
    return 0
  fi
  echo "install-deps: npm ci --prefix clients/anchor"
  if npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error; then
    echo "$want" > "$stamp"
  else
    echo "install-deps: WARNING: npm ci failed in clients/anchor; its tests will be skipped" >&2
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  install_anchor_node_modules
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_anchor_node_modules
