// Copyright 2026 the @x/port-reserve authors. MIT license.
// Microseconds per port, on whatever runtime runs this file:
//   RUNTIME bench/per_call.ts METHOD [BATCHES] [PER_BATCH]
// METHOD: reserve | many (reserveMany(100), per port) | hold (hold() then
// release(), together) | naive (listen on port
// 0 and close, in the runtime's own API: the racy trick, and the floor of any
// JavaScript approach) | yelp, proof and guarded (bench/raw.ts: the sequence
// in the runtime's own API, without and with mod.ts's proof of each step, and
// the proof with what mod.ts's guarantees cost at their cheapest). Prints one
// JSON line with the median over batches of wall time per port, and the CPU
// time (user + system) per port of the whole process and of its main thread
// (where JavaScript runs; from /proc/thread-self/stat, Linux, in 10 ms ticks,
// so over all batches together).
// Run it in a fresh network namespace (bench/per_call.sh does) so the host's
// TIME_WAIT table and other processes do not skew it.
import process from "node:process";
import { readFileSync } from "node:fs";
import { hold, reserve, reserveMany } from "../mod.ts";
import { naivePort } from "./naive.ts";
import { rawReserve } from "./raw.ts";
import { median, RUNTIME } from "./_util.ts";

const [method = "reserve", batches = "10", perBatch = "200"] = process.argv
  .slice(2);
const op = await operation(method);
await op(50); // warm up: JIT, lazy imports, the runtime's first sockets
const samples: number[] = [];
const cpu: number[] = [];
const mainStart = mainThreadCpuUs();
for (let i = 0; i < Number(batches); i++) {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  await op(Number(perBatch));
  samples.push((performance.now() - start) * 1000 / Number(perBatch));
  const { user, system } = process.cpuUsage(cpuStart);
  cpu.push((user + system) / Number(perBatch));
}
const mainEnd = mainThreadCpuUs();
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
process.stdout.write(
  JSON.stringify({
    runtime: RUNTIME,
    method,
    usPerPort: Number(median(samples).toFixed(1)),
    cpuUsPerPort: Number(median(cpu).toFixed(1)),
    mainThreadCpuToWall: mainStart === undefined || mainEnd === undefined
      ? null
      : Number(
        ((mainEnd - mainStart) / (sum(samples) * Number(perBatch))).toFixed(2),
      ),
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

/** The main thread's CPU time so far in µs, where /proc says (Linux). */
function mainThreadCpuUs(): number | undefined {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "utf8");
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the line, in ticks of 10 ms (USER_HZ 100).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}
