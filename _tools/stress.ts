// Copyright 2026 the @x/port-reserve authors. MIT license.
// Race stress test: P processes each take K ports, by our method or by the
// naive port 0 trick, while an independent churn process keeps opening port-0
// listeners and outgoing connections, as other programs on a machine do.
//
//   RUNTIME _tools/stress.ts [--processes P] [--per-process K]
//                            [--method ours|naive] [--expect none|races]
//
// Reports: ports handed out, distinct, collisions (a port handed to more than
// one process, or twice), and ports the churn later landed on (it got the port
// after a process had been handed it). `--expect none` exits 1 unless both
// are 0; `--expect races` exits 1 unless either is not, which shows on the
// port 0 trick that the check can fail. Run it in a fresh network namespace
// (_tools/in_namespace.sh, as root), so the host's TIME_WAIT table and other
// programs do not skew it. `npm test` runs a small one (4 × 250) on Deno and
// Bun with `--expect none`, and the port 0 trick with `--expect races`;
// `deno task stress` and `deno task stress:bun` run the full 16 × 1,000.
import { spawn } from "node:child_process";
import * as net from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { reserve } from "../mod.ts";
import { naivePort } from "../bench/naive.ts";
import { RUNTIME } from "../bench/_util.ts";

const SCRIPT = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const at = args.lastIndexOf(name); // the last wins: deno task args come after
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
};

if (args[0] === "--worker") {
  await worker(option("--method", "ours"), Number(option("--count", "0")));
} else if (args[0] === "--churn") await churn();
else await coordinate();

/** Wall-clock milliseconds, comparable across processes. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Takes `count` ports one after another; prints [[port, time], ...]. */
async function worker(method: string, count: number): Promise<void> {
  const take = method === "naive" ? await naivePort() : () => reserve();
  const handed: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const port = await take();
    handed.push([port, now()]);
  }
  process.stdout.write(JSON.stringify(handed) + "\n");
}

/**
 * Until stdin closes: port-0 listeners and outgoing connections, alternating,
 * as other programs make them; prints [[port, time], ...] of what it got.
 */
async function churn(): Promise<void> {
  let running = true;
  process.stdin.on("end", () => running = false);
  process.stdin.on("close", () => running = false);
  process.stdin.resume();
  const listen = await naivePort();
  const connect = await outgoing();
  const got: [number, number][] = [];
  while (running) {
    got.push([await listen(), now()]);
    got.push([await connect(), now()]);
  }
  // Exit once written: the target server and its accept loop would keep the
  // process alive, and exiting before the pipe drains truncates the output.
  process.stdout.write(JSON.stringify(got) + "\n", () => process.exit(0));
}

/**
 * Returns a function that makes one outgoing connection to a local server and
 * returns its local port. The server closes first, so the churn's own ports
 * get no TIME_WAIT and do not fill the range. Deno's own API on Deno, where
 * node:net is several times slower.
 */
async function outgoing(): Promise<() => Promise<number>> {
  const { Deno } = globalThis as {
    Deno?: {
      listen(o: object): {
        addr: { port: number };
        accept(): Promise<{ close(): void }>;
      };
      connect(o: object): Promise<{
        localAddr: { port: number };
        read(buffer: Uint8Array): Promise<number | null>;
        close(): void;
      }>;
    };
  };
  if (Deno) {
    const target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for (;;) (await target.accept()).close();
    })();
    return async () => {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: target.addr.port,
      });
      await conn.read(new Uint8Array(1));
      conn.close();
      return conn.localAddr.port;
    };
  }
  const target = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  const { port } = target.address() as net.AddressInfo;
  return async () => {
    const socket = net.connect({ host: "127.0.0.1", port });
    await new Promise((resolve) => socket.once("connect", resolve));
    const local = socket.localPort!;
    socket.resume();
    await new Promise((resolve) => socket.once("close", resolve));
    return local;
  };
}

interface Child {
  output: Promise<string>;
  stdin: { end(): void };
}

function start(roleArgs: string[]): Child {
  // This process's runtime again, with all permissions.
  const runtimeArgs = RUNTIME === "deno" ? ["run", "-A"] : [];
  const child = spawn(process.execPath, [...runtimeArgs, SCRIPT, ...roleArgs], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => output += chunk);
  return {
    stdin: child.stdin!,
    output: new Promise((resolve, reject) => {
      child.on("close", (code) => {
        if (code === 0) resolve(output);
        else reject(new Error(`${roleArgs[0]} exited ${code}`));
      });
    }),
  };
}

async function coordinate(): Promise<void> {
  const processes = Number(option("--processes", "16"));
  const perProcess = Number(option("--per-process", "1000"));
  const method = option("--method", "ours");
  const churner = start(["--churn"]);
  const startedAt = now();
  const workers = Array.from(
    { length: processes },
    () =>
      start(["--worker", "--method", method, "--count", String(perProcess)]),
  );
  const handed = (await Promise.all(workers.map((w) => w.output)))
    .map((text) => JSON.parse(text) as [number, number][]);
  const seconds = (now() - startedAt) / 1000;
  // Let the churn go on as long again: "later" includes after the handout.
  await new Promise((resolve) =>
    setTimeout(resolve, Math.max(1000, seconds * 1000))
  );
  churner.stdin.end();
  const churned = JSON.parse(await churner.output) as [number, number][];

  const owners = new Map<number, { process: number; time: number }[]>();
  handed.forEach((ports, index) => {
    for (const [port, time] of ports) {
      const list = owners.get(port) ?? [];
      list.push({ process: index, time });
      owners.set(port, list);
    }
  });
  const total = processes * perProcess;
  let collisions = 0;
  for (const list of owners.values()) collisions += list.length - 1;
  const landed = new Set<number>();
  for (const [port, time] of churned) {
    if (owners.get(port)?.some((owner) => owner.time < time)) landed.add(port);
  }
  const report = {
    runtime: RUNTIME,
    method,
    processes,
    perProcess,
    total,
    distinct: owners.size,
    collisions,
    churnOperations: churned.length,
    landed: landed.size,
    seconds: Number(seconds.toFixed(2)),
  };
  process.stdout.write(JSON.stringify(report) + "\n");
  const expect = option("--expect", "");
  const raced = collisions > 0 || landed.size > 0;
  if ((expect === "none" && raced) || (expect === "races" && !raced)) {
    process.stderr.write(
      `stress: ${collisions} collisions and ${landed.size} ports landed on, expected ${expect}\n`,
    );
    process.exit(1);
  }
}
