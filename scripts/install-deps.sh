#!/usr/bin/env bash
# Installs everything iothub-connector needs to build, test and run on Debian 12 (as root),
# and the Node.js SDKs the conformance suite judges the emulator with.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl openssl
  libssl-dev libfmt-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libsqlite3-dev libtomlplusplus-dev
  libcpp-httplib-dev libgtest-dev libgmock-dev libbenchmark-dev
  mosquitto mosquitto-dev libmosquitto-dev mosquitto-clients clang-format clang-tidy
  python3-jsonschema
)
# Node.js may already come from elsewhere (e.g. a preinstalled toolchain): use that one.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts a system-wide mosquitto on install; the emulator runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi

if [ ! -d conformance/node_modules ] || [ conformance/package-lock.json -nt conformance/node_modules ]; then
  echo "install-deps: npm ci (conformance/)"
  (cd conformance && npm ci --no-audit --no-fund --loglevel=error)
fi
