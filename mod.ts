// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * TCP ports that the kernel gives to no other process.
 *
 * The usual "port 0 trick" (bind port 0, read the number, close) races: the
 * kernel hands the released port to the next process or outgoing connection.
 * {@linkcode reserve} instead listens on the port, connects to it, accepts,
 * and closes the accepted side first, so the port is left in TCP TIME_WAIT.
 * For about 60 seconds on Linux (30 on macOS) the kernel's own port
 * allocators (`bind` to port 0, outgoing connections) skip it, while a server
 * that binds with `SO_REUSEADDR` (Deno, Bun, Node, Python's http.server,
 * nginx) can take it at once. It returns only once the accepted side has seen
 * the client's close, which is what makes the TIME_WAIT.
 *
 * What that protects, exactly (the rest of this module's docs link here):
 * - **Kernel-chosen ports** (the default): no port allocator on the machine
 *   hands the port out during the window.
 * - **Named ports** (`port: 8080`, a list, a {@linkcode portRange}): the same,
 *   but anyone who names the port and binds with `SO_REUSEADDR` gets it: that
 *   is how your server takes it, and also how another tool naming the same
 *   port would. Two callers naming one free port may both get it.
 * - **Held ports** ({@linkcode hold}): a listener keeps the port until you
 *   release it, so nobody gets it, not even a bind naming it; the 60 s window
 *   starts at the release.
 * - A TIME_WAIT socket has one local address, so a reservation covers the
 *   addresses it leaves one on: the address given; for `localhost` both
 *   127.0.0.1 and ::1; for `0.0.0.0` every IPv4 address of the machine's
 *   interfaces, and for `::` every IPv4 and IPv6 one (link-local IPv6
 *   addresses and unconfigured addresses of 127.0.0.0/8 excepted).
 * - A reservation either leaves its TIME_WAIT or fails: a reset, a lost
 *   packet or a step that takes longer than 2 seconds is an error, never a
 *   returned port and never a hang. (One exception: a socket destroyed by
 *   `ss -K` at the very moment the client closes reads as that close.) On
 *   loopback each step takes microseconds; one that takes 2 seconds means
 *   packets are being dropped.
 *
 * Run as a command, `deno run -N jsr:@x/port-reserve` prints one reserved port
 * (see `@x/port-reserve/cli`).
 *
 * @example Reserve a port for a test server
 * ```ts
 * import { reserve } from "@x/port-reserve";
 * import assert from "node:assert/strict";
 *
 * const port = await reserve();
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port, onListen() {} },
 *   () => new Response("hello"),
 * );
 * const response = await fetch(`http://127.0.0.1:${port}/`);
 * assert.equal(await response.text(), "hello");
 * await server.shutdown();
 * ```
 *
 * @module
 */

/** Options for {@linkcode reserve}, {@linkcode reserveMany} and {@linkcode hold}. */
export interface ReserveOptions {
  /**
   * The host to reserve the port on: an IP address of this machine, a name
   * that resolves to one, `localhost` (127.0.0.1 and ::1, where each exists),
   * or a wildcard: `0.0.0.0` covers every IPv4 address of the machine's
   * interfaces, `::` every IPv4 and IPv6 one. On Deno a wildcard needs
   * `--allow-sys=networkInterfaces` to list them.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port to reserve: `0` for any port the kernel chooses, or named ports,
   * one or an iterable of them (a list, a {@linkcode portRange}), tried in
   * order. The first that can be bound is reserved, also when it is in
   * TIME_WAIT from an earlier reservation (that renews it); one with a
   * listener, or below the privileged-port limit, is skipped. When none can
   * be had, see `fallback`. A named port is not protected from anyone else
   * naming it: see the module documentation.
   *
   * @default {0}
   */
  port?: number | Iterable<number>;
  /**
   * Ports never returned, whether named or chosen by the kernel. A
   * kernel-chosen port that is excluded is let go without a TIME_WAIT, and
   * another is drawn.
   *
   * @default {[]}
   */
  exclude?: Iterable<number>;
  /**
   * When no named port can be had: `true` reserves any port the kernel
   * chooses; `false` fails, naming the ports tried.
   *
   * @default {true}
   */
  fallback?: boolean;
}

/**
 * A port held by {@linkcode hold}: bound and listening until released, so
 * that nobody else can bind it.
 */
export interface Reservation extends AsyncDisposable {
  /** The host it is held on, as given. */
  readonly hostname: string;
  /** The held port; it can still be read after the release. */
  readonly port: number;
  /**
   * Hands the port over: leaves it in TIME_WAIT and stops listening, so that
   * from here on it is as after {@linkcode reserve}, and a server can bind it.
   * Releasing again does nothing: it resolves once the first release has
   * settled, and only the first reports a failure. `await using` releases at
   * the end of the scope.
   *
   * @throws {Error} As {@linkcode reserve} does for a reset or a timeout; the
   * port is then let go without a TIME_WAIT.
   */
  release(): Promise<void>;
}

/**
 * Reserves a TCP port: leaves it in TIME_WAIT, so that for about 60 seconds
 * the kernel hands it to no other process while a server can bind it at once.
 * See the module documentation for exactly what that protects.
 *
 * @param options The host to reserve on, the ports to prefer or exclude.
 * @returns The reserved port.
 * @throws {TypeError} If `options` is not an object or has a key that is not
 * an option, `hostname` is not an IP address or host name, `port` or
 * `exclude` is not an iterable of numbers, or `fallback` is not a boolean.
 * @throws {RangeError} If `port` is not an integer in 0-65535, lists no port
 * or one outside 1-65535, or `exclude` leaves none of the ports it names.
 * @throws {Error} If the host is not an address of this machine or does not
 * resolve, if Deno lacks a permission, if no port is left (or none of the
 * named ones, with `fallback: false`), if descriptors run out, or if a
 * socket is reset or a step times out. The runtime's error, where there is
 * one, is kept as `cause`.
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
 * @example Prefer ports from a range, never 8080
 * ```ts
 * import { portRange, reserve } from "@x/port-reserve";
 * import assert from "node:assert/strict";
 *
 * const port = await reserve({ port: portRange(8000, 8100), exclude: [8080] });
 * assert.notEqual(port, 8080);
 * ```
 */
export function reserve(options?: ReserveOptions): Promise<number> {
  return startOne(options, reserveOne);
}

/**
 * Reserves `count` distinct TCP ports, each as {@linkcode reserve} does. The
 * reservations overlap, so this is faster per port than calling `reserve` in
 * a loop. Named ports come first, in their order, then kernel-chosen ones.
 *
 * @param count How many ports to reserve, 0-65535; `0` gives `[]`.
 * @param options The host to reserve on, the ports to prefer or exclude.
 * @returns The reserved ports, all distinct.
 * @throws {TypeError} As {@linkcode reserve} does.
 * @throws {RangeError} If `count` is not an integer in 0-65535, or as
 * {@linkcode reserve} does.
 * @throws {Error} As {@linkcode reserve} does, and if the batch takes so long
 * that its first reservations would expire before its last is made. Ports
 * reserved before a failure stay in TIME_WAIT; no socket is left open.
 *
 * @example Reserve ports for a cluster of test servers
 * ```ts
 * import { reserveMany } from "@x/port-reserve";
 * import assert from "node:assert/strict";
 *
 * const ports = await reserveMany(3);
 * assert.equal(new Set(ports).size, 3);
 * ```
 */
export async function reserveMany(
  count: number,
  options?: ReserveOptions,
): Promise<number[]> {
  if (!Number.isInteger(count) || count < 0 || count > 65535) {
    throw new RangeError(
      `Cannot reserve ports as 'count' must be an integer in 0-65535: current value is ${
        valueText(count)
      }`,
    );
  }
  const request = readOptions(options, "ports");
  const { named, fallback } = request;
  if (!fallback && named.length > 0 && count > named.length) {
    throw new RangeError(
      `Cannot reserve ports as ${count} were asked for but 'port' names only ${named.length} and 'fallback' is false: ${
        portList(named)
      }`,
    );
  }
  const sockets = readySockets() ?? await pickSockets();
  const claims = new Claims(request);
  let firstAt: number | undefined;
  const ports = await inParallel(count, async () => {
    if (firstAt !== undefined && monotonicNow() - firstAt > batchLimitMs()) {
      throw expiringBatchError(request, count, claims.taken.size, firstAt);
    }
    const port = await inFlight(() => reserveOne(sockets, request, claims));
    firstAt ??= monotonicNow();
    return port;
  });
  // Named ports first, in the order named; the reservations overlap.
  const got = new Set(ports);
  const first = new Set(named.filter((port) => got.has(port)));
  return [...first, ...ports.filter((port) => !first.has(port))];
}

/**
 * Holds a TCP port until released: it listens on every address the
 * reservation covers, so that nobody can take it, not even a bind naming the
 * port. {@linkcode Reservation.release} then leaves it in TIME_WAIT as
 * {@linkcode reserve} does, so that the 60 s window starts right before your
 * server binds it. Connections to a held port are closed at once.
 *
 * A reservation never released is a listener left open: it keeps the
 * process running, and Deno's resource sanitizer, where it is on, reports it.
 *
 * @param options As for {@linkcode reserve}.
 * @returns The reservation; release it, or hold it with `await using`.
 * @throws {TypeError} As {@linkcode reserve} does.
 * @throws {RangeError} As {@linkcode reserve} does.
 * @throws {Error} As {@linkcode reserve} does.
 *
 * @example Hold a port while a config file is written, then hand it over
 * ```ts
 * import { hold } from "@x/port-reserve";
 * import assert from "node:assert/strict";
 *
 * const reservation = await hold();
 * // Held: even a bind naming the port fails until the release.
 * assert.throws(() =>
 *   Deno.listen({ hostname: "127.0.0.1", port: reservation.port })
 * );
 * await reservation.release();
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: reservation.port });
 * listener.close();
 * ```
 *
 * @example Release at the end of a scope
 * ```ts
 * import { hold } from "@x/port-reserve";
 *
 * let port;
 * {
 *   await using reservation = await hold({ hostname: "localhost" });
 *   port = reservation.port;
 * }
 * const listener = Deno.listen({ hostname: "127.0.0.1", port });
 * listener.close();
 * ```
 */
export function hold(options?: ReserveOptions): Promise<Reservation> {
  return startOne(options, holdOne);
}

/**
 * The ports from `from` to `to`, both included, for the `port` option.
 *
 * @param from The first port, 1-65535.
 * @param to The last port, 1-65535, not below `from`.
 * @returns The ports in order.
 * @throws {RangeError} If `from` or `to` is not an integer in 1-65535, or
 * `from` is above `to`.
 *
 * @example A range of ports
 * ```ts
 * import { portRange } from "@x/port-reserve";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(portRange(8000, 8003), [8000, 8001, 8002, 8003]);
 * ```
 */
export function portRange(from: number, to: number): number[] {
  for (const [name, value] of [["from", from], ["to", to]] as const) {
    if (!isPort(value)) {
      throw new RangeError(
        `Cannot make a port range as '${name}' must be an integer in 1-65535: current value is ${
          valueText(value)
        }`,
      );
    }
  }
  if (from > to) {
    throw new RangeError(
      `Cannot make a port range as 'from' must not be above 'to': current values are ${from} and ${to}`,
    );
  }
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

// ---------------------------------------------------------------------------
// The shared rules: validation, hosts, the hand-off, errors. Each runtime's
// socket adapter is at the bottom.

/** How long one step (connect, accept, end-of-stream) may take, in ms. */
const STEP_TIMEOUT_MS = 2000;
/**
 * Turns of the event loop a hand-off past its time is watched for, without
 * a step, before it fails (see `look`).
 */
const LAST_LOOKS = 8;
/** Reservations in flight at once across the module, so bursts stay in fds. */
const MAX_IN_FLIGHT = 8;
/** Attempts at a port that is free on both 127.0.0.1 and ::1 for localhost. */
const LOCALHOST_ATTEMPTS = 16;
/** How long a held listener waits to accept again after a failed accept. */
const RETRY_MS = 100;
/** Items read from a port iterable at most, so that an endless one ends. */
const READ_LIMIT = 1 << 20;
/** Kernel-chosen ports let go for being excluded, before giving up. */
const EXCLUDED_DRAWS = 256;
/** Linux's TCP_TIMEWAIT_LEN: how long a reservation lasts. */
const TIME_WAIT_MS = 60_000;
/** The options that {@linkcode ReserveOptions} has, for unknown-key errors. */
const OPTION_KEYS = ["hostname", "port", "exclude", "fallback"];

/** A validated request: where to reserve, and which ports. */
interface ReserveRequest {
  /** The host as the caller wrote it, for messages. */
  label: string;
  host: Host;
  /** The ports named, in order, without repeats or excluded ones; [] for any. */
  named: number[];
  exclude: Set<number>;
  fallback: boolean;
  /**
   * The address of a quick request (one address, a port the kernel chooses,
   * nothing excluded: Sockets.quick claims it), else undefined.
   */
  quick: string | undefined;
}

/** A validated host, by the rule that decides which addresses it covers. */
type Host =
  | { kind: "address"; address: string }
  | { kind: "name"; name: string }
  | { kind: "localhost" }
  | { kind: "wildcard"; address: "0.0.0.0" | "::" };

/**
 * Validates options, before anything touches the network. No options
 * (`reserve()`), or options with no keys, are DEFAULT_REQUEST: nothing in a
 * request is ever changed.
 */
function readOptions(
  options: ReserveOptions | undefined,
  noun: string,
): ReserveRequest {
  if (options === undefined) return DEFAULT_REQUEST;
  const prefix = `Cannot reserve ${noun} as`;
  const own = readOwnKeys(prefix, options);
  if (own === undefined) return DEFAULT_REQUEST;
  const { hostname = "127.0.0.1", port = 0, exclude = [], fallback = true } =
    own;
  const host = readHost(prefix, hostname);
  const ports = readNamedPorts(prefix, port, exclude);
  if (typeof fallback !== "boolean") {
    throw new TypeError(
      `${prefix} 'fallback' must be a boolean: current value is ${
        valueText(fallback)
      }`,
    );
  }
  const quick = host.kind === "address" && unicast(host.address) &&
      ports.named.length === 0 && ports.exclude.size === 0
    ? host.address
    : undefined;
  const request = {
    label: hostname as string,
    host,
    ...ports,
    fallback,
    quick,
  };
  return request;
}

/**
 * What options with no keys mean, as readOptions would make it from the
 * defaults, made without parsing: a first call (the command line's) then
 * compiles none of the validation.
 */
const DEFAULT_REQUEST: ReserveRequest = {
  label: "127.0.0.1",
  host: { kind: "address", address: "127.0.0.1" },
  named: [],
  exclude: new Set(),
  fallback: true,
  quick: "127.0.0.1",
};

/**
 * The options object's own properties, read once: a getter or a proxy that
 * throws is bad input like any other, with its error as the cause. Undefined
 * for an object with none, the common case.
 */
function readOwnKeys(
  prefix: string,
  options: unknown,
): Record<string, unknown> | undefined {
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw new TypeError(
      `${prefix} 'options' must be an object: current value is ${
        valueText(options)
      }`,
    );
  }
  let own: Record<string, unknown>;
  try {
    const keys = Reflect.ownKeys(options);
    if (keys.length === 0) return undefined;
    own = Object.fromEntries(
      keys.map((key) => [
        String(key),
        Reflect.get(options, key),
      ]),
    );
  } catch (error) {
    throw new TypeError(
      `${prefix} 'options' could not be read: ${messageOf(error)}`,
      { cause: error },
    );
  }
  const unknown = Object.keys(own).find((key) => !OPTION_KEYS.includes(key));
  if (unknown !== undefined) {
    throw new TypeError(
      `${prefix} '${unknown}' is not an option: the options are ${
        OPTION_KEYS.slice(0, -1).join(", ")
      } and ${OPTION_KEYS.at(-1)}`,
    );
  }
  return own;
}

function readHost(prefix: string, hostname: unknown): Host {
  if (typeof hostname !== "string" || hostname.trim() === "") {
    throw new TypeError(
      `${prefix} 'hostname' must be a non-empty string: current value is ${
        valueText(hostname)
      }`,
    );
  }
  const host = parseHost(hostname);
  if (!host) {
    throw new TypeError(
      `${prefix} 'hostname' must be an IP address or a host name such as 127.0.0.1, ::1 or localhost: current value is ${
        valueText(hostname)
      }`,
    );
  }
  return host;
}

/** `port` and `exclude`: the ports named, less the excluded ones. */
function readNamedPorts(
  prefix: string,
  port: unknown,
  exclude: unknown,
): { named: number[]; exclude: Set<number> } {
  let ports: number[];
  if (typeof port === "number") {
    if (port !== 0 && !isPort(port)) {
      throw new RangeError(
        `${prefix} 'port' must be an integer in 0-65535: current value is ${
          valueText(port)
        }`,
      );
    }
    ports = port === 0 ? [] : [port];
  } else {
    ports = readPorts(prefix, "port", port);
    if (ports.length === 0) {
      throw new RangeError(
        `${prefix} 'port' must name at least one port: current value is ${
          valueText(port)
        }`,
      );
    }
  }
  const excluded = new Set(readPorts(prefix, "exclude", exclude));
  const named = ports.filter((p) => !excluded.has(p));
  if (ports.length > 0 && named.length === 0) {
    throw new RangeError(
      `${prefix} 'exclude' leaves none of the ports named: ${portList(ports)}`,
    );
  }
  return { named, exclude: excluded };
}

/**
 * The ports of an iterable option, in order and without repeats. Strings are
 * iterable but are not lists of ports; an endless iterable stops at 65536.
 */
function readPorts(prefix: string, name: string, value: unknown): number[] {
  let items: unknown[] | undefined;
  try {
    items = firstItems(value, READ_LIMIT);
  } catch (error) {
    throw new TypeError(
      `${prefix} '${name}' could not be read: ${messageOf(error)}`,
      { cause: error },
    );
  }
  if (items === undefined) {
    throw new TypeError(
      `${prefix} '${name}' must be ${
        name === "port" ? "a port number or " : ""
      }an iterable of port numbers: current value is ${valueText(value)}`,
    );
  }
  const bad = items.findIndex((item) => !isPort(item));
  if (bad >= 0) {
    throw new RangeError(
      `${prefix} '${name}' must list integers in 1-65535: current value holds ${
        valueText(items[bad])
      }`,
    );
  }
  const ports = [...new Set(items as number[])];
  if (items.length === READ_LIMIT || ports.length > 65535) {
    throw new RangeError(`${prefix} '${name}' must list at most 65535 ports`);
  }
  return ports;
}

/**
 * The first `limit` items of an iterable, or undefined if it is none (a
 * string, boxed or not, is not a list of ports). Iterated by hand, so that a
 * broken iterator gets the same message on every engine.
 */
function firstItems(value: unknown, limit: number): unknown[] | undefined {
  if (typeof value !== "object" || value === null || value instanceof String) {
    return undefined;
  }
  const method = (value as Iterable<unknown>)[Symbol.iterator];
  if (typeof method !== "function") return undefined;
  const iterator = method.call(value);
  const broken = "its iterator does not follow the iterator protocol";
  if (typeof iterator?.next !== "function") throw new Error(broken);
  const items: unknown[] = [];
  while (items.length < limit) {
    const result = iterator.next();
    if (typeof result !== "object" || result === null) throw new Error(broken);
    if (result.done) return items;
    items.push(result.value);
  }
  iterator.return?.();
  return items;
}

function isPort(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 &&
    value <= 65535;
}

/**
 * Parses a host as the shared layer sees it, so every runtime gets the same
 * answer for the same input; undefined if it is neither an IP address nor a
 * host name. Only valid names ever reach a resolver.
 */
function parseHost(input: string): Host | undefined {
  const bracketed = /^\[(.*)\]$/.exec(input);
  const text = bracketed ? bracketed[1] : input;
  if (text.includes(":")) {
    const address = canonicalIPv6(text);
    if (address === undefined) return undefined;
    return address === "::"
      ? { kind: "wildcard", address: "::" }
      : { kind: "address", address };
  }
  if (bracketed) return undefined;
  // A last label of digits only means an IPv4 address, or nothing.
  if (/(^|\.)\d+\.?$/.test(text)) {
    if (!isIPv4(text)) return undefined;
    return text === "0.0.0.0"
      ? { kind: "wildcard", address: "0.0.0.0" }
      : { kind: "address", address: text };
  }
  const name = text.endsWith(".") ? text.slice(0, -1) : text;
  const label = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
  if (name.length > 253 || !name.split(".").every((part) => label.test(part))) {
    return undefined;
  }
  return name.toLowerCase() === "localhost"
    ? { kind: "localhost" }
    : { kind: "name", name: text };
}

/** False for broadcast and multicast addresses, which no socket listens on. */
function unicast(address: string): boolean {
  if (address.includes(":")) return !/^ff/i.test(address);
  const first = Number(address.split(".")[0]);
  return address !== "255.255.255.255" && (first < 224 || first > 239);
}

function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 &&
    parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && +part <= 255);
}

/** An IPv6 address in its canonical text form (RFC 5952), or undefined. */
function canonicalIPv6(text: string): string | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups: number[][] = [];
  for (const [h, half] of halves.entries()) {
    const words: number[] = [];
    const parts = half === "" ? [] : half.split(":");
    for (const [i, part] of parts.entries()) {
      const last = h === halves.length - 1 && i === parts.length - 1;
      if (last && part.includes(".")) {
        if (!isIPv4(part)) return undefined;
        const [a, b, c, d] = part.split(".").map(Number);
        words.push(a << 8 | b, c << 8 | d);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) {
        words.push(parseInt(part, 16));
      } else return undefined;
    }
    groups.push(words);
  }
  const [head, tail] = groups;
  const missing = 8 - head.length - (tail?.length ?? 0);
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const words = [
    ...head,
    ...Array(tail ? missing : 0).fill(0),
    ...(tail ?? []),
  ];
  // The longest run of two or more zero words becomes "::".
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; i++) {
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    if (end - i > bestLength) [best, bestLength] = [i, end - i];
  }
  const hex = (part: number[]): string =>
    part.map((word) => word.toString(16)).join(":");
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLength))}`;
}

/**
 * What the reservations of one call share: the named ports not yet tried,
 * the ports the call already has, and why named ports were passed over.
 */
class Claims {
  /** Ports this call has reserved or holds: never returned twice. */
  taken: Set<number> = new Set();
  busy = 0;
  privileged = 0;
  /** The runtime's error for the last named port passed over. */
  lastCause: unknown;
  #named: number[];
  #next = 0;
  constructor(request: ReserveRequest) {
    this.#named = request.named;
  }
  /** The next named port to try, or undefined when none is left. */
  nextNamed(): number | undefined {
    return this.#named[this.#next++];
  }
}

/** A port bound on every address a request covers, not yet handed over. */
interface Claim {
  port: number;
  listeners: Listener[];
  /** For each listener, the addresses it leaves a TIME_WAIT on. */
  targets: string[][];
}

/**
 * reserve()'s and hold()'s start: reads the options, then runs `one` in an
 * in-flight slot. Not async: each await and promise layer is a turn of the
 * microtask queue per port (bench/ab.ts), so the common case has few.
 */
function startOne<T>(
  options: ReserveOptions | undefined,
  one: (
    sockets: Sockets,
    request: ReserveRequest,
    claims: Claims,
  ) => Promise<T>,
): Promise<T> {
  let request: ReserveRequest;
  try {
    request = readOptions(options, "port");
  } catch (error) {
    return Promise.reject(error);
  }
  const claims = new Claims(request);
  const sockets = readySockets();
  if (sockets) return inFlight(() => one(sockets, request, claims));
  return pickSockets().then((picked) =>
    inFlight(() => one(picked, request, claims))
  );
}

/** Claims a port and hands it over at once: a reservation. */
function reserveOne(
  sockets: Sockets,
  request: ReserveRequest,
  claims: Claims,
): Promise<number> {
  const { quick } = request;
  if (quick === undefined || !sockets.quick) {
    return claimAndHandOver(sockets, request, claims);
  }
  return new Promise<number>((resolve, reject) => {
    // Listened in this synchronous run (Deno, Bun), it connects in it too,
    // where nothing can revoke the permission its listen was granted.
    try {
      sockets.quick!(quick, claims.taken, false, (claim) => {
        if (claim) claim.handOver(request, resolve, reject, true);
        else resolve(claimAndHandOver(sockets, request, claims));
      });
    } catch (error) {
      reject(userError(error, request, 0));
    }
  });
}

function claimAndHandOver(
  sockets: Sockets,
  request: ReserveRequest,
  claims: Claims,
): Promise<number> {
  return claimPort(sockets, request, claims).then((claimed) =>
    handOver(sockets, request, claimed)
  );
}

/**
 * Claims a port and holds it. The common case, a quick request (one address,
 * a port the kernel chooses, nothing excluded), is claimed on the runtime's
 * own sockets (Sockets.quick); where that does not apply, or its listen
 * failed, or took a port this call already has, claimPort does it all, and
 * says why it failed.
 */
function holdOne(
  sockets: Sockets,
  request: ReserveRequest,
  claims: Claims,
): Promise<Reservation> {
  const { quick } = request;
  if (quick === undefined || !sockets.quick) {
    return holdClaimed(sockets, request, claims);
  }
  return new Promise((resolve) => {
    sockets.quick!(quick, claims.taken, true, (claim) => {
      if (!claim) return resolve(holdClaimed(sockets, request, claims));
      resolve(
        new HeldPort(
          request,
          claim.port,
          () =>
            new Promise<number>((done, fail) => {
              claim.handOver(request, done, fail, false);
            }),
        ),
      );
    });
  });
}

async function holdClaimed(
  sockets: Sockets,
  request: ReserveRequest,
  claims: Claims,
): Promise<Reservation> {
  const claim = await claimPort(sockets, request, claims);
  return new HeldPort(
    request,
    claim.port,
    heldHandOver(sockets, request, claim),
  );
}

/**
 * The named-ports rule: the first named port that can be bound (one with a
 * listener or needing privileges is passed over), else, with `fallback`, a
 * port the kernel chooses that is neither excluded nor already this call's.
 */
async function claimPort(
  sockets: Sockets,
  request: ReserveRequest,
  claims: Claims,
): Promise<Claim> {
  for (let port = claims.nextNamed(); port !== undefined;) {
    let claim: Claim | undefined;
    try {
      claim = await listenCovering(sockets, request, port);
    } catch (error) {
      const code = error instanceof StepError && error.step === "listen"
        ? error.code
        : undefined;
      // Alone and with no fallback, a privileged port is the error itself.
      const passOver = code === "EADDRINUSE" ||
        (code === "EACCES" && (request.named.length > 1 || request.fallback));
      if (!passOver) throw userError(error, request, port);
      if (code === "EACCES") claims.privileged++;
      else claims.busy++;
      claims.lastCause = (error as StepError).cause;
    }
    // Another reservation of this call may have taken it in the meantime.
    if (claim && !claims.taken.has(port)) {
      claims.taken.add(port);
      return claim;
    }
    if (claim) await closeAll(claim.listeners);
    port = claims.nextNamed();
  }
  if (request.named.length > 0 && !request.fallback) {
    throw namedPortsError(request, claims);
  }
  const skip = (port: number): boolean =>
    request.exclude.has(port) || claims.taken.has(port);
  let claim;
  try {
    claim = await listenCovering(sockets, request, 0, skip);
  } catch (error) {
    throw userError(error, request, 0);
  }
  claims.taken.add(claim.port);
  return claim;
}

/**
 * The coverage rule: listens on every address the host means, with one port
 * (`port`, or one the kernel chooses that `skip` does not refuse), and says
 * which addresses each listener leaves a TIME_WAIT on.
 */
async function listenCovering(
  sockets: Sockets,
  request: ReserveRequest,
  port: number,
  skip?: (port: number) => boolean,
): Promise<Claim> {
  const { host } = request;
  const listenOn = host.kind === "localhost"
    ? ["127.0.0.1", "::1"]
    : [host.kind === "name" ? host.name : host.address];
  // Every permission this needs is asked for before anything is opened.
  const covered = host.kind === "wildcard"
    ? wildcardTargets(host.address, await listInterfaces(sockets, host))
    : [];
  if (host.kind === "address" && !unicast(host.address)) {
    throw new StepError("listen", "EADDRNOTAVAIL", host.address);
  }
  if (host.kind === "wildcard" && covered.length === 0) {
    throw new StepError("interfaces", "NO_ADDRESSES", host.address);
  }
  // One address alone is asked for by the adapter's listen, before it opens
  // anything: asking here too would only ask twice.
  if (listenOn.length > 1 || covered.length > 0) {
    sockets.requireNet([...listenOn, ...covered]);
  }
  // Excluded ports stay bound while more are drawn, or the kernel would offer
  // them again; closed unused, they leave no TIME_WAIT.
  const excluded: Listener[] = [];
  try {
    for (let busy = 0, draws = 0; busy < LOCALHOST_ATTEMPTS;) {
      const listeners = listenOn.length === 1
        ? [await sockets.listen(listenOn[0], port)]
        : await listenAll(sockets, listenOn, port);
      if (!listeners) {
        busy++; // the port was busy on another address
      } else if (port === 0 && skip?.(listeners[0].port)) {
        excluded.push(...listeners);
        if (++draws === EXCLUDED_DRAWS) {
          throw new StepError("listen", "EXCLUDED", request.label);
        }
      } else {
        const targets = listeners.map((listener) =>
          host.kind === "wildcard" ? covered : [listener.address]
        );
        return { port: listeners[0].port, listeners, targets };
      }
    }
  } finally {
    await closeAll(excluded);
  }
  throw new StepError("listen", "LOCALHOST_BUSY", request.label);
}

/**
 * Leaves the claimed port in TIME_WAIT on every address, and closes it;
 * the port.
 */
async function handOver(
  sockets: Sockets,
  request: ReserveRequest,
  claim: Claim,
): Promise<number> {
  try {
    const { listeners, targets } = claim;
    for (let i = 0; i < listeners.length; i++) {
      for (let j = 0; j < targets[i].length; j++) {
        await handOff(sockets, listeners[i], targets[i][j]);
      }
    }
  } catch (error) {
    throw userError(error, request, claim.port);
  } finally {
    const closing = closeAll(claim.listeners);
    if (closing) await closing;
  }
  return claim.port;
}

/**
 * Closes every listener; a promise only if one of them needs waiting for
 * (Node's, Deno's with an accept pending), as most of the time none does.
 */
function closeAll(listeners: Listener[]): Promise<unknown> | undefined {
  let closing: Promise<unknown>[] | undefined;
  for (const listener of listeners) {
    const closed = listener.close();
    if (closed) (closing ??= []).push(closed);
  }
  return closing && Promise.all(closing);
}

/**
 * Listens on each address with the same port (the first one's, if `port` is
 * 0). An address that does not exist here is left out, as localhost means
 * only the loopback addresses that exist; undefined if the port was taken on
 * a later address, with everything closed and nothing left in TIME_WAIT.
 */
async function listenAll(
  sockets: Sockets,
  addresses: string[],
  port: number,
): Promise<Listener[] | undefined> {
  const listeners: Listener[] = [];
  let missing: StepError | undefined;
  try {
    for (const address of addresses) {
      const wanted = listeners[0]?.port ?? port;
      try {
        listeners.push(await sockets.listen(address, wanted));
      } catch (error) {
        const absent = addresses.length > 1 && error instanceof StepError &&
          (error.code === "EADDRNOTAVAIL" || error.code === "EAFNOSUPPORT");
        if (!absent) throw error;
        missing = error;
        continue;
      }
    }
  } catch (error) {
    for (const listener of listeners) await listener.close();
    const laterBusy = port === 0 && listeners.length > 0 &&
      error instanceof StepError && error.code === "EADDRINUSE";
    if (laterBusy) return undefined;
    throw error;
  }
  if (listeners.length === 0) throw missing;
  return listeners;
}

/**
 * The machine's interface addresses; listing them opens a socket, so it too
 * can fail for want of descriptors, with a text that differs by runtime.
 */
async function listInterfaces(
  sockets: Sockets,
  host: { address: string },
): Promise<string[]> {
  try {
    return await sockets.interfaceAddresses();
  } catch (error) {
    if (error instanceof StepError) throw error;
    const known = knownCode(error);
    const exhausted = known ? undefined : await probeDescriptors();
    const code = exhausted ? "EMFILE" : known;
    throw new StepError("interfaces", code, host.address, error);
  }
}

/** The addresses a wildcard listener covers: its family's, not link-local. */
function wildcardTargets(
  wildcard: "0.0.0.0" | "::",
  addresses: string[],
): string[] {
  // A dual-stack :: listener also accepts IPv4, as v4-mapped addresses.
  const wanted = addresses.filter((address) =>
    (wildcard === "::" || !address.includes(":")) &&
    !/^fe[89ab]/i.test(address)
  );
  // Loopback first: the address servers and tests use most.
  const loopback = wildcard === "::" ? ["127.0.0.1", "::1"] : ["127.0.0.1"];
  return [
    ...loopback.filter((address) => wanted.includes(address)),
    ...wanted.filter((address) => !loopback.includes(address)),
  ];
}

/**
 * The TIME_WAIT hand-off on one address, each step proven: connect to the
 * listener; accept that connection (closing foreign ones); half-close the
 * accepted side, so it sends the first FIN; wait for the client to see it;
 * close the client; wait for the accepted side to see the client's FIN, which
 * puts it in TIME_WAIT; close it. A reset or a lost packet anywhere is an
 * error. The accepted side keeps its descriptor until then, so it is never
 * an orphan that net.ipv4.tcp_fin_timeout could drop while the process stalls.
 */
function handOff(
  sockets: Sockets,
  listener: Listener,
  address: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    new ListenerHandOff(sockets, listener, address, resolve, reject).connect();
  });
}

/**
 * The steps of one hand-off (see handOff), driven by the callbacks of its
 * sockets, `C`: a subclass connects, accepts, closes, and reports what its
 * sockets do. Callbacks, not a promise per step: these steps over the
 * runtime's own sockets (each runtime's quick reservation) cost Node 10-15%
 * less than over promises. Its deadline is its own: a step that outlasts it
 * fails as ETIMEDOUT, and a connect still pending is aborted, as the kernel
 * would retry it for minutes. The deadlines of all hand-offs share one timer
 * (see `watch`): a timer each cost a reservation 5-8% on Node and Bun, and on
 * Deno each AbortSignal.timeout's timer fired 2 s after its hand-off was long
 * done. Past its time, a hand-off fails only once the event loop has turned
 * without a step (see `look`): a loop held up by other code, or starved of a
 * CPU, runs its timers before the sockets' events that came meanwhile.
 */
abstract class HandOffSteps<C> implements ConnectDeadline {
  /**
   * When the time is up, on the monotonic clock (`monotonicNow`): set by
   * start(), as a held port's claim is made long before its hand-off.
   */
  expiresAt = Infinity;
  step: Step = "connect";
  readonly address: string;
  /** Done or failed: later events only close what they bring. */
  done = false;
  client: C | undefined;
  accepted: C | undefined;
  #clientEnded = false;
  #acceptedEnded = false;
  #expired = false;
  /** Aborts the connect, if it is pending (Node's). */
  #abort: (() => void) | undefined;
  #controller: AbortController | undefined;
  #exhausted: () => Promise<unknown>;
  constructor(address: string, exhausted: () => Promise<unknown>) {
    this.address = address;
    this.#exhausted = exhausted;
  }
  /** Whether `accepted` is the other end of `client`. */
  protected abstract isPeer(accepted: C, client: C): boolean;
  /** Accepts the next connection: offered() or acceptFailed() follows. */
  protected abstract acceptNext(): void;
  /** Half-closes the accepted side, so that it sends the first FIN. */
  protected abstract closeWrite(accepted: C): void;
  /**
   * From end-of-stream on, each side's end is reported: clientEnded(),
   * acceptedEnded(), or failed() for a reset, at once if it came before.
   */
  protected abstract watchEnds(client: C, accepted: C): void;
  protected abstract close(connection: C): void;
  /**
   * Called once, when done (`error` undefined) or failed, its connections
   * closed: closes the rest, and says so. A method, not a callback stored per
   * hand-off: Deno's V8 kept each hand-off that had one (and all it refers
   * to) through every young-generation collection until a full one.
   */
  protected abstract settle(error: unknown): void;
  /** Aborted when the time is up; made only for a connect that asks. */
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.#expired) this.#controller.abort();
    return this.#controller.signal;
  }
  get expired(): boolean {
    return this.#expired;
  }
  /** Where it stands: it changes with each step and each side's end. */
  get progress(): string {
    return `${this.step} ${this.#clientEnded} ${this.#acceptedEnded}`;
  }
  onExpire(abort: (() => void) | undefined): void {
    this.#abort = abort;
  }
  /** Starts the deadline: the connect is next. */
  start(): void {
    this.expiresAt = monotonicNow() + STEP_TIMEOUT_MS;
    watch(this);
  }
  /** Called by the shared timer once the time is up. */
  expire(): void {
    this.#expired = true;
    const abort = this.#abort;
    this.failed(new StepError(this.step, "ETIMEDOUT", this.address));
    abort?.();
    this.#controller?.abort();
  }
  connected(client: C): void {
    if (this.done) return this.close(client);
    this.#abort = undefined;
    this.client = client;
    this.step = "accept";
    this.acceptNext();
  }
  /**
   * An accepted connection: the client's, or another to close (a readiness
   * poller, another program), after which the next one is accepted.
   */
  offered(connection: C): void {
    if (this.done) return this.close(connection);
    if (!this.isPeer(connection, this.client!)) {
      this.close(connection);
      return this.acceptNext();
    }
    this.accepted = connection;
    this.step = "end-of-stream";
    try {
      this.closeWrite(connection);
    } catch (error) {
      return this.failed(resetError(this.address, error));
    }
    // A reset of either side (the accepted one's FIN refused) fails it.
    this.watchEnds(this.client!, connection);
    if (this.#clientEnded) this.#closeClient();
  }
  /** One that was reset while it waited in the queue is skipped. */
  acceptFailed(error: unknown): void {
    const gone = error instanceof StepError && error.code === "ECONNABORTED";
    if (gone && !this.done) this.acceptNext();
    else this.failed(error);
  }
  /**
   * The client saw the accepted side's FIN: it closes in turn. Before its
   * connection was accepted, the FIN is not ours: out of descriptors, libuv
   * (Node) accepts and closes a connection to make room, without a word,
   * and by the time a probe looks, descriptors may be back.
   */
  clientEnded(): void {
    this.#clientEnded = true;
    if (this.step === "end-of-stream") this.#closeClient();
    else if (this.step === "accept") {
      this.failed(new StepError("accept", "UNACCEPTED", this.address));
    }
  }
  acceptedEnded(): void {
    this.#acceptedEnded = true;
    if (this.step === "close") this.#finish();
  }
  failed = (error: unknown): void => {
    if (this.done) return;
    this.done = true;
    unwatch(this);
    // Out of descriptors, Bun fails to accept without a word, and reports a
    // failed connect as refused: a listener of our own cannot refuse. Asked
    // before anything is closed, which would free some.
    const suspect = error instanceof StepError &&
      (error.step === "connect" || error.step === "accept") &&
      (error.code === "ETIMEDOUT" || error.code === "ECONNREFUSED" ||
        error.code === "UNACCEPTED" || error.code === undefined);
    if (!suspect) return this.#closeAll(error);
    const { step } = error as StepError;
    this.#exhausted().then((exhausted) => {
      this.#closeAll(
        exhausted
          ? new StepError(step, "EMFILE", this.address, exhausted)
          : error,
      );
    }, () => this.#closeAll(error));
  };
  #closeClient(): void {
    if (this.done) return;
    const client = this.client!;
    this.client = undefined;
    // Bun reports the close it asks for at once.
    this.step = "close";
    this.close(client);
    if (this.#acceptedEnded) this.#finish();
  }
  #finish(): void {
    if (this.done) return;
    this.done = true;
    unwatch(this);
    this.#closeAll(undefined);
  }
  #closeAll(error: unknown): void {
    this.#abort = undefined;
    if (this.accepted) this.close(this.accepted);
    if (this.client) this.close(this.client);
    this.settle(error);
  }
}

/** A hand-off over a Listener and the adapter's Connections. */
class ListenerHandOff extends HandOffSteps<Connection> {
  #sockets: Sockets;
  #listener: Listener;
  #resolve: () => void;
  #reject: (error: unknown) => void;
  constructor(
    sockets: Sockets,
    listener: Listener,
    address: string,
    resolve: () => void,
    reject: (error: unknown) => void,
  ) {
    super(address, sockets.descriptorsExhausted);
    this.#sockets = sockets;
    this.#listener = listener;
    this.#resolve = resolve;
    this.#reject = reject;
  }
  protected settle(error: unknown): void {
    if (error) this.#reject(error);
    else this.#resolve();
  }
  connect(): void {
    this.start();
    let connecting;
    try {
      connecting = this.#sockets.connect(
        this.address,
        this.#listener.port,
        this,
      );
    } catch (error) {
      return this.failed(error);
    }
    connecting.then((client) => this.connected(client), this.failed);
  }
  protected isPeer(accepted: Connection, client: Connection): boolean {
    return accepted.remotePort === client.localPort &&
      unmapped(accepted.remoteAddress) === unmapped(client.localAddress);
  }
  protected acceptNext(): void {
    this.#listener.accept().then(
      (connection) => this.offered(connection),
      (error) => this.acceptFailed(error),
    );
  }
  protected closeWrite(accepted: Connection): void {
    accepted.closeWrite();
  }
  protected watchEnds(client: Connection, accepted: Connection): void {
    client.endOfStream.then(() => this.clientEnded(), this.failed);
    accepted.endOfStream.then(() => this.acceptedEnded(), this.failed);
  }
  protected close(connection: Connection): void {
    connection.close();
  }
}

/**
 * A quick claim's hand-off (Sockets.quick) over the runtime's own sockets:
 * what the runtimes' claims share. Runtimes that accept by themselves (Node,
 * Bun) hand each connection to arrived(); Deno pulls its accepts.
 */
abstract class QuickSteps<C> extends HandOffSteps<C> implements QuickClaim {
  port = 0;
  /** Held: every connection accepted is closed at once. */
  protected holding: boolean;
  /** Accepted connections not yet asked for. */
  protected ready: C[] = [];
  /** The hand-off asked for a connection, and none was ready. */
  protected wanted = false;
  #request: ReserveRequest = DEFAULT_REQUEST;
  #resolve: (port: number) => void = ignore;
  #reject: (error: unknown) => void = ignore;
  constructor(
    address: string,
    exhausted: () => Promise<unknown>,
    holding: boolean,
  ) {
    super(address, exhausted);
    this.holding = holding;
  }
  handOver(
    request: ReserveRequest,
    resolve: (port: number) => void,
    reject: (error: unknown) => void,
    asked: boolean,
  ): void {
    this.holding = false;
    this.#request = request;
    this.#resolve = resolve;
    this.#reject = reject;
    this.connect(asked);
  }
  /** Starts the deadline (start()) and the client's connect. */
  protected abstract connect(asked: boolean): void;
  /** Closes the listener, then calls `closed`. */
  protected abstract closeListener(closed: () => void): void;
  protected settle(error: unknown): void {
    if (this.ready.length > 0) {
      for (const connection of this.ready.splice(0)) this.close(connection);
    }
    this.closeListener(() => {
      if (error) this.#reject(userError(error, this.#request, this.port));
      else this.#resolve(this.port);
    });
  }
  /** A connection the runtime accepted by itself (Node, Bun). */
  protected arrived(connection: C): void {
    if (this.done || this.holding) return this.close(connection);
    if (!this.wanted) return void this.ready.push(connection);
    this.wanted = false;
    this.offered(connection);
  }
  protected acceptNext(): void {
    const next = this.ready.shift();
    if (next) this.offered(next);
    else this.wanted = true;
  }
}

/** An IPv4 address as itself, where a dual-stack socket maps it to IPv6. */
function unmapped(address: string): string {
  return address[0] === ":" ? address.replace(/^::ffff:/i, "") : address;
}

/**
 * Milliseconds on a clock that only goes forward: the wall clock can step
 * back (NTP, a VM resumed) or be faked in tests, and a deadline on it would
 * then wait without bound. Taken at load, so that faking it later changes
 * nothing here.
 */
const monotonicNow: () => number = performance.now.bind(performance);

/**
 * The deadlines not yet cleared. All last STEP_TIMEOUT_MS, so the order they
 * were added in is the order they expire in: the timer waits for the first.
 */
const deadlines = new Set<HandOffSteps<unknown>>();
/**
 * Hand-offs past their time, watched for a step (see `look`): where each
 * stood at the last look, and for how many looks it has stood there.
 */
const overdue = new Map<HandOffSteps<unknown>, Standing>();
/** Whether a look is due: one timer at a time, or looks would count double. */
let looking = false;
/** The shared timer, referenced only while a deadline is watched. */
let timer: SweepTimer | undefined;
/** Whether this is Deno, whose shared timer is an AbortSignal.timeout. */
const ON_DENO = (globalThis as Scope).Deno !== undefined;

interface Standing {
  progress: string;
  looks: number;
}

interface SweepTimer {
  /** Keeps it alive; false if it has fired unheard (Deno's), and will not. */
  ref(): boolean;
  unref(): void;
}

function watch(deadline: HandOffSteps<unknown>): void {
  deadlines.add(deadline);
  if (deadlines.size > 1) return;
  // A timer made earlier fires no later than this deadline: sweep() waits on.
  if (timer?.ref()) return;
  timer = startTimer(STEP_TIMEOUT_MS, sweep);
  timer.ref();
}

function unwatch(deadline: HandOffSteps<unknown>): void {
  if (!deadlines.delete(deadline)) overdue.delete(deadline);
  else if (deadlines.size === 0) timer?.unref();
}

/** Moves the deadlines whose time is up to `overdue`, and waits for the next. */
function sweep(): void {
  timer = undefined;
  const now = monotonicNow();
  for (const deadline of deadlines) {
    if (deadline.expiresAt > now) break;
    deadlines.delete(deadline);
    overdue.set(deadline, { progress: deadline.progress, looks: 0 });
    if (!looking) startTimer(0, look).ref();
    looking = true;
  }
  const next = deadlines.values().next().value;
  if (!next) return;
  timer = startTimer(next.expiresAt - now, sweep);
  timer.ref();
}

/**
 * Fails the overdue hand-offs that took no step in the last LAST_LOOKS turns
 * of the event loop, and looks again at the rest a turn later. A timer set in
 * a timer's callback fires after the loop next polls its sockets: events that
 * came while the loop was held up are seen before a look. On Deno an op's
 * result may take a turn more (one look failed 2 of 15 held-up hand-offs, two
 * none of 60), and its node:net up to five (three failed 16 of 250). The
 * steps are few, so this ends too: a hand-off that keeps moving fails at most
 * a few turns later than if nothing had held it up.
 */
function look(): void {
  for (const [deadline, standing] of overdue) {
    const progress = deadline.progress;
    if (progress !== standing.progress) {
      standing.progress = progress;
      standing.looks = 0;
    } else if (++standing.looks >= LAST_LOOKS) {
      overdue.delete(deadline);
      deadline.expire();
    }
  }
  if (overdue.size > 0) startTimer(0, look).ref();
  looking = overdue.size > 0;
}

interface NodeTimer {
  ref(): unknown;
  unref(): unknown;
}

/**
 * An unreferenced timer that calls `fire`. On Deno an AbortSignal.timeout,
 * not a setTimeout, whose first use costs Deno 7-10 ms at every start of the
 * command line: its timer keeps Deno alive only while a listener is attached,
 * so ref() attaches `fire` and unref() detaches it.
 */
function startTimer(ms: number, fire: () => void): SweepTimer {
  if (ON_DENO) {
    // Once it fired with no listener, sweep() never heard it: a new one.
    const signal = AbortSignal.timeout(ms);
    return {
      ref(): boolean {
        if (signal.aborted) return false;
        signal.addEventListener("abort", fire);
        return true;
      },
      unref: () => signal.removeEventListener("abort", fire),
    };
  }
  // Node's and Bun's fire unreferenced too, and sweep() then drops them.
  const started = setTimeout(fire, ms) as unknown as NodeTimer;
  started.unref();
  return {
    ref(): boolean {
      started.ref();
      return true;
    },
    unref: () => void started.unref(),
  };
}

/** A held port: its listeners close foreign connections until released. */
class HeldPort implements Reservation {
  readonly hostname: string;
  readonly port: number;
  #handOver: () => Promise<number>;
  #released: Promise<void> | undefined;
  constructor(
    request: ReserveRequest,
    port: number,
    handOver: () => Promise<number>,
  ) {
    this.hostname = request.label;
    this.port = port;
    this.#handOver = handOver;
  }
  release(): Promise<void> {
    if (this.#released) return this.#released.then(ignore, ignore);
    return this.#released = inFlight(this.#handOver).then(ignore);
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/** Holds a claim's listeners (HeldListener); its hand-over, for release(). */
function heldHandOver(
  sockets: Sockets,
  request: ReserveRequest,
  claim: Claim,
): () => Promise<number> {
  const listeners = claim.listeners.map((l) => new HeldListener(l));
  return () => {
    for (const listener of listeners) listener.handingOver();
    return handOver(sockets, request, { ...claim, listeners });
  };
}

/**
 * A held listener: until handingOver(), every connection it accepts is
 * closed at once (a readiness poller's, another program's), so none waits
 * and none can pass for the hand-off's own; after it, it accepts only when
 * asked, as any listener, so that none is pending when it closes (Deno would
 * free the socket only once that one settled, a turn later).
 */
class HeldListener implements Listener {
  address: string;
  port: number;
  #listener: Listener;
  #queue = new AcceptQueue();
  #holding = true;
  #closed = false;
  /** The hand-off asked for a connection: its connect is in. */
  #asked = false;
  /** Foreign clients connected while it was held (see DenoQuick's). */
  #foreign = false;
  /** The pending accept, if any: settled once the listener is closed. */
  #accepting: Promise<void> | undefined;
  /** The next try after a failed accept while held. */
  #retry: ReturnType<typeof setTimeout> | undefined;
  constructor(listener: Listener) {
    this.#listener = listener;
    this.address = listener.address;
    this.port = listener.port;
    this.#acceptNext();
  }
  handingOver(): void {
    this.#holding = false;
    this.#stopRetry();
    if (!this.#accepting && this.#foreign) this.#acceptNext();
  }
  accept(): Promise<Connection> {
    this.#asked = true;
    const next = this.#queue.next();
    if (!this.#holding && !this.#accepting && this.#queue.waiters > 0) {
      this.#acceptNext();
    }
    return next;
  }
  /** A promise only if something is left to wait for, as closeAll wants. */
  close(): Promise<unknown> | undefined {
    this.#closed = true;
    this.#stopRetry();
    this.#queue.close(() => new StepError("accept", undefined, this.address));
    const closing = this.#listener.close();
    const accepting = this.#accepting;
    if (!closing && !accepting) return undefined;
    return Promise.all([closing, accepting]);
  }
  /** Deno's timers cost its start 6 ms at a first use: none if none ran. */
  #stopRetry(): void {
    if (this.#retry !== undefined) clearTimeout(this.#retry);
  }
  #acceptNext(): void {
    this.#accepting = this.#listener.accept().then((connection) => {
      this.#accepting = undefined;
      if (this.#holding) {
        connection.close();
        this.#foreign = true;
        return this.#acceptNext();
      }
      this.#queue.push(connection);
      // Until the hand-off's connect is in, on a port that foreign clients
      // found while held, the queue is drained all the same (see DenoQuick's
      // accept for why, and why not on others).
      if (this.#queue.waiters > 0 || (!this.#asked && this.#foreign)) {
        this.#acceptNext();
      }
    }, (error) => {
      this.#accepting = undefined;
      // After handingOver() the hand-off hears of it (and accepts again if
      // the connection was only aborted). While held, an aborted one is
      // skipped, and a failed accept (descriptors out) is tried again
      // shortly, so that connections keep being closed once they are back.
      const gone = error instanceof StepError && error.code === "ECONNABORTED";
      if (this.#holding) this.#foreign = true;
      if (!this.#holding && !this.#asked) {
        // Draining before the hand-off asked: an aborted one is skipped as
        // it would be; another failure stops the drain (see DenoQuick's).
        if (gone && !this.#closed) this.#acceptNext();
        return;
      }
      if (!this.#holding) return this.#queue.fail(error);
      if (gone) return this.#acceptNext();
      if (!this.#closed) {
        this.#retry = setTimeout(() => this.#acceptNext(), RETRY_MS);
      }
    });
  }
}

/**
 * Runs `task` `count` times, at most MAX_IN_FLIGHT at once; the results in
 * order. After a failure no task starts; every running one settles (closing
 * its sockets) before the first error is thrown.
 */
async function inParallel<T>(
  count: number,
  task: () => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  let failure: { error: unknown } | undefined;
  let next = 0;
  async function worker(): Promise<void> {
    while (!failure && next < count) {
      const slot = next++;
      try {
        results[slot] = await task();
      } catch (error) {
        failure ??= { error };
      }
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(count, MAX_IN_FLIGHT); i++) {
    workers.push(worker());
  }
  await Promise.all(workers);
  if (failure) throw failure.error;
  return results;
}

/** Runs `reservation` when fewer than MAX_IN_FLIGHT are running. */
function inFlight<T>(reservation: () => Promise<T>): Promise<T> {
  if (running < MAX_IN_FLIGHT) {
    running++;
    return runInSlot(reservation);
  }
  return new Promise<void>((resolve) => waiting.push(resolve)).then(() =>
    runInSlot(reservation)
  );
}

/** Runs `reservation` in a slot taken, and passes the slot on. */
function runInSlot<T>(reservation: () => Promise<T>): Promise<T> {
  let running;
  try {
    running = reservation();
  } catch (error) {
    running = Promise.reject(error);
  }
  return running.then((value) => {
    passSlot();
    return value;
  }, (error) => {
    passSlot();
    throw error;
  });
}

/** The slot passes straight to the next waiter, if any. */
function passSlot(): void {
  const next = waiting.shift();
  if (next) next();
  else running--;
}
let running = 0;
const waiting: (() => void)[] = [];

/** How long a reserveMany batch may run: half the TIME_WAIT window. */
function batchLimitMs(): number {
  return (testHooks().timeWaitMs ?? TIME_WAIT_MS) / 2;
}

// ---------------------------------------------------------------------------
// Errors: backends report a step and a code; the message is looked up here.

type Step =
  | "permission"
  | "interfaces"
  | "listen"
  | "connect"
  | "accept"
  | "end-of-stream"
  | "close";

/**
 * The codes the message table knows. Backends map their runtime's errors to
 * errno names; the rest are this module's own findings.
 */
type Code =
  | "EADDRINUSE"
  | "EADDRNOTAVAIL"
  | "EAFNOSUPPORT"
  | "EACCES"
  | "ENOTFOUND"
  | "EAI_AGAIN"
  | "EMFILE"
  | "UNACCEPTED"
  | "ENFILE"
  | "ECONNRESET"
  | "ECONNREFUSED"
  | "ETIMEDOUT"
  | "ECONNABORTED"
  | "LOCALHOST_BUSY"
  | "EXCLUDED"
  | "NO_ADDRESSES"
  | "NO_PERMISSION"
  | "DENIED";

/** A failed step of one reservation, with the runtime's error as cause. */
class StepError extends Error {
  step: Step;
  code: Code | undefined;
  /** The address or name the step was on. */
  host: string;
  /** For permission errors: every host the permission is missing for. */
  hosts: string[];
  constructor(
    step: Step,
    code: Code | undefined,
    host: string,
    cause?: unknown,
    hosts: string[] = [],
  ) {
    super(`${step} failed`, { cause });
    this.step = step;
    this.code = code;
    this.host = host;
    this.hosts = hosts;
  }
}

interface Context {
  step: Step;
  /** The address a step was on, or "" where it is the host asked for. */
  host: string;
  /** The address a step was on. */
  address: string;
  hosts: string;
  port: number;
}

const MESSAGES: Record<Code, (context: Context) => string> = {
  NO_PERMISSION: ({ step, hosts }) =>
    step === "interfaces"
      ? "a wildcard reservation covers every address of the network interfaces, and Deno has no permission to list them: run with --allow-sys=networkInterfaces"
      : `Deno has no net permission for ${hosts}: run with -N or --allow-net=${hosts}`,
  DENIED: ({ step, hosts }) =>
    step === "interfaces"
      ? "a wildcard reservation covers every address of the network interfaces, and Deno's permission to list them is denied: drop --deny-sys for networkInterfaces"
      : `Deno's net permission for ${hosts} is denied: drop --deny-net for them`,
  EADDRINUSE: ({ step }) =>
    step === "listen"
      ? "no ephemeral port is left: every port of the range is in use or in TIME_WAIT (60 s on Linux); wait, or widen net.ipv4.ip_local_port_range"
      : "no ephemeral port is left for its client connection: a reservation holds two ports of the range at once, and the rest are in use or in TIME_WAIT (60 s on Linux); wait, or widen net.ipv4.ip_local_port_range",
  EADDRNOTAVAIL: ({ step, address }) =>
    step !== "listen"
      ? MESSAGES.EADDRINUSE({ step } as Context)
      : address === "::1"
      ? "::1 is not configured on this machine (IPv6 disabled?): use 127.0.0.1"
      : "it is not an address of this machine: use 127.0.0.1, ::1, localhost, 0.0.0.0, :: or an address of a local interface",
  EAFNOSUPPORT: ({ address }) =>
    address.includes(":")
      ? "this machine does not support IPv6: use 127.0.0.1 or 0.0.0.0"
      : "this machine does not support IPv4: use ::1 or ::",
  EACCES: () =>
    `binding it needs privileges (ports below net.ipv4.ip_unprivileged_port_start, 1024 by default): use 0 or a port at or above that`,
  ENOTFOUND: () =>
    "the hostname does not resolve: check the spelling or pass an IP address",
  EAI_AGAIN: () =>
    "the hostname lookup failed for now (EAI_AGAIN): check the DNS resolver or pass an IP address",
  EMFILE: () =>
    "too many open files: close some, raise the limit (ulimit -n), or reserve fewer ports at once",
  UNACCEPTED: () =>
    "too many open files (the runtime closed its connection unaccepted, as libuv does to make room): close some, raise the limit (ulimit -n), or reserve fewer ports at once",
  ENFILE: () =>
    "the system ran out of file descriptors (ENFILE): close some or raise fs.file-max",
  ECONNRESET: ({ host }) =>
    `its connection${
      on(host)
    } was reset, so no TIME_WAIT was left: check for firewall rules or tools that kill loopback sockets`,
  ECONNREFUSED: ({ host }) =>
    `its own connection${
      on(host)
    } was refused: check for firewall rules that reject loopback traffic`,
  ETIMEDOUT: ({ step, host }) =>
    `the ${step === "close" ? "client's close" : step}${
      on(host)
    } took over ${STEP_TIMEOUT_MS} ms: check for firewall rules that drop loopback packets`,
  ECONNABORTED: (context) => MESSAGES.ECONNRESET(context),
  NO_ADDRESSES: ({ host }) =>
    `no network interface has an ${
      host === "::" ? "" : "IPv4 "
    }address for it to cover: bring an interface up or pass an address`,
  EXCLUDED: () =>
    `the kernel chose excluded ports ${EXCLUDED_DRAWS} times in a row: exclude fewer ports of net.ipv4.ip_local_port_range, or widen it`,
  LOCALHOST_BUSY: () =>
    `no port was free on both 127.0.0.1 and ::1 in ${LOCALHOST_ATTEMPTS} attempts: pass 127.0.0.1 or ::1 as hostname`,
};

/** Turns a failed step into the error users see. */
function userError(
  error: unknown,
  request: ReserveRequest,
  port: number,
): Error {
  if (!(error instanceof StepError)) return error as Error;
  const { step, code, host: address } = error;
  const prefix = `Cannot reserve port${
    code === "EACCES" ? ` ${port}` : ""
  } on ${request.label}`;
  const hosts = error.hosts.map(bracket).join(",");
  // The address a step was on is named where it is not the host asked for.
  const asked = address === addressOf(request.host) ||
    address === request.label;
  const host = asked ? "" : address;
  const reason = code === undefined
    ? `the ${step}${on(host)} failed: ${messageOf(error.cause)}`
    : MESSAGES[code]({ step, host, address, hosts, port });
  // Permission errors are found before any runtime call: no cause to keep.
  const cause = error.cause;
  return new Error(
    `${prefix} as ${reason}`,
    cause === undefined ? {} : { cause },
  );
}

/** With `fallback: false`, when every named port was passed over. */
function namedPortsError(request: ReserveRequest, claims: Claims): Error {
  const { named } = request;
  const reserved = named.filter((port) => claims.taken.has(port)).length;
  const reasons = [
    [claims.busy, "in use"],
    [claims.privileged, "needing privileges"],
    [reserved, "reserved by this call"],
    [named.length - claims.busy - claims.privileged - reserved, "being tried"],
  ].filter(([count]) => count !== 0).map(([count, why]) => `${count} ${why}`);
  return new Error(
    `Cannot reserve port on ${request.label} as none of the ports named is left: tried ${
      portList(named)
    } (${
      reasons.join(", ")
    }); name more ports, or let it fall back to any port`,
    claims.lastCause === undefined ? {} : { cause: claims.lastCause },
  );
}

/** Ports as a short list, runs as ranges: "3000, 8000-8100". */
function portList(ports: number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < ports.length;) {
    let end = i;
    while (ports[end + 1] === ports[end] + 1) end++;
    runs.push(end === i ? `${ports[i]}` : `${ports[i]}-${ports[end]}`);
    i = end + 1;
  }
  const shown = runs.slice(0, 8).join(", ");
  return runs.length > 8 ? `${shown} and ${runs.length - 8} more` : shown;
}

function expiringBatchError(
  request: ReserveRequest,
  count: number,
  done: number,
  firstAt: number,
): Error {
  const seconds = ((monotonicNow() - firstAt) / 1000).toFixed(1);
  return new Error(
    `Cannot reserve ${count} ports on ${request.label} as the first would expire before the last is made: ${done} took ${seconds} s of TIME_WAIT's 60 s; reserve fewer at once`,
  );
}

function on(host: string): string {
  return host === "" ? "" : ` on ${host}`;
}

function addressOf(host: Host): string | undefined {
  if (host.kind === "localhost") return undefined;
  return host.kind === "name" ? host.name : host.address;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function bracket(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function ignore(): void {}

/** A value as a message shows it: strings quoted, arrays and objects as JSON. */
function valueText(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value !== "object" || value === null) return String(value);
  // A boxed primitive is not the primitive: say so.
  for (const Box of [Number, String, Boolean]) {
    if (value instanceof Box) {
      return `new ${Box.name}(${valueText(value.valueOf())})`;
    }
  }
  try {
    return JSON.stringify(
      value,
      (_, item) => typeof item === "bigint" ? `${item}n` : item,
    );
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The errno name of a runtime's error, e.g. "EADDRINUSE", if it has one. */
function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

// ---------------------------------------------------------------------------
// Socket adapters: the runtime's own API behind one small interface. They map
// their runtime's errors to a Code and close what they opened on failure.

interface Listener {
  /** The address it is bound to, a resolved name's included. */
  address: string;
  port: number;
  /** The next connection accepted; connections that came first are queued. */
  accept(): Promise<Connection>;
  /** A promise only if the close is to be waited for. */
  close(): Promise<unknown> | undefined | void;
}

interface Connection {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Resolves when the peer's FIN arrives; rejects on a reset. */
  endOfStream: Promise<void>;
  /** Sends a FIN and keeps the descriptor, so the socket is no orphan. */
  closeWrite(): void;
  /** A graceful close (a FIN), as nothing is ever written or left unread. */
  close(): void;
}

/** What a connect needs of its hand-off's deadline. */
interface ConnectDeadline {
  /** Aborted when the time is up: for a connect that takes a signal. */
  readonly signal: AbortSignal;
  /** Whether the time is up. */
  readonly expired: boolean;
  /** `abort` is called when the time is up, until replaced or cleared. */
  onExpire(abort: (() => void) | undefined): void;
}

interface Sockets {
  /** Throws a permission StepError naming every host not granted (Deno). */
  requireNet(hosts: string[]): void;
  /** Every address of this machine's network interfaces. */
  interfaceAddresses(): Promise<string[]>;
  listen(hostname: string, port: number): Promise<Listener>;
  /** Connects; the deadline's expiry closes a connect still pending. */
  connect(
    address: string,
    port: number,
    deadline: ConnectDeadline,
  ): Promise<Connection>;
  /** The error that says descriptors ran out, if they have, else undefined. */
  descriptorsExhausted(): Promise<unknown>;
  /**
   * Claims a quick request's port (ReserveRequest.quick) on the runtime's own
   * sockets, at the runtime's own cost: `listened` gets the claim, listening
   * with its port added to `taken`, or undefined where the listen failed or
   * gave a port in `taken`. At once where the runtime listens at once (Deno,
   * Bun). `holding`: until its hand-over, connections to it are closed at
   * once, as hold() wants.
   */
  quick?(
    address: string,
    taken: Set<number>,
    holding: boolean,
    listened: (claim: QuickClaim | undefined) => void,
  ): void;
}

/** A port a quick request claimed, listening, not yet handed over. */
interface QuickClaim {
  port: number;
  /**
   * Leaves the port in TIME_WAIT, and closes it: `resolve` gets the port,
   * `reject` the error users see (userError, for `request`). `asked`: the
   * claim was made in this synchronous run, so that the permission its
   * listen was granted still holds (Deno).
   */
  handOver(
    request: ReserveRequest,
    resolve: (port: number) => void,
    reject: (error: unknown) => void,
    asked: boolean,
  ): void;
}

type RuntimeName = "deno" | "bun" | "node";

/**
 * Not part of the API: the test suite sets this global to run every adapter
 * wherever it can run, and to shorten the TIME_WAIT window a batch is held
 * to. Read on each call; set by test_util.ts's `useBackend` alone.
 */
const TEST_HOOKS = Symbol.for("@x/port-reserve/test");

interface TestHooks {
  backend?: RuntimeName;
  timeWaitMs?: number;
}

interface Scope {
  Deno?: DenoRuntime;
  Bun?: BunRuntime;
  [TEST_HOOKS]?: TestHooks;
}

function testHooks(): TestHooks {
  return (globalThis as Scope)[TEST_HOOKS] ?? NO_HOOKS;
}
const NO_HOOKS: TestHooks = {};

const pickedSockets: Partial<Record<RuntimeName, Promise<Sockets>>> = {};
/** The adapters loaded: a call then reaches its listen in the same run. */
const readySocketsByName: Partial<Record<RuntimeName, Sockets>> = {};

function readySockets(): Sockets | undefined {
  return readySocketsByName[socketsName(globalThis as Scope)];
}

/** Deno, then Bun (both also have `process`), then Node, or the test's. */
function socketsName(scope: Scope): RuntimeName {
  return testHooks().backend ??
    (scope.Deno ? "deno" : scope.Bun ? "bun" : "node");
}

/** The runtime's adapter: Deno, then Bun (both also have `process`), Node. */
function pickSockets(): Promise<Sockets> {
  const scope = globalThis as Scope;
  const name = socketsName(scope);
  return pickedSockets[name] ??= loadSockets(name, scope).then(
    (sockets) => readySocketsByName[name] = sockets,
    (error) => {
      delete pickedSockets[name];
      throw error;
    },
  );
}

async function loadSockets(name: RuntimeName, scope: Scope): Promise<Sockets> {
  if (name === "deno" && scope.Deno) return denoSockets(scope.Deno);
  if (name === "bun" && scope.Bun) return bunSockets(scope.Bun);
  if (name === "node") {
    try {
      // Loaded only here, so Deno and Bun never pay for it at start.
      return nodeSockets(await import("node:net") as NodeNet);
    } catch (error) {
      throw new Error(
        "Cannot reserve port as this runtime has neither Deno, Bun nor node:net: use one of them",
        { cause: error },
      );
    }
  }
  throw new Error(`Cannot reserve port with the ${name} backend here`);
}

/** A listener's accepted connections, queued until asked for. */
class AcceptQueue {
  #ready: Connection[] = [];
  #waiting: { resolve(c: Connection): void; reject(e: unknown): void }[] = [];
  /** Once closed: every later accept fails with the error this makes. */
  #failure: (() => unknown) | undefined;
  /** A failed accept no one was waiting for: the next caller hears it. */
  #unheard: unknown;
  #closed = false;
  push(connection: Connection): void {
    // One accepted as the listener closes is nobody's: close it at once.
    if (this.#closed) return connection.close();
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(connection);
    else this.#ready.push(connection);
  }
  /** How many accepts are waiting for a connection. */
  get waiters(): number {
    return this.#waiting.length;
  }
  /** A failed accept (EMFILE): it fails one wait, not every later one. */
  fail(error: unknown): void {
    const waiting = this.#waiting.splice(0);
    if (waiting.length === 0) this.#unheard ??= error;
    for (const waiter of waiting) waiter.reject(error);
  }
  next(): Promise<Connection> {
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#failure !== undefined) return Promise.reject(this.#failure());
    const unheard = this.#unheard;
    if (unheard !== undefined) {
      this.#unheard = undefined;
      return Promise.reject(unheard);
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
  }
  /**
   * Closes what was never asked for (foreign connections that came late).
   * The error is made only for an accept that waits or comes later: its
   * stack costs Node more than the rest of the close.
   */
  close(reason: () => unknown): void {
    this.#closed = true;
    this.#failure ??= reason;
    for (const connection of this.#ready.splice(0)) connection.close();
    if (this.#waiting.length > 0) this.fail(reason());
  }
}

/** A node:fs probe: the EMFILE or ENFILE error opening a file gives now. */
async function probeDescriptors(): Promise<unknown> {
  const { openSync, closeSync } = await import("node:fs");
  try {
    closeSync(openSync("/dev/null", "r"));
    return undefined;
  } catch (error) {
    return ["EMFILE", "ENFILE"].includes(errnoOf(error)!) ? error : undefined;
  }
}

function lookupCode(error: unknown): Code | undefined {
  const code = errnoOf(error);
  if (code === "EAI_AGAIN") return "EAI_AGAIN";
  if (code === "ENOTFOUND" || code?.startsWith("EAI_")) return "ENOTFOUND";
  return undefined;
}

/** The runtime's errno name as a code of the message table, if it is one. */
function knownCode(error: unknown): Code | undefined {
  const errno = errnoOf(error);
  // A connection reset or dropped while it waited to be accepted.
  if (errno === "ENOTCONN") return "ECONNABORTED";
  return errno !== undefined && errno in MESSAGES ? errno as Code : undefined;
}

/** End-of-stream of an event-driven socket: the peer's FIN, or a reset. */
class EndTracker {
  readonly endOfStream: Promise<void>;
  #address: string;
  #gotEnd = false;
  #cleanCloseIsEnd = false;
  #resolve!: () => void;
  #reject!: (error: StepError) => void;
  constructor(address: string) {
    this.#address = address;
    this.endOfStream = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.endOfStream.catch(ignore);
  }
  ended(): void {
    this.#gotEnd = true;
    this.#resolve();
  }
  /** A close with an error, or with no FIN first, is a reset. */
  closed(error?: unknown): void {
    if (!error && (this.#gotEnd || this.#cleanCloseIsEnd)) {
      return this.#resolve();
    }
    this.#reject(resetError(this.#address, error));
  }
  /** From now on a clean close counts as the peer's FIN (Bun's way). */
  halfClosed(): void {
    this.#cleanCloseIsEnd = true;
  }
}

/** A connection reset (or closed with no FIN first) during the hand-off. */
function resetError(address: string, error?: unknown): StepError {
  const cause = error ?? new Error("closed before end-of-stream");
  return new StepError("end-of-stream", closedCode(cause), address, cause);
}

function closedCode(error: unknown): Code {
  const code = errnoOf(error);
  return code === "ECONNREFUSED" ? "ECONNREFUSED" : "ECONNRESET";
}

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
interface DenoRuntime {
  listen(options: { hostname: string; port: number }): {
    addr: DenoAddr;
    accept(): Promise<DenoConn>;
    close(): void;
  };
  connect(
    options: { hostname: string; port: number; signal: AbortSignal },
  ): Promise<DenoConn>;
  networkInterfaces(): { address: string }[];
  permissions: {
    querySync(
      descriptor:
        | { name: "net"; host: string }
        | { name: "sys"; kind: "networkInterfaces" },
    ): { state: string };
  };
}

function denoSockets(deno: DenoRuntime): Sockets {
  // Asked again at each listen and connect, though listenCovering asked for
  // every address at first: code in between may revoke a permission, and
  // Deno would then prompt. Only a quick claim's listen and the connect that
  // follows it in the same synchronous run, where no other code can run,
  // share one answer (QuickClaim's `asked`).
  const requireNet = (hosts: string[]): void => denoRequireNet(deno, hosts);
  return {
    requireNet,
    interfaceAddresses(): Promise<string[]> {
      const query = { name: "sys", kind: "networkInterfaces" } as const;
      const state = deno.permissions.querySync(query).state;
      if (state !== "granted") {
        const code = state === "denied" ? "DENIED" : "NO_PERMISSION";
        throw new StepError("interfaces", code, "networkInterfaces");
      }
      return Promise.resolve(deno.networkInterfaces().map((i) => i.address));
    },
    listen(hostname, port): Promise<Listener> {
      requireNet([hostname]);
      return Promise.resolve(denoListen(deno, hostname, port));
    },
    connect(address, port, deadline): Promise<Connection> {
      requireNet([address]);
      const signal = deadline.signal;
      return deno.connect({ hostname: address, port, signal }).then(
        (conn) => new DenoConnection(conn),
        (error) => {
          throw new StepError("connect", denoCode(error), address, error);
        },
      );
    },
    // Deno reports EMFILE from accept itself.
    descriptorsExhausted: noExhaustion,
    quick(address, taken, holding, listened): void {
      let listener;
      try {
        // Not granted, or the listen failed: claimPort tries again, and says
        // why it failed (for a permission, which flag is missing).
        if (denoNetGranted(deno, address)) {
          listener = deno.listen({ hostname: address, port: 0 });
        }
      } catch {
        // As above.
      }
      if (!listener) return listened(undefined);
      if (taken.has(listener.addr.port)) {
        // Closed unused, it leaves no TIME_WAIT: claimPort draws past it.
        listener.close();
        return listened(undefined);
      }
      taken.add(listener.addr.port);
      listened(new DenoQuick(deno, address, listener, holding));
    },
  };
}

function noExhaustion(): Promise<unknown> {
  return Promise.resolve(undefined);
}

type DenoListener = ReturnType<DenoRuntime["listen"]>;

/** A quick claim over Deno's own sockets (Sockets.quick). */
class DenoQuick extends QuickSteps<DenoConn> {
  #deno: DenoRuntime;
  #listener: DenoListener;
  /** The accept not yet settled, if any: the listener's close waits for it. */
  #accepting: Promise<void> | undefined;
  /** Foreign clients connected while it was held. */
  #foreign = false;
  /** The next try after a failed accept while held. */
  #retry: ReturnType<typeof setTimeout> | undefined;
  constructor(
    deno: DenoRuntime,
    address: string,
    listener: DenoListener,
    holding: boolean,
  ) {
    super(address, noExhaustion, holding);
    this.#deno = deno;
    this.#listener = listener;
    this.port = listener.addr.port;
    if (holding) this.#accept();
  }
  protected connect(asked: boolean): void {
    // Deno's timers cost its start 6 ms at a first use: none if none ran.
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    const { address, port } = this;
    if (!asked) {
      try {
        denoRequireNet(this.#deno, [address]);
      } catch (error) {
        return this.failed(error);
      }
    }
    this.start();
    this.#deno.connect({ hostname: address, port, signal: this.signal }).then(
      (client) => this.connected(client),
      (error) => {
        this.failed(new StepError("connect", denoCode(error), address, error));
      },
    );
  }
  protected closeListener(closed: () => void): void {
    this.#listener.close();
    // Deno frees the listener's socket once its pending accept settles.
    if (this.#accepting) this.#accepting.then(closed);
    else closed();
  }
  protected isPeer(accepted: DenoConn, client: DenoConn): boolean {
    const remote = accepted.remoteAddr;
    const local = client.localAddr;
    return remote.port === local.port &&
      unmapped(remote.hostname) === unmapped(local.hostname);
  }
  protected override acceptNext(): void {
    const ready = this.ready.shift();
    if (ready) return this.offered(ready);
    this.wanted = true;
    if (!this.#accepting) this.#accept();
  }
  #accept(): void {
    this.#accepting = this.#listener.accept().then((connection) => {
      this.#accepting = undefined;
      if (this.holding || this.done) {
        this.close(connection);
        if (this.holding) {
          this.#foreign = true;
          this.#accept();
        }
      } else if (this.wanted) {
        this.wanted = false;
        this.offered(connection);
      } else {
        this.ready.push(connection);
        // Released, its connect pending, on a port that foreign clients
        // found while held: the queue is drained all the same, or a flood
        // would fill the backlog, and the kernel drop the connect's SYN until
        // the deadline. Not on others: an accept left pending when the
        // listener closes costs Deno a turn of its event loop, a third of a
        // reservation.
        if (this.step === "connect" && this.#foreign) this.#accept();
      }
    }, (error) => {
      this.#accepting = undefined;
      const failure = new StepError(
        "accept",
        denoCode(error),
        this.address,
        error,
      );
      const gone = failure.code === "ECONNABORTED";
      if (this.holding) {
        // Held, one reset while it waited is skipped, and a failed accept
        // (descriptors out) is tried again shortly, so that connections keep
        // being closed once they are back.
        this.#foreign = true;
        if (gone) return this.#accept();
        this.#retry = setTimeout(() => this.#accept(), RETRY_MS);
      } else if (this.wanted) {
        this.wanted = false;
        this.acceptFailed(failure);
      } else if (gone && this.step === "connect" && !this.done) {
        this.#accept(); // skipped, as acceptFailed() would, and drained on
      }
      // Else the drain stops: its failure (descriptors held by what it
      // queued) is not the hand-off's, whose own accept, asked for once the
      // connect is in and those are closed, tries again.
    });
  }
  protected closeWrite(accepted: DenoConn): void {
    accepted.closeWrite();
  }
  protected watchEnds(client: DenoConn, accepted: DenoConn): void {
    this.#readToEnd(client, true);
    this.#readToEnd(accepted, false);
  }
  protected close(connection: DenoConn): void {
    try {
      connection.close();
    } catch {
      // Closed already: nothing is left open.
    }
  }
  /** Reads (nothing is ever written) until the peer's FIN, or a reset. */
  #readToEnd(connection: DenoConn, client: boolean): void {
    connection.read(discard).then((read) => {
      if (read !== null) this.#readToEnd(connection, client);
      else if (client) this.clientEnded();
      else this.acceptedEnded();
    }, (error) => this.failed(resetError(this.address, error)));
  }
}

/**
 * Whether Deno grants the net permission for `address`: a quick claim's
 * query. A descriptor of its own each time: code that wraps querySync may
 * change the one it is given, and a kept one would then ask about another
 * host, and let Deno prompt.
 */
function denoNetGranted(deno: DenoRuntime, address: string): boolean {
  const query = { name: "net", host: bracket(address) } as const;
  return deno.permissions.querySync(query).state === "granted";
}

/** Throws a permission StepError naming every host Deno has not granted. */
function denoRequireNet(deno: DenoRuntime, hosts: string[]): void {
  // The common case first: one host, granted.
  if (hosts.length === 1 && denoNetGranted(deno, hosts[0])) return;
  const states = [...new Set(hosts)].map((host) => {
    const query = { name: "net", host: bracket(host) } as const;
    return [host, deno.permissions.querySync(query).state] as const;
  });
  for (const state of ["denied", "prompt"]) {
    const missing = states.filter(([, s]) => s === state).map(([h]) => h);
    if (missing.length > 0) {
      const code = state === "denied" ? "DENIED" : "NO_PERMISSION";
      throw new StepError("permission", code, missing[0], undefined, missing);
    }
  }
}

/** A Deno.listen listener, its permission already asked. */
function denoListen(
  deno: DenoRuntime,
  hostname: string,
  port: number,
): Listener {
  let listener;
  try {
    listener = deno.listen({ hostname, port });
  } catch (error) {
    throw new StepError("listen", denoCode(error), hostname, error);
  }
  const { hostname: address, port: bound } = listener.addr;
  /** The accept not yet settled, if any. */
  let pending: Promise<Connection> | undefined;
  return {
    address,
    port: bound,
    accept(): Promise<Connection> {
      const accepting: Promise<Connection> = listener.accept().then(
        (conn) => {
          if (pending === accepting) pending = undefined;
          return new DenoConnection(conn);
        },
        (error) => {
          if (pending === accepting) pending = undefined;
          throw new StepError("accept", denoCode(error), address, error);
        },
      );
      return pending = accepting;
    },
    // Deno frees a listener's socket only once its pending accept settles;
    // one already settled needs no promise more.
    close(): Promise<void> | undefined {
      listener.close();
      return pending?.then(ignore, ignore);
    },
  };
}

/** What Deno connections read into: nothing is ever written to them. */
const discard = new Uint8Array(16);

/** A Deno connection; its end-of-stream is read only when asked for. */
class DenoConnection implements Connection {
  #conn: DenoConn;
  #endOfStream: Promise<void> | undefined;
  constructor(conn: DenoConn) {
    this.#conn = conn;
  }
  get localAddress(): string {
    return this.#conn.localAddr.hostname;
  }
  get localPort(): number {
    return this.#conn.localAddr.port;
  }
  get remoteAddress(): string {
    return this.#conn.remoteAddr.hostname;
  }
  get remotePort(): number {
    return this.#conn.remoteAddr.port;
  }
  get endOfStream(): Promise<void> {
    return this.#endOfStream ??= this.#readToEnd();
  }
  closeWrite(): void {
    this.#conn.closeWrite();
  }
  close(): void {
    this.#conn.close();
  }
  #readToEnd(): Promise<void> {
    return this.#conn.read(discard).then(
      (read) => read === null ? undefined : this.#readToEnd(),
      (error) => {
        throw new StepError(
          "end-of-stream",
          closedCode(error),
          this.localAddress,
          error,
        );
      },
    );
  }
}

/** Deno's errors as codes: its failed lookups have none, only a text. */
function denoCode(error: unknown): Code | undefined {
  const message = messageOf(error);
  if (/temporary failure in name resolution/i.test(message)) {
    return "EAI_AGAIN";
  }
  if (/lookup address/i.test(message)) return "ENOTFOUND";
  return knownCode(error);
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
  data(socket: BunSocket, data: Uint8Array): void;
  end?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
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

function bunSockets(bun: BunRuntime): Sockets {
  return {
    requireNet: ignore,
    interfaceAddresses,
    async listen(hostname, port): Promise<Listener> {
      const address = await listenAddress(hostname);
      try {
        return bunListen(bun, address, port);
      } catch (error) {
        throw await listenFailure(error, hostname);
      }
    },
    // A pending Bun.connect cannot be cancelled (Bun's node:net client could
    // be, but loading it costs 10 ms at every start): one that outlives the
    // deadline is closed if it ever connects, else the kernel gives up on it.
    connect(address, port, deadline): Promise<Connection> {
      const end = new EndTracker(address);
      const connecting = bun.connect({
        hostname: address,
        port,
        socket: {
          data: ignore,
          end: () => end.ended(),
          close: (_, error) => end.closed(error),
          error: (_, error) => end.closed(error),
        },
      });
      return connecting.then((socket) => {
        if (deadline.expired) socket.end();
        return new EventConnection(socket, address, false, end, BUN_CLIENT);
      }, (error) => {
        throw new StepError("connect", nodeCode(error), address, error);
      });
    },
    descriptorsExhausted: probeDescriptors,
    quick(address, taken, holding, listened): void {
      const quick = new BunQuick(bun, address, holding);
      listened(quick.listen(taken) ? quick : undefined);
    },
  };
}

/** A quick claim over Bun's own sockets (Sockets.quick). */
class BunQuick extends QuickSteps<BunSocket> {
  #bun: BunRuntime;
  #listener: ReturnType<BunRuntime["listen"]> | undefined;
  /** The accepted side half-closed: its clean close is the client's FIN. */
  #halfClosed = false;
  constructor(bun: BunRuntime, address: string, holding: boolean) {
    super(address, probeDescriptors, holding);
    this.#bun = bun;
  }
  /** Whether it listens: else claimPort says why it failed. */
  listen(taken: Set<number>): boolean {
    try {
      this.#listener = this.#bun.listen({
        hostname: this.address,
        port: 0,
        socket: {
          open: (socket) => this.arrived(socket),
          data: ignore,
          end: (socket) => socket === this.accepted && this.acceptedEnded(),
          close: (socket, error) => this.#acceptedClosed(socket, error),
          error: (socket, error) => this.#acceptedClosed(socket, error),
        },
      });
    } catch {
      return false;
    }
    this.port = this.#listener.port;
    if (taken.has(this.port)) {
      // Closed unused, it leaves no TIME_WAIT: claimPort draws past it.
      this.#listener.stop(true);
      return false;
    }
    taken.add(this.port);
    return true;
  }
  // A pending Bun.connect cannot be cancelled (Bun's node:net client could
  // be, but loading it costs 10 ms at every start): one that outlives the
  // deadline is closed if it ever connects, else the kernel gives up on it.
  protected connect(): void {
    this.start();
    let open = false;
    const clientClosed = (error?: Error): void => {
      // Before the connect settled, its rejection says why.
      if (open) this.failed(resetError(this.address, error));
    };
    this.#bun.connect({
      hostname: this.address,
      port: this.port,
      socket: {
        data: ignore,
        end: () => this.clientEnded(),
        close: (_, error) => this.step === "close" || clientClosed(error),
        error: (_, error) => clientClosed(error),
      },
    }).then((client) => {
      open = true;
      this.connected(client);
    }, (error) => {
      this.failed(
        new StepError("connect", nodeCode(error), this.address, error),
      );
    });
  }
  #acceptedClosed(socket: BunSocket, error?: Error): void {
    if (socket !== this.accepted) {
      // Reset while it waited to be asked for: the client's own close says
      // so if it was the client's peer.
      const queued = this.ready.indexOf(socket);
      if (queued >= 0) this.ready.splice(queued, 1);
      return;
    }
    if (!error && this.#halfClosed) this.acceptedEnded();
    else this.failed(resetError(this.address, error));
  }
  protected closeListener(closed: () => void): void {
    this.#listener!.stop(true);
    closed();
  }
  protected isPeer(accepted: BunSocket, client: BunSocket): boolean {
    return accepted.remotePort === client.localPort &&
      unmapped(accepted.remoteAddress) === unmapped(client.localAddress);
  }
  /**
   * Bun closes an accepted socket at once on end(); shutdown() half-closes
   * it, and its close then means the peer's FIN.
   */
  protected closeWrite(accepted: BunSocket): void {
    this.#halfClosed = true;
    accepted.shutdown();
  }
  protected watchEnds(): void {
    // Its events report each end.
  }
  protected close(connection: BunSocket): void {
    connection.end();
  }
}

/**
 * A Bun.listen listener on an address; accepted sockets queue until asked
 * for. Throws Bun's own error.
 */
function bunListen(
  bun: BunRuntime,
  address: string,
  port: number,
): Listener {
  const queue = new AcceptQueue();
  // Each accepted socket's end-of-stream, by socket.
  const ends = new Map<BunSocket, EndTracker>();
  const bound = bun.listen({
    hostname: address,
    port,
    socket: {
      open(socket): void {
        const end = new EndTracker(address);
        ends.set(socket, end);
        queue.push(
          new EventConnection(socket, address, true, end, BUN_ACCEPTED),
        );
      },
      data: ignore,
      end: (socket) => ends.get(socket)?.ended(),
      close(socket, error): void {
        ends.get(socket)?.closed(error);
        ends.delete(socket);
      },
      error: (socket, error) => ends.get(socket)?.closed(error),
    },
  });
  return {
    address: connectableAddress(bound.hostname, address),
    port: bound.port,
    accept: () => queue.next(),
    close(): void {
      queue.close(() => new StepError("accept", undefined, address));
      bound.stop(true);
    },
  };
}

const BUN_CLIENT: Closer<BunSocket> = {
  closeWrite: (socket) => socket.end(),
  close: (socket) => socket.end(),
};

/**
 * Bun closes an accepted socket at once on end(); shutdown() half-closes it,
 * and its close then means the peer's FIN.
 */
const BUN_ACCEPTED: Closer<BunSocket> = {
  closeWrite(socket, end): void {
    end.halfClosed();
    socket.shutdown();
  },
  close: (socket) => socket.end(),
};

/** How a runtime's event-driven socket is half-closed and closed. */
interface Closer<S> {
  closeWrite(socket: S, end: EndTracker): void;
  close(socket: S): void;
}

/** The addresses of a connected socket, as Node and Bun report them. */
interface SocketEnds {
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}

/**
 * A Connection over an event-driven socket. The end the peer check reads
 * (the client's local one, the accepted side's remote one) is read at once,
 * while the socket is surely open; the other only if asked for, as each
 * costs a system call. `address` stands in for an end that is gone.
 */
class EventConnection<S extends SocketEnds> implements Connection {
  #socket: S;
  #address: string;
  #end: EndTracker;
  #closer: Closer<S>;
  #localAddress: string | undefined;
  #localPort: number | undefined;
  #remoteAddress: string | undefined;
  #remotePort: number | undefined;
  constructor(
    socket: S,
    address: string,
    accepted: boolean,
    end: EndTracker,
    closer: Closer<S>,
  ) {
    this.#socket = socket;
    this.#address = address;
    this.#end = end;
    this.#closer = closer;
    if (accepted) {
      this.#remoteAddress = socket.remoteAddress ?? address;
      this.#remotePort = socket.remotePort ?? 0;
    } else {
      this.#localAddress = socket.localAddress ?? address;
      this.#localPort = socket.localPort ?? 0;
    }
  }
  get localAddress(): string {
    return this.#localAddress ??= this.#socket.localAddress ?? this.#address;
  }
  get localPort(): number {
    return this.#localPort ??= this.#socket.localPort ?? 0;
  }
  get remoteAddress(): string {
    return this.#remoteAddress ??= this.#socket.remoteAddress ?? this.#address;
  }
  get remotePort(): number {
    return this.#remotePort ??= this.#socket.remotePort ?? 0;
  }
  get endOfStream(): Promise<void> {
    return this.#end.endOfStream;
  }
  closeWrite(): void {
    this.#closer.closeWrite(this.#socket, this.#end);
  }
  close(): void {
    this.#closer.close(this.#socket);
  }
}

/** Bun reports its own wildcard binds as the wildcard; connect to the address. */
function connectableAddress(reported: string, requested: string): string {
  return reported === "0.0.0.0" || reported === "::" ? requested : reported;
}

/**
 * The address to listen on. Bun's failed lookups have no code, in Bun.listen
 * and in its node:net alike, so names are looked up here, as Node would.
 */
function listenAddress(hostname: string): Promise<string> {
  return isAddress(hostname) ? Promise.resolve(hostname) : lookup(hostname);
}

/**
 * Whether a host the shared layer passed is an address, not a name: a valid
 * name's last label is never all digits, and an IPv6 address has colons.
 */
function isAddress(hostname: string): boolean {
  return /^[\d.]+$|:/.test(hostname);
}

/** A failed listen; Bun's EMFILE has no code either, so a probe names it. */
async function listenFailure(
  error: unknown,
  hostname: string,
): Promise<StepError> {
  const code = nodeCode(error);
  const exhausted = code ? undefined : await probeDescriptors();
  if (exhausted) return new StepError("listen", "EMFILE", hostname, exhausted);
  return new StepError("listen", code, hostname, error);
}

async function lookup(name: string): Promise<string> {
  const dns = await import("node:dns/promises");
  try {
    return (await dns.lookup(name)).address;
  } catch (error) {
    throw new StepError("listen", lookupCode(error), name, error);
  }
}

async function interfaceAddresses(): Promise<string[]> {
  const { networkInterfaces } = await import("node:os");
  return Object.values(networkInterfaces()).flat()
    .map((info) => info!.address);
}

interface NodeSocket {
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  on(event: string, listener: (error: unknown) => void): unknown;
  once(event: string, listener: (error: unknown) => void): unknown;
  destroyed?: boolean;
  resume(): unknown;
  end(): unknown;
  destroy(): unknown;
}
interface NodeNet {
  createServer(
    options: { allowHalfOpen: boolean },
    listener: (socket: NodeSocket) => void,
  ): {
    on(event: "error", listener: (error: unknown) => void): unknown;
    once(
      event: "error" | "listening",
      listener: (error: unknown) => void,
    ): unknown;
    off(event: "error", listener: (error: unknown) => void): unknown;
    listen(
      options: { host: string; port: number; exclusive: boolean },
      listening?: () => void,
    ): unknown;
    address(): { address: string; port: number } | string | null;
    close(listener?: () => void): unknown;
  };
  connect(
    options: { host: string; port: number; allowHalfOpen: boolean },
  ): NodeSocket;
}

function nodeSockets(net: NodeNet): Sockets {
  return {
    requireNet: ignore,
    interfaceAddresses,
    listen: (hostname, port) =>
      listenAddress(hostname).then((address) =>
        nodeListen(net, hostname, address, port)
      ),
    connect: (address, port, deadline) =>
      nodeConnect(net, address, port, deadline),
    descriptorsExhausted: probeDescriptors,
    quick: (address, taken, holding, listened) =>
      new NodeQuick(net, address, holding).listen(taken, listened),
  };
}

/** A quick claim over node:net's own sockets (Sockets.quick). */
class NodeQuick extends QuickSteps<NodeSocket> {
  #net: NodeNet;
  #server: ReturnType<NodeNet["createServer"]>;
  /** The client from its connect on: closed however it ends. */
  #socket: NodeSocket | undefined;
  constructor(net: NodeNet, address: string, holding: boolean) {
    super(address, probeDescriptors, holding);
    this.#net = net;
    // Half-open allowed: Node would end a socket itself on the peer's FIN.
    this.#server = net.createServer(
      { allowHalfOpen: true },
      (socket) => this.#arrived(socket),
    );
  }
  /** `listened` gets it once it listens; undefined if the listen failed. */
  listen(
    taken: Set<number>,
    listened: (claim: QuickClaim | undefined) => void,
  ): void {
    const server = this.#server;
    server.on("error", (error) => {
      if (this.port === 0) return listened(undefined);
      // After listening, an error is a failed accept (EMFILE): while held,
      // Node goes on accepting, and closing, once descriptors are back.
      if (this.holding) return;
      this.acceptFailed(
        new StepError("accept", nodeCode(error), this.address, error),
      );
    });
    // Exclusive: in a cluster worker, a listener on port 0 would otherwise
    // share the primary's, the same port for every worker, and its close
    // would only ask the primary to close it.
    server.listen({ host: this.address, port: 0, exclusive: true }, () => {
      const { port } = server.address() as { port: number };
      if (taken.has(port)) return server.close(() => listened(undefined));
      taken.add(port);
      this.port = port;
      listened(this);
    });
  }
  protected connect(): void {
    this.start();
    // Half-open allowed: Node would close the socket itself on the FIN, and
    // its descriptor must stay ours until the hand-off closes it.
    const socket = this.#socket = this.#net.connect({
      host: this.address,
      port: this.port,
      allowHalfOpen: true,
    });
    socket.once("connect", () => this.connected(socket));
    this.#watch(socket);
  }
  #arrived(socket: NodeSocket): void {
    if (this.done || this.holding) return void socket.destroy();
    // The peer's address, read (and kept by Node) while surely open.
    void socket.remotePort;
    this.#watch(socket);
    this.arrived(socket);
  }
  /** Reports each end: the peer's FIN, or a reset (a close with none). */
  #watch(socket: NodeSocket): void {
    let ended = false;
    socket.on("end", () => {
      ended = true;
      if (socket === this.#socket) this.clientEnded();
      else if (socket === this.accepted) this.acceptedEnded();
    });
    socket.on("error", (error) => this.#reset(socket, error));
    socket.on("close", () => ended || this.#reset(socket, undefined));
    socket.resume(); // flowing, so that "end" is emitted
  }
  #reset(socket: NodeSocket, error: unknown): void {
    if (socket === this.#socket && this.step === "connect") {
      this.failed(
        new StepError("connect", nodeCode(error), this.address, error),
      );
    } else if (socket === this.#socket || socket === this.accepted) {
      this.failed(resetError(this.address, error));
    }
  }
  protected closeListener(closed: () => void): void {
    this.#socket?.destroy(); // a connect still pending
    // Node (libuv's uv_close; in a cluster worker too, its listener being
    // exclusive) and the node:net of Deno and Bun close the listening socket
    // before close() returns; its callback waits a turn of the event loop
    // more, for the accepted socket's close to be reported (bench/ab.ts:
    // 0.98-0.99).
    this.#server.close();
    closed();
  }
  protected isPeer(accepted: NodeSocket, client: NodeSocket): boolean {
    return accepted.remotePort === client.localPort &&
      unmapped(accepted.remoteAddress ?? "") ===
        unmapped(client.localAddress ?? "");
  }
  protected closeWrite(accepted: NodeSocket): void {
    accepted.end();
  }
  protected watchEnds(_client: NodeSocket, accepted: NodeSocket): void {
    // Reset while it waited to be asked for: its events went unheard.
    if (accepted.destroyed) this.failed(resetError(this.address));
  }
  protected close(connection: NodeSocket): void {
    // destroy() closes gracefully (a FIN) when nothing is left unread.
    connection.destroy();
  }
}

/** A node:net server listening on `address`; accepted sockets queue. */
function nodeListen(
  net: NodeNet,
  hostname: string,
  address: string,
  port: number,
): Promise<Listener> {
  const queue = new AcceptQueue();
  // Half-open allowed: Node would end a socket itself on the peer's FIN.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const peer = socket.remoteAddress!;
    const end = trackEnd(socket, peer);
    queue.push(new EventConnection(socket, peer, true, end, NODE));
  });
  return new Promise((resolve, reject) => {
    function failed(error: unknown): void {
      listenFailure(error, hostname).then(reject);
    }
    server.once("error", failed);
    server.once("listening", () => {
      server.off("error", failed);
      // After listening, an error is a failed accept (EMFILE).
      server.on("error", (error) => {
        queue.fail(
          new StepError("accept", nodeCode(error), hostname, error),
        );
      });
      const bound = server.address() as { address: string; port: number };
      resolve({
        address: connectableAddress(bound.address, address),
        port: bound.port,
        accept: () => queue.next(),
        close(): Promise<void> {
          queue.close(() => new StepError("accept", undefined, hostname));
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
    // Exclusive: in a cluster worker, not the primary's (NodeQuick.listen).
    server.listen({ host: address, port, exclusive: true });
  });
}

function nodeConnect(
  net: NodeNet,
  address: string,
  port: number,
  deadline: ConnectDeadline,
): Promise<Connection> {
  return new Promise((resolve, reject) => {
    // Half-open allowed: Node would close the socket itself on the FIN, and
    // its descriptor must stay ours until the hand-off closes it.
    const socket = net.connect({ host: address, port, allowHalfOpen: true });
    deadline.onExpire(() => socket.destroy());
    const end = trackEnd(socket, address);
    socket.once("error", (error) => {
      deadline.onExpire(undefined);
      reject(new StepError("connect", nodeCode(error), address, error));
    });
    socket.once("connect", () => {
      deadline.onExpire(undefined);
      resolve(new EventConnection(socket, address, false, end, NODE));
    });
  });
}

/** A node:net socket's end-of-stream; it reads (and drops) what arrives. */
function trackEnd(socket: NodeSocket, address: string): EndTracker {
  const end = new EndTracker(address);
  socket.on("end", () => end.ended());
  socket.on("error", (error) => end.closed(error));
  socket.on("close", () => end.closed());
  socket.resume(); // flowing, so that "end" is emitted
  return end;
}

function nodeCode(error: unknown): Code | undefined {
  const errno = errnoOf(error);
  // Deno's node:net reports EADDRNOTAVAIL as EINVAL.
  if (errno === "EINVAL") return "EADDRNOTAVAIL";
  return lookupCode(error) ?? knownCode(error);
}

const NODE: Closer<NodeSocket> = {
  closeWrite: (socket) => socket.end(),
  // destroy() closes gracefully (a FIN) when nothing is left unread.
  close: (socket) => socket.destroy(),
};

// bun build turns `import.meta.main` into a test that is true in Node for
// every module, so that importing a bundle would run the command line: it
// leaves `main` read off an alias alone.
const meta = import.meta;
// Inlined into another entry's bundle, this module shares that entry's
// import.meta, whose main is true: only its own name says it is the entry.
if (meta.main && /\/mod\.[jt]s$/.test(meta.url)) {
  // `deno run -N jsr:@x/port-reserve` runs this module: hand over to the
  // command line, loaded only here so that importing mod.ts never loads it.
  import("./cli.ts").then(({ run }) => run());
}
