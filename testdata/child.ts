// Copyright 2026 the @x/port-reserve authors. MIT license.
// A child process for mod_test.ts, run as `RUNTIME child.ts BACKEND MODE [ARG]`,
// BACKEND being "deno", "bun", "node" or "auto", and MODE one of:
//   call JSON        reserve(JSON options) once
//   sequential N     reserve() N times, one after another
//   exhaust          reserve() until it fails, counting open file descriptors
// It prints one JSON line and exits 0; a failure is reported in the JSON.
import process from "node:process";
import { reserve } from "../mod.ts";

const [backend, mode, arg = ""] = process.argv.slice(2);
if (backend !== "auto") {
  (globalThis as Record<symbol, string>)[
    Symbol.for("@x/port-reserve/backend")
  ] = backend;
}
process.stdout.write(JSON.stringify(await run(mode, arg)) + "\n");

async function run(mode: string, arg: string): Promise<unknown> {
  if (mode === "call") {
    try {
      return { port: await reserve(JSON.parse(arg)) };
    } catch (error) {
      return { error: describe(error) };
    }
  }
  if (mode === "sequential") {
    const ports = [];
    for (let i = 0; i < Number(arg); i++) ports.push(await reserve());
    return { ports };
  }
  if (mode === "exhaust") {
    // Only this mode reads /proc, so the others need no read permission.
    const { readdirSync } = await import("node:fs");
    const fds = () => readdirSync("/proc/self/fd").length;
    const fdBefore = fds();
    const ports = [];
    const start = performance.now();
    let error: unknown;
    try {
      for (;;) ports.push(await reserve());
    } catch (caught) {
      error = caught;
    }
    const ms = performance.now() - start;
    return { ports, ms, error: describe(error), fdBefore, fdAfter: fds() };
  }
  throw new Error(`Unknown mode ${mode}`);
}

function describe(error: unknown): unknown {
  const { name, message, cause } = error as Error;
  return { name, message, cause: cause === undefined ? null : String(cause) };
}
