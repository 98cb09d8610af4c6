// Copyright 2026 the @x/port-reserve authors. MIT license.
// A child process for mod_test.ts, run as `RUNTIME child.ts BACKEND MODE [ARG]`,
// BACKEND being "deno", "bun", "node" or "auto", and MODE one of:
//   call JSON        reserve(JSON options) once
//   calls JSON       reserve() once for each options object of a JSON array
//   hold JSON        hold(options) and probe the port while held and after
//                    the release: {options, probe: [addresses], churn: N,
//                    barrier: {dir, count}}; see holdAndProbe()
//   fault JSON [EXTRA] the same, counting the TCP sockets left open, then exit;
//                    EXTRA {"idleMs": N}: a first reserve() then N ms idle;
//                    {"clockBackMs": N}: Date.now() N ms back after 500 ms
//   many JSON        reserveMany(count, options) with {count, options, timeWaitMs}
//   sequential N     reserve() N times, one after another
//   loop N           reserve() N times, printing each port on a line as it comes
//   burst N          N concurrent reserve() calls, counting open descriptors
//   emfile N [JSON]  reserve(JSON options) with only N file descriptors left
//   exhaust          reserve() until it fails, counting open file descriptors
//   wildcard JSON    reserveMany on a wildcard, then a bind(0) churn on each of
//                    {count, hostname, churn: [addresses], rounds}
//   revoke N         Deno: reserve(), revoking the net permission N microtask
//                    turns after the call
//   cluster N        Node: three cluster workers make N reservations each
//   revoke-run WHAT  Deno: after a first reserve(), WHAT (reserve or hold)
//                    then, in the same synchronous run, a revocation and a
//                    second reserve(); a held port is then released
//   rewrite-query H  Deno: querySync wrapped so that it rewrites the first
//                    net descriptor it is given to ask about 127.0.0.1, then
//                    reserve({hostname: H}) three times
// It prints one JSON line and exits 0; a failure is reported in the JSON.
// Only modes that read /proc or open files need more than net permission.
import { spawnSync } from "node:child_process";
import process from "node:process";
import { hold, reserve, reserveMany } from "../mod.ts";
import { useBackend } from "./hooks.ts";

const [backend, mode, arg = "", extra = "{}"] = process.argv.slice(2);
const hooks = { backend: backend === "auto" ? undefined : backend };
useBackend(hooks);
process.stdout.write(JSON.stringify(await run(mode, arg)) + "\n");

async function run(mode: string, arg: string): Promise<unknown> {
  if (mode === "call") {
    const start = performance.now();
    try {
      return { port: await reserve(JSON.parse(arg)), ms: since(start) };
    } catch (error) {
      return { error: describe(error), ms: since(start) };
    }
  }
  if (mode === "calls") {
    const results = [];
    for (const options of JSON.parse(arg)) {
      try {
        results.push({ port: await reserve(options) });
      } catch (error) {
        results.push({ error: describe(error) });
      }
    }
    return { results };
  }
  if (mode === "hold") return await holdAndProbe(JSON.parse(arg));
  if (mode === "many") {
    const { count, options, timeWaitMs } = JSON.parse(arg);
    useBackend({ ...hooks, timeWaitMs });
    try {
      return { ports: await reserveMany(count, options) };
    } catch (error) {
      return { error: describe(error) };
    }
  }
  if (mode === "sequential") {
    const ports = [];
    for (let i = 0; i < Number(arg); i++) ports.push(await reserve());
    return { ports };
  }
  if (mode === "loop") {
    for (let i = 0; i < Number(arg); i++) {
      process.stdout.write(`${await reserve()}\n`);
    }
    return { done: true };
  }
  if (mode === "revoke") {
    const { Deno } = globalThis as unknown as {
      Deno: { permissions: { revokeSync(query: { name: "net" }): unknown } };
    };
    const reservation = reserve();
    for (let i = 0; i < Number(arg); i++) await Promise.resolve();
    Deno.permissions.revokeSync({ name: "net" });
    try {
      return { port: await reservation };
    } catch (error) {
      return { error: describe(error) };
    }
  }
  if (mode === "revoke-run") {
    const { Deno } = globalThis as unknown as {
      Deno: { permissions: { revokeSync(query: { name: "net" }): unknown } };
    };
    await reserve(); // the adapter is loaded: a call now runs to its connect
    const first = arg === "hold"
      ? hold().then((held) => held.release().then(() => held.port))
      : reserve();
    Deno.permissions.revokeSync({ name: "net" });
    const second = reserve();
    const results = await Promise.allSettled([first, second]);
    return {
      results: results.map((result) =>
        result.status === "fulfilled"
          ? { port: result.value }
          : { error: describe(result.reason) }
      ),
    };
  }
  if (mode === "rewrite-query") {
    // Code of the user's that wraps querySync and changes its argument: a
    // descriptor kept across calls would then ask about another host.
    const { permissions } = (globalThis as unknown as {
      Deno: { permissions: { querySync(query: { host?: string }): unknown } };
    }).Deno;
    const querySync = permissions.querySync.bind(permissions);
    let rewritten = false;
    permissions.querySync = (query) => {
      const state = querySync(query);
      if (!rewritten && query.host !== undefined) {
        rewritten = true;
        query.host = "127.0.0.1";
      }
      return state;
    };
    const results = [];
    for (let i = 0; i < 3; i++) {
      try {
        results.push({ port: await reserve({ hostname: arg }) });
      } catch (error) {
        results.push({ error: describe(error) });
      }
    }
    return { results };
  }
  const { readdirSync, openSync, closeSync } = await import("node:fs");
  const fds = () => readdirSync("/proc/self/fd").length;
  if (mode === "fault") {
    // As call, counting the TCP sockets the process holds, and exiting at
    // once: on Bun a connect that outlived its deadline cannot be cancelled,
    // and would keep the process alive until the kernel gives up on it.
    const { readlinkSync, readFileSync } = await import("node:fs");
    const tcpSockets = () => {
      const inodes = new Set(
        ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((file) =>
          readFileSync(file, "utf8").split("\n").slice(1)
            .map((line) => line.trim().split(/\s+/)[9])
        ),
      );
      return readdirSync("/proc/self/fd").filter((fd) => {
        try {
          const inode = /^socket:\[(\d+)\]$/.exec(
            readlinkSync(`/proc/self/fd/${fd}`),
          )?.[1];
          return inode !== undefined && inodes.has(inode);
        } catch {
          return false; // the descriptor readdir itself used
        }
      }).length;
    };
    const { idleMs, clockBackMs } = JSON.parse(extra);
    if (idleMs !== undefined) {
      // The shared deadline timer outlives this one's hand-off, and fires.
      // (In a namespace: a port the fault tests' drop rules leave alone.)
      await reserve({ port: 4000 });
      await new Promise((resolve) => setTimeout(resolve, idleMs));
    }
    if (clockBackMs !== undefined) {
      // The wall clock steps back (NTP, a VM resumed) while the call waits.
      const realNow = Date.now;
      setTimeout(() => Date.now = () => realNow() - clockBackMs, 500);
    }
    const before = tcpSockets();
    const start = performance.now();
    let result: unknown;
    try {
      result = { port: await reserve(JSON.parse(arg)) };
    } catch (error) {
      result = { error: describe(error) };
    }
    const ms = since(start);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const report = { ...result as object, ms, tcpLeft: tcpSockets() - before };
    process.stdout.write(JSON.stringify(report) + "\n");
    process.exit(0);
  }
  if (mode === "burst") {
    // The runtime opens descriptors of its own under the first load (Deno:
    // two Unix socket pairs): a first burst warms it up, the second counts.
    const burst = () =>
      Promise.allSettled(Array.from({ length: Number(arg) }, () => reserve()));
    await burst();
    const fdBefore = fds();
    const results = await burst();
    const ports = results.flatMap((r) =>
      r.status === "fulfilled" ? r.value : []
    );
    const errors = [
      ...new Set(
        results.flatMap((r) => r.status === "rejected" ? r.reason.message : []),
      ),
    ];
    return {
      ok: ports.length,
      distinct: new Set(ports).size,
      errors,
      fdBefore,
      fdAfter: fds(),
    };
  }
  if (mode === "emfile") {
    // A first reservation opens the runtime's own descriptors (libuv keeps
    // one in reserve for EMFILE). Then fill the table, and free N, and one
    // for counting them.
    await reserve();
    const filler: number[] = [];
    try {
      for (;;) filler.push(openSync("/dev/null", "r"));
    } catch { /* full */ }
    for (let i = 0; i <= Number(arg); i++) closeSync(filler.pop()!);
    const fdBefore = fds(); // counting takes a descriptor for a moment
    const spare = openSync("/dev/null", "r");
    const start = performance.now();
    let result: unknown;
    try {
      result = { port: await reserve(JSON.parse(extra)) };
    } catch (error) {
      result = { error: describe(error) };
    }
    closeSync(spare);
    const report = {
      ...result as object,
      ms: since(start),
      fdBefore,
      fdAfter: fds(),
    };
    for (const fd of filler) closeSync(fd);
    return report;
  }
  if (mode === "exhaust") {
    const fdBefore = fds();
    const ports = [];
    const start = performance.now();
    let error: unknown;
    try {
      for (;;) ports.push(await reserve());
    } catch (caught) {
      error = caught;
    }
    const ms = since(start);
    return { ports, ms, error: describe(error), fdBefore, fdAfter: fds() };
  }
  if (mode === "wildcard") {
    const { count, hostname, churn, rounds } = JSON.parse(arg);
    const { states } = await import("../test_util.ts");
    const net = await import("node:net");
    let ports: number[];
    try {
      ports = await reserveMany(count, { hostname });
    } catch (error) {
      return { error: describe(error) };
    }
    // Which addresses each port has a TIME_WAIT on, as the kernel says.
    // A dual-stack listener's IPv4 TIME_WAITs are v4-mapped, in tcp6.
    const mapped = (address: string) => {
      const [a, b, c, d] = address.split(".").map(Number);
      return `::ffff:${(a << 8 | b).toString(16)}:${(c << 8 | d).toString(16)}`;
    };
    const inTimeWait = (address: string, port: number) =>
      [address, ...address.includes(":") ? [] : [mapped(address)]]
        .some((local) => states(local, port).includes("TIME_WAIT"));
    const timeWait = Object.fromEntries(
      (churn as string[]).map((address) => [
        address,
        ports.filter((port) => inTimeWait(address, port)).length,
      ]),
    );
    const reserved = new Set(ports);
    const landed: Record<string, number[]> = {};
    for (const address of churn as string[]) {
      landed[address] = [];
      for (let i = 0; i < rounds; i++) {
        const server = net.createServer();
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen({ host: address, port: 0 }, resolve);
        });
        const { port } = server.address() as { port: number };
        if (reserved.has(port)) landed[address].push(port);
        await new Promise((resolve) => server.close(resolve));
      }
    }
    // A server on the wildcard itself takes every reserved port.
    let rebound = 0;
    for (const port of ports) {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: hostname, port }, resolve);
      });
      rebound++;
      await new Promise((resolve) => server.close(resolve));
    }
    return { ports, timeWait, landed, rebound };
  }
  if (mode === "cluster") return await inCluster(Number(arg));
  throw new Error(`Unknown mode ${mode}`);
}

/**
 * Node's cluster: three workers each make `count` reservations of every kind
 * (reserve(), a held port released, localhost, an excluded port), and say
 * which ports they got and which were, when their promise settled, still
 * listening or not in TIME_WAIT on 127.0.0.1. The primary prints the sum; a
 * worker sends its report and exits, never returning.
 */
async function inCluster(count: number): Promise<unknown> {
  const cluster = (await import("node:cluster")).default;
  interface Report {
    ports: number[];
    notTimeWait: number[];
    errors: unknown[];
  }
  if (cluster.isPrimary) {
    const reports = await Promise.all(
      [0, 1, 2].map(() =>
        new Promise<Report>((resolve, reject) => {
          const worker = cluster.fork();
          worker.once("message", resolve);
          worker.once("exit", (code) => {
            reject(
              new Error(`A worker exited with ${code} before it reported`),
            );
          });
        })
      ),
    );
    const ports = reports.flatMap((report) => report.ports);
    return {
      ports: ports.length,
      distinct: new Set(ports).size,
      notTimeWait: reports.flatMap((report) => report.notTimeWait),
      errors: reports.flatMap((report) => report.errors),
    };
  }
  const { states } = await import("../test_util.ts");
  const report: Report = { ports: [], notTimeWait: [], errors: [] };
  for (let i = 0; i < count; i++) {
    try {
      let port;
      if (i % 4 === 0) port = await reserve();
      else if (i % 4 === 1) {
        const held = await hold();
        await held.release();
        port = held.port;
      } else if (i % 4 === 2) port = await reserve({ hostname: "localhost" });
      else port = await reserve({ exclude: [1] });
      report.ports.push(port);
      const seen = states("127.0.0.1", port);
      if (seen.includes("LISTEN") || !seen.includes("TIME_WAIT")) {
        report.notTimeWait.push(port);
      }
    } catch (error) {
      report.errors.push(describe(error));
    }
  }
  process.send!(report, () => process.exit(0));
  return await new Promise(() => {});
}

/**
 * Holds a port, then on each `probe` address: binds it with SO_REUSEADDR in
 * Python and in node:net while held (both must fail), runs a churn of `churn`
 * bind(0) listeners and outgoing connections (none may get it), releases,
 * and does the same again (now the binds succeed, and the kernel still keeps
 * the churn off the port, which is in TIME_WAIT). With a `barrier`, it
 * releases only once `count` holders (itself included) have each left a file
 * in `dir`, or after a minute: holders in parallel then all hold at once,
 * however slowly a busy machine starts them.
 */
async function holdAndProbe(
  { options, probe = [], churn = 0, barrier }: {
    options: Record<string, unknown>;
    probe?: string[];
    churn?: number;
    barrier?: { dir: string; count: number };
  },
): Promise<unknown> {
  const { states, tcpCounters } = await import("../test_util.ts");
  let reservation;
  try {
    reservation = await hold(options);
  } catch (error) {
    return { error: describe(error) };
  }
  const { port } = reservation;
  const look = async () => ({
    states: Object.fromEntries(probe.map((a) => [a, states(a, port)])),
    python: Object.fromEntries(probe.map((a) => [a, pythonBind(a, port)])),
    node: await sequentially(probe, (a) => nodeBind(a, port)),
    landed: (await churnPorts(churn)).filter((p) => p === port).length,
  });
  const held = await look();
  if (barrier) await allHolding(barrier.dir, barrier.count, port);
  await reservation.release();
  await reservation.release(); // a no-op
  // The last FIN crosses loopback in softirq context: allow it a moment.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const released = await look();
  return { port, held, released, counters: tcpCounters() };
}

/**
 * Leaves a file in `dir`, then waits until `count` files are there, for at
 * most a minute: a holder that never comes fails the test, not hangs it.
 */
async function allHolding(
  dir: string,
  count: number,
  port: number,
): Promise<void> {
  const { readdirSync, writeFileSync } = await import("node:fs");
  writeFileSync(`${dir}/${port}-${process.pid}`, "");
  const until = performance.now() + 60_000;
  while (readdirSync(dir).length < count && performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `f` of each address, one after another (binds must not overlap). */
async function sequentially(
  addresses: string[],
  f: (address: string) => Promise<string>,
): Promise<Record<string, string>> {
  const results: Record<string, string> = {};
  for (const address of addresses) results[address] = await f(address);
  return results;
}

/** A bind with SO_REUSEADDR and a listen in Python: "bound" or the errno. */
function pythonBind(address: string, port: number): string {
  const script = "import socket, sys\n" +
    "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n" +
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n" +
    "try:\n  s.bind((sys.argv[1], int(sys.argv[2])))\n  s.listen()\n  print('bound')\n" +
    "except OSError as e:\n  print(e.errno == 98 and 'EADDRINUSE' or e)";
  const result = spawnSync("python3", ["-c", script, address, String(port)], {
    encoding: "utf8",
  });
  return result.error ? "no python3" : result.stdout.trim();
}

/** A node:net server on address:port (SO_REUSEADDR): "bound" or the code. */
async function nodeBind(address: string, port: number): Promise<string> {
  const net = await import("node:net");
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: address, port }, resolve);
    });
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
  await new Promise((resolve) => server.close(resolve));
  return "bound";
}

/** The local ports of `count` bind(0) listeners and `count` connections. */
async function churnPorts(count: number): Promise<number[]> {
  const net = await import("node:net");
  const ports: number[] = [];
  const target = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  for (let i = 0; i < count; i++) {
    const server = net.createServer();
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    ports.push((server.address() as { port: number }).port);
    await new Promise((resolve) => server.close(resolve));
    const socket = net.connect({
      host: "127.0.0.1",
      port: (target.address() as { port: number }).port,
    });
    await new Promise((resolve) => socket.once("connect", resolve));
    ports.push(socket.localPort!);
    socket.destroy();
  }
  await new Promise((resolve) => target.close(resolve));
  return ports;
}

function since(start: number): number {
  return Math.round(performance.now() - start);
}

function describe(error: unknown): unknown {
  const { name, message, cause } = error as Error;
  return { name, message, cause: cause === undefined ? null : String(cause) };
}
