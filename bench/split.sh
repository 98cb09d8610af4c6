#!/usr/bin/env bash
# Runs bench/split.ts RUNS times (default 3), each in a fresh network namespace
# under Deno's sampling profiler (100 µs), and prints each run's report: where
# the time between reserve() and raw.ts's `guarded` goes on Deno.
# Usage: bench/split.sh [RUNS]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
deno=$PWD/node_modules/.bin/deno
for run in $(seq "${1:-3}"); do
  dir=$(mktemp -d)
  _tools/in_namespace.sh "$deno" run -A --cpu-prof --cpu-prof-dir="$dir" \
    --v8-flags=--cpu-profiler-sampling-interval=100 bench/split.ts run "$dir"
  echo "run $run"
  "$deno" run -A bench/split.ts report "$dir"
  rm -r "$dir"
done
