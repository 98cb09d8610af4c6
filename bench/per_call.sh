#!/usr/bin/env bash
# Microseconds per port for reserve(), reserveMany(100), hold() + release() and
# the naive port 0 trick on Deno, Bun and Node 24 (mod.ts as it is), against
# the same sequence in Python (bench/reference.py: Yelp's, with no proof), in
# C (bench/floor.c), and in each runtime's own API without mod.ts (bench/raw.ts:
# `yelp` as Python does it, `proof` as mod.ts does it, `guarded` the proof with
# what mod.ts's guarantees cost at their cheapest), each run in a fresh
# network namespace
# (_tools/in_namespace.sh) so that it starts with an empty TIME_WAIT table.
# ROUNDS rounds of the whole matrix, alternating, so a drifting machine
# favours no row. Prints, per row, the median over rounds of each run's
# median, its ratios to the C floor, to Python, to reserve() on the same
# runtime (for many and hold) and to the runtime's raw proven sequence (for
# reserve: mod.ts's own share; for guarded: what the guarantees alone take of
# that budget), CPU time per port against wall time (many: a ratio near 1
# means one busy thread, no waiting left to overlap), and each target of the
# lean issue with whether it is met:
#   reserve() <= 1.15x the runtime's raw proven sequence (`proof`), on each;
#   reserveMany(100) per port <= 0.5x reserve(); hold() + release() <= 1.1x
#   reserve().
# Usage: bench/per_call.sh [ROUNDS] [BATCHES] [PER_BATCH]   (from the root)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
rounds=${1:-5}
batches=${2:-10}
per_batch=${3:-200}
ns=_tools/in_namespace.sh
mkdir -p .build
command -v cc >/dev/null && cc -O2 -o .build/floor bench/floor.c
out=$(mktemp)
for round in $(seq "$rounds"); do
  [ -x .build/floor ] && $ns .build/floor "$per_batch" "$batches" >>"$out"
  $ns python3 bench/reference.py "$batches" "$per_batch" >>"$out"
  for method in reserve many hold naive yelp proof guarded; do
    $ns "$bin/deno" run -A bench/per_call.ts "$method" "$batches" "$per_batch" >>"$out"
    $ns "$bin/bun" bench/per_call.ts "$method" "$batches" "$per_batch" >>"$out"
    $ns "$bin/node" --no-warnings bench/per_call.ts "$method" "$batches" "$per_batch" >>"$out"
  done
done
node - "$out" <<'JS'
const lines = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n");
const runs = new Map();
const cpu = new Map();
for (const { runtime, method, usPerPort, cpuUsPerPort } of lines.map(JSON.parse)) {
  const key = `${runtime} ${method}`;
  runs.set(key, [...(runs.get(key) ?? []), usPerPort]);
  if (cpuUsPerPort) cpu.set(key, [...(cpu.get(key) ?? []), cpuUsPerPort]);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const us = (key) => runs.has(key) ? median(runs.get(key)) : undefined;
const ratio = (a, b) => a && b ? +(a / b).toFixed(2) : null;
const floor = us("c reserve");
const python = us("python reserve");
const runtimes = ["deno", "bun", "node"];
for (const [key, values] of runs) {
  const [runtime, method] = key.split(" ");
  const value = us(key);
  const row = {
    runtime,
    method,
    usPerPort: value,
    cpuToWall: cpu.has(key) ? ratio(median(cpu.get(key)), value) : null,
    ratioToC: ratio(value, floor),
    ratioToPython: ratio(value, python),
    ratioToReserve: null,
    ratioToProof: null,
    target: null,
    met: null,
    rounds: values,
  };
  if (method === "guarded") row.ratioToProof = ratio(value, us(`${runtime} proof`));
  if (method === "reserve" && runtimes.includes(runtime)) {
    row.ratioToProof = ratio(value, us(`${runtime} proof`));
    row.target = "<= 1.15x proof";
    row.met = row.ratioToProof <= 1.15;
  }
  if (method === "many" || method === "hold") {
    row.ratioToReserve = ratio(value, us(`${runtime} reserve`));
    const limit = method === "many" ? 0.5 : 1.1;
    row.target = `<= ${limit}x reserve()`;
    row.met = row.ratioToReserve <= limit;
  }
  console.log(JSON.stringify(row));
}
JS
rm "$out"
