// Copyright 2026 the @x/port-reserve authors. MIT license.
// The JavaScript that mod.ts runs per call, apart from the kernel and the
// runtime's sockets: reserve(), hold() + release() and bench/raw.ts's
// `guarded` and `proof`, each over an in-memory stand-in for Deno's socket
// API (every listen, connect, accept and read settles on the microtask
// queue; nothing reaches a socket), their batches alternating in one process.
// Prints one JSON line: µs per call of each, and moduleUs, reserve() less
// guarded: what this module's own code adds to the guarantees at their
// cheapest. bench/per_call.sh's reserve() / guarded, on real sockets, is
// that plus whatever the extra code costs the runtime around it (caches,
// the event loop).
// The stand-in is Deno's API, so on every runtime this runs mod.ts's shared
// layer and its Deno adapter, on that runtime's engine (V8 or
// JavaScriptCore); the timers are real. It must load mod.ts itself: run it
// as a file of its own.
//   deno run -A bench/js_cost.ts | bun bench/js_cost.ts | node bench/js_cost.ts
// (Node 24, which runs TypeScript as it is.)
import { median, RUNTIME } from "./_util.ts";
import { rawReserve } from "./raw.ts";

interface Addr {
  hostname: string;
  port: number;
  transport: "tcp";
}

/** One end of a stand-in connection: read() gives null once the peer ends. */
class FakeConn {
  localAddr: Addr;
  remoteAddr: Addr;
  peer: FakeConn | undefined;
  #ended = false;
  #readers: ((read: null) => void)[] = [];
  constructor(local: number, remote: number) {
    this.localAddr = { hostname: "127.0.0.1", port: local, transport: "tcp" };
    this.remoteAddr = { hostname: "127.0.0.1", port: remote, transport: "tcp" };
  }
  read(_buffer: Uint8Array): Promise<number | null> {
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#readers.push(resolve));
  }
  closeWrite(): void {
    this.peer!.#end();
  }
  close(): void {
    this.peer!.#end();
  }
  #end(): void {
    this.#ended = true;
    for (const resolve of this.#readers.splice(0)) resolve(null);
  }
}

class FakeListener {
  addr: Addr;
  #queue: FakeConn[] = [];
  #waiting: ((conn: FakeConn) => void)[] = [];
  constructor(port: number) {
    this.addr = { hostname: "127.0.0.1", port, transport: "tcp" };
  }
  accept(): Promise<FakeConn> {
    const ready = this.#queue.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
  arrive(conn: FakeConn): void {
    const waiting = this.#waiting.shift();
    if (waiting) waiting(conn);
    else this.#queue.push(conn);
  }
  close(): void {
    listeners.delete(this.addr.port);
  }
}

const listeners = new Map<number, FakeListener>();
let nextPort = 1024;
const fakeDeno = {
  args: [] as string[],
  permissions: { querySync: (): { state: string } => ({ state: "granted" }) },
  networkInterfaces: (): { address: string }[] => [],
  listen(_options: { hostname: string; port: number }): FakeListener {
    nextPort = nextPort >= 65535 ? 1024 : nextPort + 1;
    const listener = new FakeListener(nextPort);
    listeners.set(nextPort, listener);
    return listener;
  },
  connect(options: { hostname: string; port: number }): Promise<FakeConn> {
    const listener = listeners.get(options.port)!;
    const client = new FakeConn(options.port + 1, options.port);
    const accepted = new FakeConn(options.port, options.port + 1);
    client.peer = accepted;
    accepted.peer = client;
    return Promise.resolve().then(() => {
      listener.arrive(accepted);
      return client;
    });
  },
};

// Deno's own global is replaced; elsewhere `Deno` is new, and both mod.ts
// (which reads it as it loads, so it is loaded after) and raw.ts then take
// the Deno path.
Object.defineProperty(globalThis, "Deno", {
  value: fakeDeno,
  configurable: true,
  writable: true,
});
const { hold, reserve } = await import("../mod.ts");

const methods: Record<string, () => Promise<unknown>> = {
  reserve: () => reserve(),
  hold: async () => await (await hold()).release(),
  guarded: await rawReserve("guarded"),
  proof: await rawReserve("proof"),
};
const names = Object.keys(methods);
const us: Record<string, number[]> = Object.fromEntries(
  names.map((name) => [name, []]),
);
const CALLS = 1000;
for (let round = 0; round < 120; round++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(round + k) % names.length];
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) await methods[name]();
    // The first 20 rounds warm the JIT up.
    if (round >= 20) us[name].push((performance.now() - start) * 1000 / CALLS);
  }
}
const result: Record<string, unknown> = { runtime: RUNTIME };
for (const name of names) result[`${name}Us`] = +median(us[name]).toFixed(2);
result.moduleUs = +(median(us.reserve) - median(us.guarded)).toFixed(2);
// deno-lint-ignore no-console
console.log(JSON.stringify(result));
