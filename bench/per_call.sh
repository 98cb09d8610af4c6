#!/usr/bin/env bash
# Microseconds per port for reserve(), reserveMany(100), hold() + release() and the naive port 0
# trick on Deno, Bun and Node, and the same syscalls in C (bench/floor.c), each
# run in a fresh network namespace (_tools/in_namespace.sh) so that it starts
# with an empty TIME_WAIT table. ROUNDS rounds of the whole matrix, alternating,
# so a drifting machine favours no row; prints the median over rounds of each
# run's median, and its ratio to the C floor.
# Usage: bench/per_call.sh [ROUNDS] [BATCHES] [PER_BATCH]   (from the root)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
rounds=${1:-5}
batches=${2:-10}
per_batch=${3:-200}
ns=_tools/in_namespace.sh
mkdir -p .build
"$bin/bun" build bench/per_call.ts --target=node --format=esm \
  --outfile=.build/bench/per_call.js >/dev/null
command -v cc >/dev/null && cc -O2 -o .build/floor bench/floor.c
out=$(mktemp)
for round in $(seq "$rounds"); do
  [ -x .build/floor ] && $ns .build/floor "$per_batch" "$batches" >>"$out"
  for method in reserve many hold naive; do
    $ns "$bin/deno" run -A bench/per_call.ts "$method" "$batches" "$per_batch" >>"$out"
    $ns "$bin/bun" bench/per_call.ts "$method" "$batches" "$per_batch" >>"$out"
    $ns node .build/bench/per_call.js "$method" "$batches" "$per_batch" >>"$out"
  done
done
node - "$out" <<'JS'
const lines = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n");
const runs = new Map();
for (const { runtime, method, usPerPort } of lines.map(JSON.parse)) {
  const key = `${runtime} ${method}`;
  runs.set(key, [...(runs.get(key) ?? []), usPerPort]);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const floor = runs.has("c reserve") ? median(runs.get("c reserve")) : undefined;
for (const [key, values] of runs) {
  const [runtime, method] = key.split(" ");
  const us = median(values);
  console.log(JSON.stringify({
    runtime,
    method,
    usPerPort: us,
    ratioToC: floor ? +(us / floor).toFixed(2) : null,
    rounds: values,
  }));
}
JS
rm "$out"
