#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds (default preset), runs every C++ test
# and the Node.js SDK conformance suite through CTest. Needs root (apt, and port 443 for the
# conformance suite, because the official service SDK only speaks to port 443).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)"
ctest --preset default -j2
