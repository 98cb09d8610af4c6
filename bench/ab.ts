// Copyright 2026 the @x/port-reserve authors. MIT license.
// Two versions of mod.ts side by side in one process, so that a drifting
// machine favours neither: 100 warm-up calls of each, then 60 pairs of
// batches of 25 calls, alternating (which goes first alternates too); prints
// the median µs per call of each, and the median of the ratio within each
// pair (B over A) with its quartiles: drift between pairs cancels. Run it in
// a fresh network namespace.
//   sh _tools/in_namespace.sh deno run -A bench/ab.ts A.ts B.ts [reserve|hold] [PAIRS]
// For instance, against an earlier commit:
//   git show 06057b3:mod.ts > /tmp/old_mod.ts
//   sh _tools/in_namespace.sh bun bench/ab.ts /tmp/old_mod.ts ./mod.ts
import process from "node:process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { median } from "./_util.ts";

interface Module {
  reserve(): Promise<number>;
  hold(): Promise<{ release(): Promise<void> }>;
}

const [a, b, method = "reserve", pairs = "60"] = process.argv.slice(2);
if (!a || !b || (method !== "reserve" && method !== "hold")) {
  throw new Error("Usage: bench/ab.ts A.ts B.ts [reserve|hold] [PAIRS]");
}
const calls = await Promise.all([a, b].map(async (path) => {
  const module: Module = await import(pathToFileURL(resolve(path)).href);
  return method === "hold"
    ? async () => await (await module.hold()).release()
    : async () => void await module.reserve();
}));
for (let i = 0; i < 100; i++) for (const call of calls) await call();
const ratios: number[] = [];
const us: number[][] = [[], []];
for (let pair = 0; pair < Number(pairs); pair++) {
  const times = [0, 0];
  for (const which of pair % 2 ? [0, 1] : [1, 0]) {
    const start = performance.now();
    for (let i = 0; i < 25; i++) await calls[which]();
    times[which] = (performance.now() - start) * 40;
    us[which].push(times[which]);
  }
  ratios.push(times[1] / times[0]);
}
const sorted = [...ratios].sort((x, y) => x - y);
process.stdout.write(
  JSON.stringify({
    method,
    usA: +median(us[0]).toFixed(1),
    usB: +median(us[1]).toFixed(1),
    ratio: +median(ratios).toFixed(3),
    q1: +sorted[Math.floor(sorted.length / 4)].toFixed(3),
    q3: +sorted[Math.floor(sorted.length * 3 / 4)].toFixed(3),
  }) + "\n",
);
