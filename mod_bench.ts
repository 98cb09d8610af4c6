// Copyright 2026 the @x/port-reserve authors. MIT license.
// deno bench for reserve(), reserveMany(100) and the naive port 0 trick, the
// cost floor of any JavaScript approach. Every reservation stays outstanding
// for 60 s, so the iteration counts are fixed (about 4,300 ports in all, below
// the kernel's cliff at ~7,000) and `deno task bench` runs it in a fresh
// network namespace. bench/per_call.sh gives the same figures on Bun and Node.
import { reserve, reserveMany } from "./mod.ts";
import { naivePort } from "./bench/naive.ts";

const takeNaively = await naivePort();

Deno.bench({
  name: "reserve()",
  group: "one port",
  baseline: true,
  n: 2000,
  warmup: 100,
}, async () => {
  await reserve();
});

Deno.bench({
  name: "port 0 trick: listen on 0 and close (racy)",
  group: "one port",
  n: 2000,
  warmup: 100,
}, async () => {
  await takeNaively();
});

Deno.bench({
  name: "reserveMany(100): 100 ports",
  group: "100 ports",
  n: 10,
  warmup: 1,
}, async () => {
  await reserveMany(100);
});

Deno.bench({
  name: "reserve() × 100, one after another",
  group: "100 ports",
  baseline: true,
  n: 10,
  warmup: 1,
}, async () => {
  for (let i = 0; i < 100; i++) await reserve();
});
