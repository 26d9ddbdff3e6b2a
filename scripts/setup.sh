#!/usr/bin/env bash
# Installs what crmigrate needs on a Debian machine (as root) and builds it:
# the system packages when missing, then the npm dependencies, the native
# addon and executables, and the TypeScript. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (crmigrate checkpoints processes with ptrace)" >&2
  exit 1
fi

# command -> Debian package providing it
declare -A NEEDED=(
  [gcc]=build-essential [make]=build-essential [g++]=build-essential [python3]=python3
  [ip]=iproute2 [sshd]=openssh-server [ssh-keygen]=openssh-client [nft]=nftables [readelf]=binutils
)
missing=()
for cmd in "${!NEEDED[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then missing+=("${NEEDED[$cmd]}"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js 20.19 or newer is required (with npm)" >&2
  exit 1
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
make -s -C test/programs
echo "setup: done"
