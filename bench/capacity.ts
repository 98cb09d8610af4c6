// Copyright 2026 the @x/port-reserve authors. MIT license.
// The capacity curve: reserve() until TOTAL reservations are outstanding, or
// the range runs out; the median microseconds per reservation of each BUCKET
// reservations. One JSON line, as `floor capacity` prints for the C floor.
//   RUNTIME bench/capacity.ts [TOTAL] [BUCKET]
// Run it in a fresh network namespace (bench/capacity.sh does): all of its
// reservations are then the outstanding ones, as long as it takes under 60 s.
import process from "node:process";
import { reserve } from "../mod.ts";
import { median, RUNTIME } from "./_util.ts";

const [total = 20000, bucket = 500] = process.argv.slice(2).map(Number);
const buckets: [number, number][] = [];
const times: number[] = [];
let reserved = 0;
let error: string | null = null;
let errorUs: number | undefined;
const started = performance.now();
while (reserved < total) {
  const start = performance.now();
  try {
    await reserve();
  } catch (caught) {
    errorUs = (performance.now() - start) * 1000;
    error = (caught as Error).message;
    break;
  }
  times.push((performance.now() - start) * 1000);
  reserved++;
  if (times.length === bucket || reserved === total) {
    buckets.push([reserved, round(median(times))]);
    times.length = 0;
  }
}
const seconds = round((performance.now() - started) / 1000);
const report = { runtime: RUNTIME, buckets, reserved, seconds, error };
process.stdout.write(
  JSON.stringify(
    errorUs === undefined ? report : { ...report, errorUs: round(errorUs) },
  ) + "\n",
);

function round(value: number): number {
  return Number(value.toFixed(1));
}
