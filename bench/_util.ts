// Copyright 2026 the @x/port-reserve authors. MIT license.
// Helpers shared by the benchmarks in bench/ and the race check
// _tools/stress.ts: which runtime runs them, and the median of a sample.
// Not a test helper (those are in test_util.ts), and not shipped.

/** A runtime this package runs on, as the reports of bench/ name it. */
export type Runtime = "deno" | "bun" | "node";

/**
 * The runtime running this process, by feature test: Deno where `Deno` is a
 * global, else Bun where `Bun` is, else Node.
 */
export const RUNTIME: Runtime = runtime();

/**
 * The median of `values`: the middle one once sorted, the upper middle one of
 * an even count. Leaves `values` as it is; NaN when it is empty.
 */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)];
}

function runtime(): Runtime {
  const scope = globalThis as { Deno?: unknown; Bun?: unknown };
  if (scope.Deno !== undefined) return "deno";
  if (scope.Bun !== undefined) return "bun";
  return "node";
}
