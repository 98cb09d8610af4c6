// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * TCP ports that nobody else will get: each port is handed out in TCP
 * TIME_WAIT, which the kernel's own port allocators skip for about 60 seconds
 * on Linux, while a server that binds with `SO_REUSEADDR` (Deno, Bun, Node,
 * Python's http.server, nginx) can take it at once.
 *
 * The usual "port 0 trick" (bind port 0, read the number, close) races: the
 * kernel hands the released port to the next process or outgoing connection.
 * A reservation here listens on the port, connects to it, accepts, and closes
 * the accepted side first, so the port is left in TIME_WAIT on the address it
 * was made on.
 *
 * Run as a command, `deno run -N jsr:@x/port-reserve` prints one reserved port.
 *
 * @example Reserve a port for a test server
 * ```ts
 * import { reserve } from "@x/port-reserve";
 *
 * const port = await reserve();
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port, onListen() {} },
 *   () => new Response("hello"),
 * );
 * const response = await fetch(`http://127.0.0.1:${port}/`);
 * console.log(await response.text()); // "hello"
 * await server.shutdown();
 * ```
 *
 * @module
 */

/** Options for {@linkcode reserve} and {@linkcode reserveMany}. */
export interface ReserveOptions {
  /**
   * The host to reserve the port on: an IP address of this machine, a name
   * that resolves to one, `0.0.0.0` or `::` for all interfaces, or
   * `localhost`, which reserves the same port on both 127.0.0.1 and ::1
   * (where ::1 exists). A reservation covers only this address.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * A preferred port. If it can be bound, it is the one reserved, also when it
   * is in TIME_WAIT from an earlier reservation (that renews it); if something
   * listens on it, another port is reserved instead. `0` means any port.
   *
   * @default {0}
   */
  port?: number;
}

/**
 * Reserves a TCP port: leaves it in TIME_WAIT, so the kernel hands it to no
 * other process or outgoing connection for about 60 seconds on Linux, while a
 * server that binds with `SO_REUSEADDR` can listen on it at once.
 *
 * @param options The host to reserve on and a preferred port.
 * @returns The reserved port.
 * @throws {TypeError} If `options` is not an object or `hostname` is not a
 * non-empty string.
 * @throws {RangeError} If `port` is not an integer in 0-65535.
 * @throws {Error} If the host is not an address of this machine or does not
 * resolve, if Deno lacks net permission for it, or if no ephemeral port is
 * left. The runtime's error is kept as `cause`.
 *
 * @example Reserve a port and listen on it
 * ```ts
 * import { reserve } from "@x/port-reserve";
 *
 * const port = await reserve();
 * const listener = Deno.listen({ hostname: "127.0.0.1", port });
 * listener.close();
 * ```
 *
 * @example Prefer a port, on all interfaces
 * ```ts
 * import { reserve } from "@x/port-reserve";
 *
 * const first = await reserve({ hostname: "0.0.0.0" });
 * const again = await reserve({ hostname: "0.0.0.0", port: first });
 * console.log(again === first); // true: the reservation was renewed
 * ```
 */
export async function reserve(options: ReserveOptions = {}): Promise<number> {
  const { hostname, port } = readOptions(options, "port");
  return await reserveOn(await backend(), hostname, port);
}

/**
 * Reserves `count` distinct TCP ports, each as {@linkcode reserve} does. The
 * reservations overlap, so this is faster per port than calling `reserve` in
 * a loop. A preferred `port` applies to the first of them.
 *
 * @param count How many ports to reserve; `0` gives `[]`.
 * @param options The host to reserve on and a preferred port.
 * @returns The reserved ports, all distinct.
 * @throws {TypeError} If `options` is not an object or `hostname` is not a
 * non-empty string.
 * @throws {RangeError} If `count` is not a non-negative integer or `port` is
 * not an integer in 0-65535.
 * @throws {Error} As {@linkcode reserve} does. Ports reserved before the
 * failure stay in TIME_WAIT; no socket is left open.
 *
 * @example Reserve ports for a cluster of test servers
 * ```ts
 * import { reserveMany } from "@x/port-reserve";
 *
 * const ports = await reserveMany(3);
 * console.log(new Set(ports).size); // 3
 * ```
 */
export async function reserveMany(
  count: number,
  options: ReserveOptions = {},
): Promise<number[]> {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot reserve ports as 'count' must be a non-negative integer: current value is ${
        show(count)
      }`,
    );
  }
  const { hostname, port } = readOptions(options, "ports");
  const impl = await backend();
  const ports: number[] = [];
  const taken = new Set<number>();
  let failure: unknown;
  let failed = false;
  let next = 0;
  async function work(): Promise<void> {
    while (!failed && next < count) {
      const slot = next++;
      try {
        let reserved = await reserveOn(impl, hostname, slot === 0 ? port : 0);
        // The kernel does not hand out a port in TIME_WAIT to bind(0) unless
        // net.ipv4.ip_autobind_reuse is set; check anyway, distinct is promised.
        for (let retry = 0; taken.has(reserved); retry++) {
          if (retry === MAX_ATTEMPTS) throw repeatedError(hostname);
          reserved = await reserveOn(impl, hostname, 0);
        }
        taken.add(reserved);
        ports[slot] = reserved;
      } catch (error) {
        if (!failed) failure = error;
        failed = true;
      }
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(count, CONCURRENCY); i++) workers.push(work());
  // Every worker settles (closing its sockets) before the first error is thrown.
  await Promise.all(workers);
  if (failed) throw failure;
  return ports;
}

// ---------------------------------------------------------------------------
// Shared rules: validation, hosts, errors. Backends are at the bottom.

/** Reservations in flight at once in reserveMany. */
const CONCURRENCY = 8;
/** Attempts at a port that is free on both 127.0.0.1 and ::1 for `localhost`. */
const MAX_ATTEMPTS = 16;

interface Request {
  hostname: string;
  port: number;
}

function readOptions(options: ReserveOptions, what: string): Request {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot reserve ${what} as 'options' must be an object: current value is ${
        show(options)
      }`,
    );
  }
  const { hostname = "127.0.0.1", port = 0 } = options;
  if (typeof hostname !== "string" || hostname.trim() === "") {
    throw new TypeError(
      `Cannot reserve ${what} as 'hostname' must be a non-empty string: current value is ${
        show(hostname)
      }`,
    );
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot reserve ${what} as 'port' must be an integer in 0-65535: current value is ${
        show(port)
      }`,
    );
  }
  // "[::1]" as in URLs means ::1.
  let bare = hostname.trim();
  if (bare.startsWith("[") && bare.endsWith("]")) bare = bare.slice(1, -1);
  return { hostname: bare, port };
}

/** One reservation on `hostname`, with the `localhost` and preferred-port rules. */
async function reserveOn(
  impl: Backend,
  hostname: string,
  port: number,
): Promise<number> {
  if (hostname.toLowerCase() !== "localhost") {
    return await reservePreferred(impl, hostname, port);
  }
  // A reservation covers only its address, and runtimes differ in which
  // address "localhost" means: take the same port on both.
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const reserved = await reservePreferred(
      impl,
      "127.0.0.1",
      attempt === 0 ? port : 0,
      hostname,
    );
    try {
      await impl.reserveOnce("::1", reserved);
      return reserved;
    } catch (error) {
      if (!(error instanceof StepError) || error.step !== "listen") {
        throw describe(error, hostname, reserved);
      }
      const code = error.code;
      // No ::1 on this machine: 127.0.0.1 is all that localhost can mean.
      if (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT") return reserved;
      if (code !== "EADDRINUSE") throw describe(error, hostname, reserved);
    }
  }
  throw new Error(
    `Cannot reserve port on localhost as no port was free on both 127.0.0.1 and ::1 in ${MAX_ATTEMPTS} attempts: pass 127.0.0.1 or ::1 as hostname`,
  );
}

async function reservePreferred(
  impl: Backend,
  hostname: string,
  port: number,
  label: string = hostname,
): Promise<number> {
  try {
    return await impl.reserveOnce(hostname, port);
  } catch (error) {
    const inUse = port !== 0 && error instanceof StepError &&
      error.step === "listen" && error.code === "EADDRINUSE";
    if (!inUse) throw describe(error, label, port);
  }
  try {
    return await impl.reserveOnce(hostname, 0);
  } catch (error) {
    throw describe(error, label, 0);
  }
}

/** The address to connect to for a listener bound to `address`. */
function connectAddress(address: string): string {
  if (address === "0.0.0.0") return "127.0.0.1";
  if (address === "::") return "::1";
  return address;
}

/** A failed step of one reservation, with the runtime's error as cause. */
class StepError extends Error {
  step: "listen" | "connect" | "permission";
  hosts: string[];
  code: string | undefined;
  constructor(
    step: "listen" | "connect" | "permission",
    cause: unknown,
    options: { hosts?: string[]; code?: string } = {},
  ) {
    super(`${step} failed`, { cause });
    this.step = step;
    this.hosts = options.hosts ?? [];
    // Where the runtime's error has no errno name, the backend may give one.
    this.code = options.code ?? errorCode(cause);
  }
}

/** Turns a failed step into the error users see. */
function describe(error: unknown, hostname: string, port: number): Error {
  if (!(error instanceof StepError)) return error as Error;
  const cause = error.cause;
  const on = `Cannot reserve port on ${hostname}`;
  if (error.step === "permission") {
    // Asked before any network call, so there is no runtime error to keep.
    const hosts = error.hosts.map(bracket).join(",");
    return new Error(
      `${on} as Deno has no net permission for ${hosts}: run with -N or --allow-net=${hosts}`,
    );
  }
  const code = error.code;
  const exhausted = error.step === "listen"
    ? code === "EADDRINUSE" && port === 0
    : code === "EADDRNOTAVAIL" || code === "EADDRINUSE";
  if (exhausted) {
    return new Error(
      `${on} as no ephemeral port is left: wait for TIME_WAIT to expire (60 s on Linux) or widen net.ipv4.ip_local_port_range`,
      { cause },
    );
  }
  if (error.step === "listen" && code === "EADDRNOTAVAIL") {
    return new Error(
      `${on} as it is not an address of this machine: use 127.0.0.1, ::1, localhost, 0.0.0.0 or a local interface address`,
      { cause },
    );
  }
  if (code === "EBADHOST") {
    return new Error(
      `${on} as it is not a valid hostname or IP address: pass a name such as localhost or an address such as 127.0.0.1`,
      { cause },
    );
  }
  if (code === "ENOTFOUND") {
    return new Error(
      `${on} as the hostname does not resolve: check the spelling or pass an IP address`,
      { cause },
    );
  }
  if (code === "EACCES") {
    return new Error(
      `Cannot reserve port ${port} on ${hostname} as binding it is not permitted: use 0 or a port above 1023`,
      { cause },
    );
  }
  if (code === "EAFNOSUPPORT") {
    return new Error(
      `${on} as this machine does not support its address family: use 127.0.0.1`,
      { cause },
    );
  }
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new Error(`${on} as the ${error.step} failed: ${reason}`, { cause });
}

function repeatedError(hostname: string): Error {
  return new Error(
    `Cannot reserve ports on ${hostname} as the kernel kept handing out ports already reserved: check net.ipv4.ip_autobind_reuse is 0`,
  );
}

/** A failed listen; Bun's failed lookups have no code, only a message. */
function listenFailure(error: unknown, hostname: string): StepError {
  const name = !/^[\d.]+$|:/.test(hostname);
  const code = errorCode(error) ?? (name ? "ENOTFOUND" : undefined);
  return new StepError("listen", error, { code });
}

/** The errno name of a runtime's error, e.g. "EADDRINUSE". */
function errorCode(error: unknown): string | undefined {
  const { code, message } = (error ?? {}) as {
    code?: unknown;
    message?: unknown;
  };
  if (typeof code === "string") {
    // Node and Bun name failed lookups by getaddrinfo's codes; Deno's
    // node:net reports EADDRNOTAVAIL as EINVAL.
    if (code.startsWith("EAI_")) return "ENOTFOUND";
    return code === "EINVAL" ? "EADDRNOTAVAIL" : code;
  }
  // Deno throws a plain Error for a failed lookup, and a URIError when its
  // permission check cannot parse the host.
  if (typeof message === "string" && /lookup address/i.test(message)) {
    return "ENOTFOUND";
  }
  return error instanceof URIError ? "EBADHOST" : undefined;
}

function bracket(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function ignore(): void {}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

// ---------------------------------------------------------------------------
// Backends: one reservation each, in the runtime's own API. On failure they
// close what they opened and throw a StepError naming the step.

interface Backend {
  /**
   * Listens on hostname:port, connects to it, accepts, closes the accepted
   * side, waits for end-of-stream on the client, closes the rest, and returns
   * the port, now in TIME_WAIT on the listener's address.
   */
  reserveOnce(hostname: string, port: number): Promise<number>;
}

/**
 * Not part of the API: the test suite sets this global to "deno", "bun" or
 * "node" to run every backend wherever it can run.
 */
const BACKEND = Symbol.for("@x/port-reserve/backend");
const loaded: Record<string, Promise<Backend>> = {};

interface Scope {
  Deno?: DenoRuntime;
  Bun?: BunRuntime;
  [BACKEND]?: string;
}

function backend(): Promise<Backend> {
  const scope = globalThis as Scope;
  // Deno and Bun also expose `process`, so they are tested for first.
  const name = scope[BACKEND] ??
    (scope.Deno ? "deno" : scope.Bun ? "bun" : "node");
  return loaded[name] ??= load(name, scope);
}

async function load(name: string, scope: Scope): Promise<Backend> {
  if (name === "deno" && scope.Deno) return denoBackend(scope.Deno);
  if (name === "bun" && scope.Bun) return bunBackend(scope.Bun);
  if (name === "node") {
    try {
      // Loaded only here, so Deno and Bun never pay for it at start.
      return nodeBackend(await import("node:net") as NodeNet);
    } catch (error) {
      delete loaded[name];
      throw new Error(
        "Cannot reserve port as this runtime has neither Deno, Bun nor node:net: use one of them",
        { cause: error },
      );
    }
  }
  delete loaded[name];
  throw new Error(`Cannot reserve port with the ${name} backend here`);
}

interface DenoAddr {
  hostname: string;
  port: number;
}
interface DenoConn {
  read(buffer: Uint8Array): Promise<number | null>;
  close(): void;
}
interface DenoRuntime {
  listen(options: { hostname: string; port: number }): {
    addr: DenoAddr;
    accept(): Promise<DenoConn>;
    close(): void;
  };
  connect(options: { hostname: string; port: number }): Promise<DenoConn>;
  permissions: {
    querySync(descriptor: { name: "net"; host: string }): { state: string };
  };
}

function denoBackend(deno: DenoRuntime): Backend {
  function requireNet(hosts: string[]): void {
    const missing = hosts.filter((host) => {
      try {
        const query = { name: "net", host: bracket(host) } as const;
        return deno.permissions.querySync(query).state !== "granted";
      } catch (error) {
        throw new StepError("listen", error); // not a valid host name
      }
    });
    if (missing.length > 0) {
      throw new StepError("permission", undefined, { hosts: missing });
    }
  }
  return {
    async reserveOnce(hostname, port): Promise<number> {
      requireNet([...new Set([hostname, connectAddress(hostname)])]);
      let listener;
      try {
        listener = deno.listen({ hostname, port });
      } catch (error) {
        throw listenFailure(error, hostname);
      }
      try {
        const { hostname: address, port: bound } = listener.addr;
        const target = connectAddress(address);
        // Asked already, unless the name resolved to another address.
        if (target !== connectAddress(hostname)) requireNet([target]);
        let client;
        try {
          client = await deno.connect({ hostname: target, port: bound });
        } catch (error) {
          throw new StepError("connect", error);
        }
        try {
          const accepted = await listener.accept().catch((error) => {
            throw new StepError("connect", error);
          });
          accepted.close();
          await client.read(new Uint8Array(1)).catch(() => null);
        } finally {
          client.close();
        }
        return bound;
      } finally {
        listener.close();
      }
    },
  };
}

interface BunSocket {
  end(): void;
}
interface BunHandlers {
  open?(socket: BunSocket): void;
  data(socket: BunSocket, data: Uint8Array): void;
  end?(socket: BunSocket): void;
  close?(socket: BunSocket): void;
  error?(socket: BunSocket, error: Error): void;
}
interface BunRuntime {
  listen(options: { hostname: string; port: number; socket: BunHandlers }): {
    hostname: string;
    port: number;
    stop(closeActiveConnections?: boolean): void;
  };
  connect(
    options: { hostname: string; port: number; socket: BunHandlers },
  ): Promise<BunSocket>;
}

function bunBackend(bun: BunRuntime): Backend {
  return {
    async reserveOnce(hostname, port): Promise<number> {
      let listener;
      try {
        listener = bun.listen({
          hostname,
          port,
          socket: { open: (accepted) => accepted.end(), data: ignore },
        });
      } catch (error) {
        throw listenFailure(error, hostname);
      }
      try {
        let ended!: () => void;
        const endOfStream = new Promise<void>((resolve) => ended = resolve);
        let client;
        try {
          client = await bun.connect({
            hostname: connectAddress(listener.hostname),
            port: listener.port,
            socket: { data: ignore, end: ended, close: ended, error: ended },
          });
        } catch (error) {
          throw new StepError("connect", error);
        }
        await endOfStream;
        client.end();
        return listener.port;
      } finally {
        listener.stop(true);
      }
    },
  };
}

interface NodeSocket {
  on(event: string, listener: (error: unknown) => void): unknown;
  resume(): unknown;
  destroy(): unknown;
}
interface NodeNet {
  createServer(listener: (socket: NodeSocket) => void): {
    once(event: "error", listener: (error: unknown) => void): unknown;
    listen(
      options: { host: string; port: number },
      listener: () => void,
    ): unknown;
    address(): { address: string; port: number } | string | null;
    close(listener: () => void): unknown;
  };
  connect(options: { host: string; port: number }): NodeSocket;
}

function nodeBackend(net: NodeNet): Backend {
  return {
    reserveOnce(hostname, port): Promise<number> {
      return new Promise((resolve, reject) => {
        // destroy() closes gracefully (a FIN): no data is left unread.
        const server = net.createServer((accepted) => accepted.destroy());
        server.once("error", (error) => {
          reject(listenFailure(error, hostname));
        });
        server.listen({ host: hostname, port }, () => {
          const { address, port: bound } = server.address() as {
            address: string;
            port: number;
          };
          let failure: StepError | undefined;
          const client = net.connect({
            host: connectAddress(address),
            port: bound,
          });
          client.on("error", (error) => {
            failure = new StepError("connect", error);
          });
          client.on("end", () => client.destroy());
          client.on("close", () => {
            server.close(() => failure ? reject(failure) : resolve(bound));
          });
          client.resume(); // flowing, so that "end" is emitted
        });
      });
    },
  };
}

interface CommandLine {
  Deno?: { args: string[]; exit(code: number): never };
  process: { argv: string[]; exit(code: number): never };
}

// bun build turns `import.meta.main` into a test that is true in Node for
// every module, so that importing a bundle would run the command line: it
// leaves `main` read off an alias alone.
const meta = import.meta;
if (meta.main) {
  // `deno run -N jsr:@x/port-reserve` runs this module: hand over to the
  // command line, loaded only here so that importing mod.ts never loads it.
  // `process` only where there is no Deno: on Deno it loads the Node layer.
  const scope = globalThis as unknown as CommandLine;
  import("./cli.ts")
    .then(({ main }) => main(scope.Deno?.args ?? scope.process.argv.slice(2)))
    .then((code) => (scope.Deno ?? scope.process).exit(code));
}
