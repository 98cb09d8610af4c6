// Copyright 2026 the @x/port-reserve authors. MIT license.
// Microseconds per port, on whatever runtime runs this file:
//   RUNTIME bench/per_call.ts METHOD [BATCHES] [PER_BATCH]
// METHOD: reserve | many (reserveMany(100), per port) | hold (hold() then
// release(), together) | naive (listen on port
// 0 and close, in the runtime's own API: the racy trick, and the floor of any
// JavaScript approach) | yelp and proof (bench/raw.ts: the sequence in the
// runtime's own API, without and with mod.ts's proof of each step, and none
// of its checks). Prints one JSON line with the median over batches.
// Run it in a fresh network namespace (bench/per_call.sh does) so the host's
// TIME_WAIT table and other processes do not skew it.
import process from "node:process";
import { hold, reserve, reserveMany } from "../mod.ts";
import { naivePort } from "./naive.ts";
import { rawReserve } from "./raw.ts";
import { median, RUNTIME } from "./_util.ts";

const [method = "reserve", batches = "10", perBatch = "200"] = process.argv
  .slice(2);
const op = await operation(method);
await op(50); // warm up: JIT, lazy imports, the runtime's first sockets
const samples: number[] = [];
for (let i = 0; i < Number(batches); i++) {
  const start = performance.now();
  await op(Number(perBatch));
  samples.push((performance.now() - start) * 1000 / Number(perBatch));
}
process.stdout.write(
  JSON.stringify({
    runtime: RUNTIME,
    method,
    usPerPort: Number(median(samples).toFixed(1)),
    min: Number(Math.min(...samples).toFixed(1)),
    max: Number(Math.max(...samples).toFixed(1)),
    ports: Number(batches) * Number(perBatch) + 50,
  }) + "\n",
);

async function operation(
  method: string,
): Promise<(count: number) => Promise<void>> {
  if (method === "many") {
    return async (count) => {
      for (let done = 0; done < count; done += 100) {
        await reserveMany(Math.min(100, count - done));
      }
    };
  }
  const take = await single(method);
  return async (count) => {
    for (let i = 0; i < count; i++) await take();
  };
}

/** One port, the way `method` takes it. */
async function single(method: string): Promise<() => Promise<unknown>> {
  if (method === "reserve") return reserve;
  if (method === "hold") return async () => await (await hold()).release();
  if (method === "naive") return await naivePort();
  if (method === "yelp" || method === "proof" || method === "guarded") {
    return await rawReserve(method);
  }
  throw new Error(
    `Unknown method ${method}: use reserve, many, hold, naive, yelp, proof or guarded`,
  );
}
