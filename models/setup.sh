#!/usr/bin/env bash
# Installs what the model scripts in models/ need: Debian's PyTorch and NumPy, and
# OpenBLAS (without it Debian's torch falls back to the reference BLAS, ~10x slower).
# Idempotent: runs apt-get only when a package is missing. Not run by `make test`.
# Run the scripts with /usr/bin/python3 (Debian's interpreter sees these packages).
set -euo pipefail

PACKAGES=(python3 python3-torch python3-numpy python3-regex libopenblas0-pthread)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "models/setup.sh: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "models/setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
