// Copyright 2026 the @x/port-reserve authors. MIT license.
// The reservation sequence written straight against the runtime's own socket
// API, with none of mod.ts's checks, deadlines or adapters: what any
// JavaScript implementation of it costs on this runtime. For
// bench/per_call.ts's `yelp`, `proof` and `guarded` methods:
//   yelp     listen on 127.0.0.1:0, connect, accept, close the accepted side,
//            close the client (Yelp's sequence, as bench/reference.py does it)
//   proof    the same with each step proven as mod.ts proves it: half-close
//            the accepted side, wait for the client's end-of-stream, close
//            the client, wait for the accepted side's end-of-stream, close it
//   guarded  the proof plus what mod.ts's guarantees cost the runtime, at
//            their cheapest: the peer check (the accepted side's remote end
//            against the client's local one), a deadline on a timer shared by
//            all calls, held while a call runs, and where the runtime has
//            them, an abortable connect and one permission query (Deno),
//            listeners for errors and resets (Node). Nothing else of mod.ts:
//            its adapters, promises, messages and options.
// No error handling beyond throwing: a benchmark, not a library.
const hostname = "127.0.0.1";
const STEP_MS = 2000;

/** Which sequence: see the top of this file. */
export type RawMode = "yelp" | "proof" | "guarded";

interface DenoAddr {
  hostname: string;
  port: number;
}
interface DenoConn {
  localAddr: DenoAddr;
  remoteAddr: DenoAddr;
  read(buffer: Uint8Array): Promise<number | null>;
  closeWrite(): void;
  close(): void;
}
interface DenoScope {
  listen(o: { hostname: string; port: number }): {
    addr: { port: number };
    accept(): Promise<DenoConn>;
    close(): void;
  };
  connect(
    o: { hostname: string; port: number; signal?: AbortSignal },
  ): Promise<DenoConn>;
  permissions: {
    querySync(o: { name: "net"; host: string }): { state: string };
  };
}
interface BunSocket {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  end(): void;
  shutdown(): void;
}
interface BunHandlers {
  open?(socket: BunSocket): void;
  data(): void;
  end?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
  error?(socket: BunSocket, error: Error): void;
}
interface BunScope {
  listen(o: { hostname: string; port: number; socket: BunHandlers }): {
    port: number;
    stop(force: boolean): void;
  };
  connect(
    o: { hostname: string; port: number; socket: BunHandlers },
  ): Promise<BunSocket>;
}

/** A timer held (referenced) while a call runs, shared by all calls. */
interface SharedTimer {
  hold(): void;
  letGo(): void;
}

/** Returns a function that makes one reservation the raw way. */
export async function rawReserve(
  mode: RawMode,
): Promise<() => Promise<number>> {
  const { Deno, Bun } = globalThis as { Deno?: DenoScope; Bun?: BunScope };
  if (Deno) return denoReserve(Deno, mode);
  if (Bun) return bunReserve(Bun, mode);
  return nodeReserve(await import("node:net"), mode);
}

function denoReserve(deno: DenoScope, mode: RawMode): () => Promise<number> {
  const buffer = new Uint8Array(16);
  const guarded = mode === "guarded";
  const query = { name: "net", host: hostname } as const;
  // As mod.ts: an AbortSignal.timeout, which keeps Deno alive only while a
  // listener is attached.
  let signal: AbortSignal | undefined;
  const expire = (): void => void (signal = undefined);
  const timer: SharedTimer = {
    hold(): void {
      signal ??= AbortSignal.timeout(STEP_MS);
      signal.addEventListener("abort", expire);
    },
    letGo: () => signal?.removeEventListener("abort", expire),
  };
  return async () => {
    if (guarded && deno.permissions.querySync(query).state !== "granted") {
      throw new Error("No net permission");
    }
    const listener = deno.listen({ hostname, port: 0 });
    const { port } = listener.addr;
    if (guarded) timer.hold();
    const client = await deno.connect(
      guarded
        ? { hostname, port, signal: new AbortController().signal }
        : { hostname, port },
    );
    const accepted = await listener.accept();
    if (guarded) {
      const [remote, local] = [accepted.remoteAddr, client.localAddr];
      if (remote.port !== local.port || remote.hostname !== local.hostname) {
        throw new Error("Not the peer");
      }
    }
    if (mode !== "yelp") {
      accepted.closeWrite();
      await client.read(buffer);
      client.close();
      await accepted.read(buffer);
      accepted.close();
    } else {
      accepted.close();
      client.close();
    }
    listener.close();
    if (guarded) timer.letGo();
    return port;
  };
}

/** Node's and Bun's: an unreferenced timer, referenced while a call runs. */
function sharedTimer(): SharedTimer {
  let timer: { ref(): void; unref(): void } | undefined;
  return {
    hold(): void {
      if (!timer) {
        timer = setTimeout(() => timer = undefined, STEP_MS) as never;
      }
      timer!.ref();
    },
    letGo: () => timer?.unref(),
  };
}

function bunReserve(bun: BunScope, mode: RawMode): () => Promise<number> {
  const guarded = mode === "guarded";
  const timer = sharedTimer();
  // One listener's handlers for all: the accepted socket, and its end.
  let onOpen: (socket: BunSocket) => void = () => {};
  const ends = new Map<BunSocket, (error?: Error) => void>();
  const handlers: BunHandlers = {
    open: (socket) => onOpen(socket),
    data(): void {},
    end: (socket) => ends.get(socket)?.(),
    close: (socket, error) => ends.get(socket)?.(error),
    error: (socket, error) => ends.get(socket)?.(error),
  };
  return async () => {
    const opened = new Promise<BunSocket>((resolve) => onOpen = resolve);
    const listener = bun.listen({ hostname, port: 0, socket: handlers });
    if (guarded) timer.hold();
    let clientEnded!: (error?: Error) => void;
    const clientEnd = new Promise<void>((resolve, reject) =>
      clientEnded = (error) => error ? reject(error) : resolve()
    );
    const client = await bun.connect({
      hostname,
      port: listener.port,
      socket: {
        data(): void {},
        end: () => clientEnded(),
        close: (_, error) => clientEnded(error),
        error: (_, error) => clientEnded(error),
      },
    });
    const accepted = await opened;
    if (guarded && !samePeer(accepted, client)) throw new Error("Not the peer");
    if (mode !== "yelp") {
      const acceptedEnd = new Promise<void>((resolve, reject) =>
        ends.set(accepted, (error) => error ? reject(error) : resolve())
      );
      accepted.shutdown();
      await clientEnd;
      client.end();
      await acceptedEnd;
      ends.delete(accepted);
    }
    accepted.end();
    client.end();
    listener.stop(true);
    if (guarded) timer.letGo();
    return listener.port;
  };
}

function samePeer(
  accepted: { remoteAddress?: string; remotePort?: number },
  client: { localAddress?: string; localPort?: number },
): boolean {
  return accepted.remotePort === client.localPort &&
    accepted.remoteAddress === client.localAddress;
}

function nodeReserve(
  net: typeof import("node:net"),
  mode: RawMode,
): () => Promise<number> {
  const guarded = mode === "guarded";
  const timer = sharedTimer();
  return () =>
    new Promise((resolve, reject) => {
      let accepted: import("node:net").Socket | undefined;
      let client: import("node:net").Socket | undefined;
      const server = net.createServer({ allowHalfOpen: true }, (socket) => {
        accepted = socket;
        both();
      });
      // A reset, or a close before the end: mod.ts's end-of-stream rule.
      function watch(socket: import("node:net").Socket): void {
        let ended = false;
        socket.on("end", () => ended = true);
        socket.on("error", reject);
        socket.on("close", () => ended || reject(new Error("Reset")));
      }
      if (guarded) server.on("error", reject);
      server.listen({ host: hostname, port: 0 }, () => {
        const { port } = server.address() as { port: number };
        if (guarded) timer.hold();
        client = net.connect(
          { host: hostname, port, allowHalfOpen: true },
          both,
        );
        if (guarded) watch(client);
      });
      let ready = 0;
      function both(): void {
        if (++ready < 2) return;
        const port = (server.address() as { port: number }).port;
        function done(): void {
          if (guarded) timer.letGo();
          server.close(() => resolve(port));
        }
        if (mode === "yelp") {
          accepted!.destroy();
          client!.destroy();
          return done();
        }
        if (guarded) {
          if (!samePeer(accepted!, client!)) reject(new Error("Not the peer"));
          watch(accepted!);
        }
        client!.once("end", () => {
          accepted!.once("end", () => {
            accepted!.destroy();
            done();
          });
          client!.destroy();
        });
        accepted!.resume();
        client!.resume();
        accepted!.end();
      }
    });
}
