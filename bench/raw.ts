// Copyright 2026 the @x/port-reserve authors. MIT license.
// The reservation sequence written straight against the runtime's own socket
// API, with none of mod.ts's checks, deadlines or adapters: what any
// JavaScript implementation of it costs on this runtime. For
// bench/per_call.ts's `yelp` and `proof` methods:
//   yelp   listen on 127.0.0.1:0, connect, accept, close the accepted side,
//          close the client (Yelp's sequence, as bench/reference.py does it)
//   proof  the same with each step proven as mod.ts proves it: half-close the
//          accepted side, wait for the client's end-of-stream, close the
//          client, wait for the accepted side's end-of-stream, close it
// No error handling: a benchmark, not a library.
const hostname = "127.0.0.1";

interface DenoConn {
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
  connect(o: { hostname: string; port: number }): Promise<DenoConn>;
}
interface BunSocket {
  end(): void;
  shutdown(): void;
}
interface BunHandlers {
  open?(socket: BunSocket): void;
  data(): void;
  end?(socket: BunSocket): void;
  close?(socket: BunSocket): void;
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

/** Returns a function that makes one reservation the raw way. */
export async function rawReserve(
  proof: boolean,
): Promise<() => Promise<number>> {
  const { Deno, Bun } = globalThis as { Deno?: DenoScope; Bun?: BunScope };
  if (Deno) {
    const buffer = new Uint8Array(16);
    return async () => {
      const listener = Deno.listen({ hostname, port: 0 });
      const { port } = listener.addr;
      const client = await Deno.connect({ hostname, port });
      const accepted = await listener.accept();
      if (proof) {
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
      return port;
    };
  }
  if (Bun) return bunReserve(Bun, proof);
  return nodeReserve(await import("node:net"), proof);
}

function bunReserve(bun: BunScope, proof: boolean): () => Promise<number> {
  // One listener's handlers for all: the accepted socket, and its end.
  let onOpen: (socket: BunSocket) => void = () => {};
  const ends = new Map<BunSocket, () => void>();
  const handlers: BunHandlers = {
    open: (socket) => onOpen(socket),
    data(): void {},
    end: (socket) => ends.get(socket)?.(),
    close: (socket) => ends.get(socket)?.(),
  };
  return async () => {
    const opened = new Promise<BunSocket>((resolve) => onOpen = resolve);
    const listener = bun.listen({ hostname, port: 0, socket: handlers });
    let clientEnded!: () => void;
    const clientEnd = new Promise<void>((resolve) => clientEnded = resolve);
    const client = await bun.connect({
      hostname,
      port: listener.port,
      socket: { data(): void {}, end: clientEnded, close: clientEnded },
    });
    const accepted = await opened;
    if (proof) {
      const acceptedEnd = new Promise<void>((resolve) =>
        ends.set(accepted, resolve)
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
    return listener.port;
  };
}

function nodeReserve(
  net: typeof import("node:net"),
  proof: boolean,
): () => Promise<number> {
  return () =>
    new Promise((resolve) => {
      let accepted: import("node:net").Socket | undefined;
      let client: import("node:net").Socket | undefined;
      const server = net.createServer({ allowHalfOpen: true }, (socket) => {
        accepted = socket;
        both();
      });
      server.listen({ host: hostname, port: 0 }, () => {
        const { port } = server.address() as { port: number };
        client = net.connect(
          { host: hostname, port, allowHalfOpen: true },
          both,
        );
      });
      let ready = 0;
      function both(): void {
        if (++ready < 2) return;
        const port = (server.address() as { port: number }).port;
        function done(): void {
          server.close(() => resolve(port));
        }
        if (!proof) {
          accepted!.destroy();
          client!.destroy();
          return done();
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
