#!/usr/bin/env bash
# Style and lint gate: clang-format (the repo's .clang-format) on every C++ file, and
# clang-tidy (.clang-tidy, warnings are errors) on the sources, using the build's
# compile_commands.json. Usage: scripts/lint.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
mapfile -t files < <(git ls-files '*.cc' '*.h')
unformatted=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if ((${#unformatted[@]})); then
  echo "lint: not formatted (run clang-format -i): ${unformatted[*]}" >&2
  exit 1
fi
echo "lint: clang-format clean (${#files[@]} files)"
run-clang-tidy -p "$build" -quiet -j "$(nproc)" 'src/.*\.cc$' >"$build/clang-tidy.log" 2>&1 || {
  grep -E "error:" "$build/clang-tidy.log" | sed 's/\x1b\[[0-9;]*m//g' | sort -u >&2
  echo "lint: clang-tidy found problems (full log: $build/clang-tidy.log)" >&2
  exit 1
}
echo "lint: clang-tidy clean"
