#!/usr/bin/env bash
# Microseconds per port for reserve(), reserveMany(100) and the naive port 0
# trick on Deno, Bun and Node, each run in a fresh network namespace
# (unshare -n, as root) so that it starts with an empty TIME_WAIT table.
# Usage: bench/per_call.sh [BATCHES] [PER_BATCH]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
batches=${1:-10}
per_batch=${2:-200}
"$bin/bun" build bench/per_call.ts --target=node --format=esm \
  --outfile=.build/bench/per_call.js >/dev/null
in_namespace() {
  unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
}
for method in reserve many naive; do
  in_namespace "$bin/deno" run -A bench/per_call.ts "$method" "$batches" "$per_batch"
  in_namespace "$bin/bun" bench/per_call.ts "$method" "$batches" "$per_batch"
  in_namespace node .build/bench/per_call.js "$method" "$batches" "$per_batch"
done
