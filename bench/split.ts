// Copyright 2026 the @x/port-reserve authors. MIT license.
// Where the time between reserve() and bench/raw.ts's `guarded` goes on Deno:
// both run in one process in alternating batches of 20 calls (130 each, below
// the kernel's bind(0) cliff) under V8's sampling profiler, and each sample is
// put down to the batch it fell in, by time. Two steps (bench/split.sh runs
// both, in a fresh network namespace):
//   deno run -A --cpu-prof --cpu-prof-dir=DIR \
//     --v8-flags=--cpu-profiler-sampling-interval=100 bench/split.ts run DIR
//   deno run -A bench/split.ts report DIR
// The report prints, per method, the sampled milliseconds of each kind of
// work (JavaScript, each of Deno's ops, garbage collection, V8's own work, and
// "idle": the event loop's Rust side, outside V8), and their difference per
// call. A sampled estimate: compare runs, not single figures.
import { reserve } from "../mod.ts";
import { rawReserve } from "./raw.ts";

interface Batches {
  /** performance.now() when the marker began. */
  marker: number;
  /** Each batch: its method, start and end on performance.now(). */
  batches: [string, number, number][];
}
interface ProfileNode {
  id: number;
  callFrame: { functionName: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const BATCHES = 130;
const PER_BATCH = 20;
const [mode, dir] = Deno.args;
if ((mode !== "run" && mode !== "report") || !dir) {
  throw new Error("Usage: bench/split.ts run|report DIR");
}
if (mode === "run") await run(dir);
else report(dir);

async function run(dir: string): Promise<void> {
  const guarded = await rawReserve("guarded");
  const methods: [string, () => Promise<number>][] = [
    ["reserve", () => reserve()],
    ["guarded", guarded],
  ];
  for (const [, call] of methods) for (let i = 0; i < 50; i++) await call();
  const marker = performance.now();
  spin(3);
  const batches: Batches["batches"] = [];
  for (let batch = 0; batch < BATCHES; batch++) {
    for (let k = 0; k < 2; k++) {
      const [name, call] = methods[(batch + k) % 2];
      const start = performance.now();
      for (let i = 0; i < PER_BATCH; i++) await call();
      batches.push([name, start, performance.now()]);
    }
  }
  Deno.writeTextFileSync(
    `${dir}/batches.json`,
    JSON.stringify({ marker, batches }),
  );
}

/** Busy for `ms`: its samples tie the profile's clock to performance.now(). */
function spin(ms: number): void {
  const start = performance.now();
  while (performance.now() - start < ms);
}

function report(dir: string): void {
  const name = [...Deno.readDirSync(dir)].find((e) =>
    e.name.endsWith(".cpuprofile")
  )?.name;
  if (!name) {
    throw new Error(`No .cpuprofile in ${dir}: run it with --cpu-prof`);
  }
  const profile: Profile = JSON.parse(Deno.readTextFileSync(`${dir}/${name}`));
  const { marker, batches }: Batches = JSON.parse(
    Deno.readTextFileSync(`${dir}/batches.json`),
  );
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const within = (id: number, fn: string): boolean => {
    for (
      let at: number | undefined = id;
      at !== undefined;
      at = parent.get(at)
    ) {
      if (byId.get(at)!.callFrame.functionName === fn) return true;
    }
    return false;
  };
  let clock = profile.startTime;
  const times = profile.samples.map((_, i) =>
    (clock += profile.timeDeltas[i]) / 1000
  );
  const first = profile.samples.findIndex((id) => within(id, "spin"));
  if (first < 0) throw new Error("The marker was not sampled: run it again");
  const offset = times[first] - marker;
  const ms: Record<string, Record<string, number>> = {
    reserve: {},
    guarded: {},
  };
  let at = 0;
  profile.samples.forEach((id, i) => {
    const t = times[i] - offset;
    while (at < batches.length && batches[at][2] < t) at++;
    if (at >= batches.length || batches[at][1] > t) return;
    const fn = byId.get(id)!.callFrame.functionName;
    const kind = fn.startsWith("op_") || fn.startsWith("(") ? fn : "JavaScript";
    const of = ms[batches[at][0]];
    of[kind] = (of[kind] ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000;
  });
  const wall: Record<string, number> = { reserve: 0, guarded: 0 };
  for (const [method, start, end] of batches) wall[method] += end - start;
  const calls = BATCHES * PER_BATCH;
  const kinds = Object.keys({ ...ms.reserve, ...ms.guarded })
    .sort((a, b) => (ms.reserve[b] ?? 0) - (ms.reserve[a] ?? 0));
  const row = (kind: string, a: number, b: number): string =>
    `${kind.padEnd(22)}${a.toFixed(1).padStart(8)}${b.toFixed(1).padStart(8)}${
      ((a - b) * 1000 / calls).toFixed(2).padStart(10)
    }`;
  // deno-lint-ignore no-console
  console.log(
    `${"ms".padEnd(22)} reserve guarded µs/call\n${
      [row("wall", wall.reserve, wall.guarded)]
        .concat(
          kinds.map((k) => row(k, ms.reserve[k] ?? 0, ms.guarded[k] ?? 0)),
        )
        .join("\n")
    }`,
  );
}
