// Copyright 2026 the @x/port-reserve authors. MIT license.
// The naive "port 0 trick" most port finders use: listen on port 0, read the
// port, close. It leaves nothing behind, so the kernel may hand the port to
// anyone next. In the runtime's own API, as the cost floor of any JavaScript
// approach and the baseline of _tools/stress.ts.
interface Scope {
  Deno?: { listen(o: object): { addr: { port: number }; close(): void } };
  Bun?: { listen(o: object): { port: number; stop(force: boolean): void } };
}

/** Returns a function that takes one port by the port 0 trick. */
export async function naivePort(
  hostname = "127.0.0.1",
): Promise<() => Promise<number>> {
  const { Deno, Bun } = globalThis as Scope;
  if (Deno) {
    return () => {
      const listener = Deno.listen({ hostname, port: 0 });
      listener.close();
      return Promise.resolve(listener.addr.port);
    };
  }
  if (Bun) {
    const socket = { data(): void {} };
    return () => {
      const listener = Bun.listen({ hostname, port: 0, socket });
      listener.stop(true);
      return Promise.resolve(listener.port);
    };
  }
  const net = await import("node:net");
  return () =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.listen(0, hostname, () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
}
