#!/usr/bin/env bash
# Start-up of the command line against a bare script that prints a constant,
# and against one that makes the same proven reservation straight in the
# runtime's API (bench/raw_once.ts: the floor for any implementation), on Deno
# and Bun, by hyperfine (Debian package `hyperfine`): ROUNDS rounds of
# 4 runs each of every command, alternating, after warm-up (so all are
# cached); the median of all runs of each, and the median of the rounds'
# ratios. Short alternating rounds keep a drifting machine from favouring
# either side. Each run reserves a port, so it runs in
# a fresh network namespace where it can (unshare -n).
# Targets (the lean issue), against that floor: bun cli.ts <= 1.2 x
# raw_once.ts; deno run -N cli.ts <= 1.05 x raw_once.ts (cliToRaw).
# Three more commands say what bounds a target: bench/raw_once_guarded.ts,
# the floor with the guarantees at their cheapest (guardedToRaw: what they
# alone take of the budget); bench/import_mod.ts, which loads mod.ts and
# reserves nothing (importToRaw); and bench/import_raw.ts, which loads
# raw.ts and reserves nothing (importRawMs). floorToRaw is the guarantees'
# reservation with mod.ts loaded in place of raw.ts (guarded + import_mod -
# import_raw), over raw_once.ts: a floor for any command line on this module
# that keeps the guarantees, whatever its own code costs, where the parts
# add up. `bound` is true where that floor is over the target and not over
# the command line itself: on Deno it came out above the command line in
# most runs, so there the parts do not add up, and it bounds nothing.
# roundRatios: the ratios of cli, guarded and import to raw_once.ts taken
# within each round, their medians.
# Usage: bench/startup.sh [ROUNDS]   (from the repository root; default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
bin=$PWD/node_modules/.bin
command -v hyperfine >/dev/null || {
  echo "startup.sh: hyperfine is missing: apt-get install hyperfine" >&2
  exit 1
}
if [ -z "${PORT_RESERVE_NAMESPACE:-}" ]; then
  PORT_RESERVE_NAMESPACE=1 exec _tools/in_namespace.sh "$0" "$@"
fi
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  for runtime in "deno run -N" bun; do
    # shellcheck disable=SC2086 # the runtime's command and its flags
    hyperfine -N --warmup 2 --runs 4 --export-json "$out/${runtime%% *}-$round.json" \
      "$bin/$runtime bench/hello.ts" "$bin/$runtime cli.ts" \
      "$bin/$runtime bench/raw_once.ts" "$bin/$runtime bench/raw_once_guarded.ts" \
      "$bin/$runtime bench/import_mod.ts" "$bin/$runtime bench/import_raw.ts" >/dev/null
  done
done
node - "$out" "$rounds" <<'JS'
const [dir, rounds] = process.argv.slice(2);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const runtime of ["deno", "bun"]) {
  const times = [[], [], [], [], [], []];
  // Within each round, against raw_once.ts: cli, guarded, import.
  const ratios = [[], [], []];
  for (let round = 1; round <= Number(rounds); round++) {
    const { results } = require(`${dir}/${runtime}-${round}.json`);
    results.forEach((result, i) => times[i].push(...result.times));
    const raw = median(results[2].times);
    [1, 3, 4].forEach((i, k) => ratios[k].push(median(results[i].times) / raw));
  }
  const [hello, cli, raw, guarded, load, loadRaw] = times.map((t) =>
    median(t) * 1000
  );
  // A command line on mod.ts loads it where raw_once_guarded.ts loads raw.ts.
  const floor = guarded + load - loadRaw;
  const limit = runtime === "bun" ? 1.2 : 1.05;
  console.log(JSON.stringify({
    runtime,
    runs: times[0].length,
    helloMs: +hello.toFixed(1),
    cliMs: +cli.toFixed(1),
    ratio: +(cli / hello).toFixed(2),
    rawMs: +raw.toFixed(1),
    rawRatio: +(raw / hello).toFixed(2),
    cliToRaw: +(cli / raw).toFixed(2),
    target: `cli <= ${limit} x raw`,
    met: cli / raw <= limit,
    guardedMs: +guarded.toFixed(1),
    guardedToRaw: +(guarded / raw).toFixed(2),
    importMs: +load.toFixed(1),
    importToRaw: +(load / raw).toFixed(2),
    importRawMs: +loadRaw.toFixed(1),
    floorToRaw: +(floor / raw).toFixed(2),
    bound: floor / raw > limit && floor <= cli,
    roundRatios: ratios.map((r) => +median(r).toFixed(2)),
  }));
}
JS
rm -r "$out"
