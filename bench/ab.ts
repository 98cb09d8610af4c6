// Copyright 2026 the @x/port-reserve authors. MIT license.
// Two versions of mod.ts side by side in one process, so that a drifting
// machine favours neither: 10 batches of 100 calls of each, alternating, after
// 50 warm-up calls of each; prints the median µs per call of each and their
// ratio (B over A). Run it in a fresh network namespace.
//   sh _tools/in_namespace.sh deno run -A bench/ab.ts A.ts B.ts [reserve|hold]
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

const [a, b, method = "reserve"] = process.argv.slice(2);
if (!a || !b || (method !== "reserve" && method !== "hold")) {
  throw new Error("Usage: bench/ab.ts A.ts B.ts [reserve|hold]");
}
const calls = await Promise.all([a, b].map(async (path) => {
  const module: Module = await import(pathToFileURL(resolve(path)).href);
  return method === "hold"
    ? async () => await (await module.hold()).release()
    : async () => void await module.reserve();
}));
for (let i = 0; i < 50; i++) for (const call of calls) await call();
const samples: number[][] = [[], []];
for (let batch = 0; batch < 10; batch++) {
  // Alternate which goes first, too.
  for (const which of batch % 2 ? [0, 1] : [1, 0]) {
    const start = performance.now();
    for (let i = 0; i < 100; i++) await calls[which]();
    samples[which].push((performance.now() - start) * 10);
  }
}
const [usA, usB] = samples.map(median);
process.stdout.write(
  JSON.stringify({
    method,
    usA: +usA.toFixed(1),
    usB: +usB.toFixed(1),
    ratio: +(usB / usA).toFixed(2),
  }) + "\n",
);
