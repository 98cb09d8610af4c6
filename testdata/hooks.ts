// Copyright 2026 the @x/port-reserve authors. MIT license.
// The one writer of mod.ts's test hooks. Kept apart from test_util.ts, which
// reads /proc at load, so that a child with no permissions can import it.

/**
 * Sets mod.ts's test hooks, a global it reads on each call and does not
 * document: which socket adapter to use wherever it can run ("deno", "bun",
 * "node"; undefined for the runtime's own), and a shorter TIME_WAIT window
 * for reserveMany's batch limit.
 */
export function useBackend(
  hooks: { backend?: string; timeWaitMs?: number },
): void {
  (globalThis as Record<symbol, unknown>)[
    Symbol.for("@x/port-reserve/test")
  ] = hooks;
}
