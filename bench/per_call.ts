// Copyright 2026 the @x/port-reserve authors. MIT license.
// Microseconds per port, on whatever runtime runs this file:
//   RUNTIME bench/per_call.ts METHODS [BATCHES] [PER_BATCH]
// METHODS, comma-separated, run side by side in this one process, their
// batches alternating (in an order that rotates), so that a drifting machine
// favours none: reserve | many (reserveMany(100), per port) | hold (hold()
// then release(), together) | naive (listen on port 0 and close, in the
// runtime's own API: the racy trick, and the floor of any JavaScript
// approach) | yelp, proof and guarded (bench/raw.ts: the sequence in the
// runtime's own API, without and with mod.ts's proof of each step, and the
// proof with what mod.ts's guarantees cost at their cheapest). Prints a JSON
// line per method: the median over its batches of wall time per port, and
// the CPU time (user + system) per port of the whole process and of its main
// thread (where JavaScript runs; /proc/thread-self/schedstat, Linux) against
// its wall time: near 1, the thread never waited, so nothing is left to
// overlap.
// Run it in a fresh network namespace (bench/per_call.sh does) so the host's
// TIME_WAIT table and other processes do not skew it; keep the ports below
// about 5,000 (methods x batches x PER_BATCH), under the kernel's cliff
// (docs/performance.md#capacity).
import process from "node:process";
import { readFileSync } from "node:fs";
import { hold, reserve, reserveMany } from "../mod.ts";
import { naivePort } from "./naive.ts";
import { rawReserve } from "./raw.ts";
import { median, RUNTIME } from "./_util.ts";

const [list = "reserve", batches = "6", perBatch = "100"] = process.argv
  .slice(2);
const methods = list.split(",");
const ops = await Promise.all(methods.map(operation));
// Warm up: JIT, lazy imports, the runtime's first sockets.
for (const op of ops) await op(50);
const wall = methods.map((): number[] => []);
const cpu = methods.map((): number[] => []);
const mainCpu = methods.map(() => 0);
const per = Number(perBatch);
for (let batch = 0; batch < Number(batches); batch++) {
  for (let k = 0; k < methods.length; k++) {
    const i = (batch + k) % methods.length;
    const mainStart = mainThreadCpuUs();
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    await ops[i](per);
    wall[i].push((performance.now() - start) * 1000 / per);
    const { user, system } = process.cpuUsage(cpuStart);
    cpu[i].push((user + system) / per);
    mainCpu[i] += (mainThreadCpuUs() ?? NaN) - (mainStart ?? NaN);
  }
}
for (const [i, method] of methods.entries()) {
  const wallUs = wall[i].reduce((a, b) => a + b, 0) * per;
  const mainToWall = mainCpu[i] / wallUs;
  process.stdout.write(
    JSON.stringify({
      runtime: RUNTIME,
      method,
      usPerPort: Number(median(wall[i]).toFixed(1)),
      cpuUsPerPort: Number(median(cpu[i]).toFixed(1)),
      mainThreadCpuToWall: Number.isNaN(mainToWall)
        ? null
        : Number(mainToWall.toFixed(2)),
      min: Number(Math.min(...wall[i]).toFixed(1)),
      max: Number(Math.max(...wall[i]).toFixed(1)),
      ports: Number(batches) * per + 50,
    }) + "\n",
  );
}

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

/** This thread's time on a CPU so far in µs, where /proc says (Linux). */
function mainThreadCpuUs(): number | undefined {
  try {
    // The first field: nanoseconds run, user and system together.
    const schedstat = readFileSync("/proc/thread-self/schedstat", "utf8");
    return Number(schedstat.split(" ")[0]) / 1000;
  } catch {
    return undefined;
  }
}
