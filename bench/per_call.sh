#!/usr/bin/env bash
# Microseconds per port for reserve(), reserveMany(100), hold() + release() and
# the naive port 0 trick on Deno, Bun and Node 24 (mod.ts as it is), against
# the same sequence in Python (bench/reference.py: Yelp's, with no proof), in
# C (bench/floor.c), and in each runtime's own API without mod.ts (bench/raw.ts:
# `yelp` as Python does it, `proof` as mod.ts does it, `guarded` the proof with
# what mod.ts's guarantees cost at their cheapest), each process in a fresh
# network namespace (_tools/in_namespace.sh) so that it starts with an empty
# TIME_WAIT table.
#
# What a target compares runs side by side in one process, batches
# alternating (bench/per_call.ts): reserve, proof and guarded in one; reserve
# and hold in another; reserve and many in a third; yelp and naive in a
# fourth; each set in two processes, one with its methods in the reverse
# order. Batches of 10 calls (120 of them) alternate often enough that a
# ratio repeats within 1-2 % from one run to the next; only the set with
# `many` keeps batches of 100, one reserveMany(100) each. There the method
# listed first runs the first, slowest batches, while Node is still warming
# up (its batches of 100 calls fall from 300-600 us to 130 us a call over the
# first 6-10): on Node, many/reserve measured 0.62-0.82 in the order
# reserve,many and 0.94-1.25 in many,reserve (hold/reserve, when it ran in
# batches of 100 too: 0.83-0.97 and 1.21-1.41; in batches of 10, 0.99-1.05
# and 1.01-1.10). A ratio is taken within each
# process, and a round's is the geometric mean of its two orders'; then its
# median and range over ROUNDS rounds: the machine's drift between processes
# (often 20-40% here) cancels out. Prints a JSON line
# per runtime and method (the median µs per port over rounds, the C floor's
# and Python's ratios, the main thread's CPU time against wall time), then
# one per target of the lean issue with whether it is met:
#   1. reserve() <= 1.15x the runtime's raw proven sequence (`proof`);
#      guarded/proof says what the guarantees alone take of that budget
#   2. reserveMany(100) per port <= 0.5x reserve()
#   3. hold() + release() <= 1.1x reserve()
# Usage: bench/per_call.sh [ROUNDS]   (from the root)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
rounds=${1:-5}
ns=_tools/in_namespace.sh
mkdir -p .build
command -v cc >/dev/null && cc -O2 -o .build/floor bench/floor.c
out=$(mktemp)
for round in $(seq "$rounds"); do
  [ -x .build/floor ] && $ns .build/floor 200 10 | sed "s/}$/,\"round\":$round}/" >>"$out"
  $ns python3 bench/reference.py 10 200 | sed "s/}$/,\"round\":$round}/" >>"$out"
  for set in reserve,proof,guarded reserve,hold reserve,many yelp,naive; do
    case $set in *many*) batches="12 100" ;; *) batches="120 10" ;; esac
    # Each set in its order and the reverse: the method listed first warms
    # the runtime up for the others.
    for order in "$set" "$(tr , '\n' <<<"$set" | tac | paste -sd , -)"; do
      for runtime in "$bin/deno run -A" "$bin/bun" "$bin/node --no-warnings"; do
        # shellcheck disable=SC2086 # the runtime's command and its flags; BATCHES PER_BATCH
        $ns $runtime bench/per_call.ts "$order" $batches |
          sed "s/}$/,\"round\":$round,\"set\":\"$set\",\"order\":\"$order\"}/" >>"$out"
      done
    done
  done
done
node - "$out" <<'JS'
const lines = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n");
const rows = lines.map(JSON.parse);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round2 = (x) => x === undefined ? null : +x.toFixed(2);
/**
 * A runtime's method in each round, in `set` (by default the first it ran in:
 * reserve's is the one with the raw sequences): the geometric mean of the
 * set's two orders, so that a ratio of two of them is the geometric mean of
 * the ratios within each order's process.
 */
function perRound(runtime, method, set) {
  const byRound = new Map();
  for (const row of rows) {
    if (row.runtime !== runtime || row.method !== method) continue;
    set ??= row.set;
    if (row.set !== set) continue;
    if (!byRound.has(row.round)) byRound.set(row.round, []);
    byRound.get(row.round).push(row);
  }
  const mean = (xs) => Math.exp(xs.reduce((sum, x) => sum + Math.log(x), 0) / xs.length);
  return new Map([...byRound].map(([round, all]) => [round, {
    usPerPort: mean(all.map((row) => row.usPerPort)),
    mainThreadCpuToWall: all.every((row) => row.mainThreadCpuToWall != null)
      ? mean(all.map((row) => row.mainThreadCpuToWall))
      : null,
  }]));
}
const usOf = (runtime, method) =>
  median([...perRound(runtime, method).values()].map((row) => row.usPerPort));
const floor = usOf("c", "reserve");
const python = usOf("python", "reserve");
for (const runtime of ["c", "python", "deno", "bun", "node"]) {
  const methods = [...new Set(rows.filter((r) => r.runtime === runtime).map((r) => r.method))];
  for (const method of methods) {
    const us = round2(usOf(runtime, method));
    const cpu = [...perRound(runtime, method).values()]
      .map((row) => row.mainThreadCpuToWall).filter((x) => x !== undefined && x !== null);
    console.log(JSON.stringify({
      runtime,
      method,
      usPerPort: us,
      ratioToC: round2(us / floor),
      ratioToPython: round2(us / python),
      mainThreadCpuToWall: cpu.length > 0 ? median(cpu) : null,
      rounds: [...perRound(runtime, method).values()].map((row) => round2(row.usPerPort)),
    }));
  }
}
/** A ratio within each round's process, its median and range over rounds. */
function target(runtime, name, of, to, set, limit) {
  const a = perRound(runtime, of, set), b = perRound(runtime, to, set);
  const ratios = [...a.keys()].filter((r) => b.has(r))
    .map((r) => a.get(r).usPerPort / b.get(r).usPerPort);
  const value = median(ratios);
  console.log(JSON.stringify({
    runtime,
    target: name,
    ratio: round2(value),
    range: [round2(Math.min(...ratios)), round2(Math.max(...ratios))],
    limit,
    met: limit === null ? null : value <= limit,
  }));
}
for (const runtime of ["deno", "bun", "node"]) {
  target(runtime, "1. reserve() / proof", "reserve", "proof", "reserve,proof,guarded", 1.15);
  target(runtime, "   guarded / proof", "guarded", "proof", "reserve,proof,guarded", null);
  target(runtime, "   reserve() / guarded", "reserve", "guarded", "reserve,proof,guarded", null);
  target(runtime, "2. reserveMany(100) / reserve()", "many", "reserve", "reserve,many", 0.5);
  target(runtime, "3. hold()+release() / reserve()", "hold", "reserve", "reserve,hold", 1.1);
}
JS
rm "$out"
