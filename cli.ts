// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * The `port-reserve` command: prints ports reserved as {@linkcode reserveMany}
 * reserves them, or runs a command with them (`supervise.ts`, loaded only
 * then). `deno install -g -N -n port-reserve jsr:@x/port-reserve/cli` installs
 * it (with `--allow-run` for commands); `port-reserve --help` says the rest.
 *
 * @example Reserve three ports as JSON, from a script
 * ```ts
 * import { main } from "@x/port-reserve/cli";
 * import assert from "node:assert/strict";
 *
 * // Prints {"hostname":"127.0.0.1","ports":[…]} on stdout.
 * assert.equal(await main(["--count", "3", "--json"]), 0);
 * ```
 *
 * @module
 */
import { reserveMany, type ReserveOptions } from "./mod.ts";
import { pickRuntime, readArgs } from "./_cli_util.ts";
import type { ServerTests } from "./supervise.ts";

/** The package version, as in deno.json (a test keeps them equal). */
const VERSION = "0.1.0";

const HELP = `port-reserve ${VERSION}: TCP ports the kernel gives to no one else

Prints ports left in TCP TIME_WAIT: for about 60 s on Linux the kernel gives
them to no other process or outgoing connection, while a server that binds
with SO_REUSEADDR (Deno, Bun, Node, Python, nginx) can listen on them at once.

Usage:
  port-reserve [options] [HOST] [PORT] [-- COMMAND [ARGS...]]
  port-reserve [options] [HOST] [PORT] -- SERVER [ARGS...] --then TEST [ARGS...]

Arguments:
  HOST   address to reserve on (default 127.0.0.1); localhost: 127.0.0.1 and
         ::1; 0.0.0.0 or ::, every IPv4 or every address of the interfaces
         (Deno: add --allow-sys=networkInterfaces to list them)
  PORT   ports to prefer, in order: 8080, 8080,9000, 8000-8100 or
         3000,8000-8100; the first that can be bound, else any (default 0).
         Not exclusive: another program naming the port can still take it

Options:
  -n, --count N         reserve N distinct ports, one per line (default 1)
      --exclude LIST    never these ports (a list and ranges, as for PORT)
      --no-fallback     fail, naming the ports tried, if none of PORT can be had
      --json            print {"hostname":HOST,"ports":[...]} on one line
      --env NAME        with a command: put the first port in NAME, not PORT
  -h, --help            print this help (-V, --version: the version)
  -- COMMAND [ARGS...]  run COMMAND with PORT (the first port), PORTS (all,
                        space-separated) and {port} in ARGS; its status is ours.
                        SIGHUP, SIGINT, SIGQUIT and SIGTERM are passed on once
                        (Ctrl-C reaches it from the terminal). Deno: --allow-run

Start, wait, test, tear down (-- SERVER ... --then TEST ...):
  SERVER starts as a COMMAND does, TEST once it is ready; then both process
  groups get SIGTERM, and SIGKILL after the grace. The status is TEST's;
  SERVER's (1 for 0) if it exited before it was ready; 1 if it was not ready in
  time or exited while TEST ran. A signal reaches TEST once; two kill both.
      --ready URL       ready when URL ({port} in it) answers 2xx or 3xx, not
                        when HOST:PORT accepts TCP connections
      --timeout SECONDS how long to wait for ready (default 60)
      --grace SECONDS   from SIGTERM to SIGKILL at the end (default 5)
      --separator WORD  the word between SERVER and TEST (default --then)

Exit status: 0 done, 1 the ports or the command could not be had or stdout
could not be written, 2 bad usage; with a command, its own (128 + N for signal N).

Examples:
  docker run -p "127.0.0.1:$(deno run -N jsr:@x/port-reserve):5000" registry:2
  deno run -N jsr:@x/port-reserve --count 3 --json
  deno run -N jsr:@x/port-reserve 127.0.0.1 8000-8100 --exclude 8080
  deno run -N --allow-run jsr:@x/port-reserve localhost -- vite --port {port} --strictPort
  deno run -N --allow-run jsr:@x/port-reserve --ready 'http://127.0.0.1:{port}/' \\
    -- node server.js --then npx playwright test

Documentation: https://jsr.io/@x/port-reserve (docs/cli.md: exec mode, --then)`;

/**
 * Runs the `port-reserve` command line: prints reserved ports on stdout, or
 * runs a command with them. Errors go to stderr, one line each.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status, as `--help` says.
 * @throws {Error} Never for bad input, a failed reservation or a failed write
 * to stdout, which give a status; only if writing to stderr fails (on Deno).
 *
 * @example Reserve two ports from a range, as JSON
 * ```ts
 * import { main } from "@x/port-reserve/cli";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["-n", "2", "--json", "127.0.0.1", "20000-20100"]), 0);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const runtime = pickRuntime();
  let invocation;
  try {
    invocation = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return fail(`${error.message}: see port-reserve --help`, 2);
  }
  // Asked before reserving anything, which would be lost.
  if (invocation.kind !== "exec" && await runtime.stdoutClosed()) {
    return fail("Cannot write to stdout as it is closed", 1);
  }
  if (invocation.kind === "help") return await print(HELP);
  if (invocation.kind === "version") return await print(VERSION);
  const { count, hostname, options } = invocation;
  // Loaded only to run a command; asked before reserving anything.
  const exec = invocation.kind === "exec" ? invocation : undefined;
  const supervision = exec && await import("./supervise.ts");
  const denied = exec && supervision!.runDenied(exec.command, exec.then);
  if (denied) return fail(denied, 1);
  let ports: number[];
  try {
    // Only what differs from the defaults: reserveMany() takes no options as
    // they are, validating nothing (start-up, bench/startup.sh).
    const host = hostname === "127.0.0.1" ? {} : { hostname };
    ports = await reserveMany(count, { ...host, ...options });
  } catch (error) {
    const usage = error instanceof RangeError || error instanceof TypeError;
    return fail((error as Error).message, usage ? 2 : 1);
  }
  if (exec) {
    const { command, env, then } = exec;
    const options = { ports, env, hostname, then };
    return await supervision!.supervise(command, options);
  }
  if (invocation.kind === "print" && invocation.json) {
    return await print(JSON.stringify({ hostname, ports }));
  }
  return ports.length > 0 ? await print(ports.join("\n")) : 0;

  /** Prints `text` and a newline on stdout: 0, or 1 after an error line. */
  async function print(text: string): Promise<number> {
    try {
      await runtime.print(`${text}\n`);
      return 0;
    } catch (error) {
      return fail(`Cannot write to stdout: ${(error as Error).message}`, 1);
    }
  }
}

/**
 * Runs {@linkcode main} on the runtime's arguments and exits with its status.
 *
 * @returns Never: it exits.
 *
 * @example A script of your own that is the command
 * ```ts ignore
 * import { run } from "@x/port-reserve/cli";
 * await run();
 * ```
 */
export async function run(): Promise<never> {
  const runtime = pickRuntime();
  return runtime.exit(await main(runtime.args));
}

// ---------------------------------------------------------------------------
// Parsing: what the arguments ask for, or a UsageError naming what is wrong.

/** What the command line asks for: help, the version, or ports for a use. */
type Invocation = { kind: "help" } | { kind: "version" } | Print | Exec;
type Print = Ports & { kind: "print"; json: boolean };
type Exec = Ports & { kind: "exec"; command: string[]; env: string } & {
  then?: ServerTests;
};
type Ports = { hostname: string; count: number; options: ReserveOptions };
/** The options given, by long name: each one's value, "" if it takes none. */
type Flags = Partial<Record<string, string>>;

class UsageError extends Error {}

const WEB_URL = "an http:// or https:// URL";
/** The options of a server and its tests. */
const WAITING = ["--ready", "--timeout", "--grace", "--separator"];
/** The options, by long name: those that take no value, those that take one. */
const OPTIONS = {
  switches: ["--", "--help", "--version", "--json", "--no-fallback"],
  valued: ["--count", "--env", "--exclude", ...WAITING],
  aliases: { "-h": "--help", "-V": "--version", "-n": "--count" },
  /** "-n3" is "-n 3". */
  attached: ["-n"],
  fail: usage,
};

function parse(args: string[]): Invocation {
  const { flags, positional, command } = readArgs(args, OPTIONS);
  if (flags["--help"] !== undefined) return { kind: "help" };
  if (flags["--version"] !== undefined) return { kind: "version" };
  if (positional.length > 2) usage(`Unexpected argument ${positional[2]}`);
  const [hostname = "127.0.0.1", port = "0"] = positional;
  const count = integer(flags["--count"] ?? "1", 65535, "--count");
  const env = flags["--env"] ?? "PORT";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) {
    bad("--env must name an environment variable", env);
  }
  if (env === "PORTS") {
    usage("--env cannot be PORTS, which holds all the ports");
  }
  const request = { hostname, count, options: ports(port, count, flags) };
  const json = flags["--json"] !== undefined;
  if (!command) return { kind: "print", json, ...request };
  if (json) usage("--json prints ports and a command uses them: pick one");
  if (count === 0) {
    usage("A command needs at least one port: --count must be 1 or more");
  }
  const separator = flags["--separator"] ?? "--then";
  if (separator === "") usage("--separator must be a non-empty word");
  const split = command.indexOf(separator);
  const then = split < 0
    ? undefined
    : serverTests(command.slice(split + 1), separator, flags);
  if (split === 0) usage(`A server command must come before ${separator}`);
  const waiting = WAITING.find((flag) => flags[flag] !== undefined);
  if (!then && waiting) {
    usage(
      `${waiting} is for a server and its tests: -- SERVER [ARGS...] ${separator} TEST [ARGS...]`,
    );
  }
  const server = then ? command.slice(0, split) : command;
  return { kind: "exec", command: server, env, then, ...request };
}

/** The tests after the separator, and the options that say how to run them. */
function serverTests(
  test: string[],
  separator: string,
  flags: Flags,
): ServerTests {
  if (!test.length) usage(`${separator} must be followed by a test command`);
  const ready = flags["--ready"];
  const url = ready?.replaceAll("{port}", "1") ?? "http://a";
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    bad(`--ready must be ${WEB_URL}, {port} in it for the port`, ready!);
  }
  const timeoutMs = seconds(flags["--timeout"] ?? "60", "--timeout");
  const graceMs = seconds(flags["--grace"] ?? "5", "--grace");
  return { test, ready, timeoutMs, graceMs };
}

/** A number of seconds from an option, as milliseconds. */
function seconds(text: string, name: string): number {
  if (/^\d+(\.\d+)?$/.test(text) && Number(text) <= 86400) {
    return Number(text) * 1000;
  }
  bad(`${name} must be a number of seconds, 0-86400`, text);
}

function integer(text: string, max: number, name: string): number {
  if (/^\d+$/.test(text) && Number(text) <= max) return Number(text);
  bad(`${name} must be an integer in 0-${max}`, text);
}

/** PORT, --exclude and --no-fallback as reserveMany() options, if given. */
function ports(port: string, count: number, flags: Flags): ReserveOptions {
  const named = parsePorts(port === "0" ? undefined : port, "PORT");
  const exclude = parsePorts(flags["--exclude"], "--exclude");
  const left = named.filter((p) => !exclude.includes(p)).length;
  if (named.length > 0 && left === 0) {
    usage(
      `--exclude leaves none of the ports PORT names: ${JSON.stringify(port)}`,
    );
  }
  const fallback = flags["--no-fallback"] === undefined;
  if (!fallback && named.length > 0 && count > left) {
    const less = exclude.length > 0 ? " less --exclude" : "";
    usage(
      `--count ${count} asks for more ports than the ${left} PORT names${less}, with --no-fallback`,
    );
  }
  return {
    ...named.length > 0 ? { port: named } : {},
    ...exclude.length > 0 ? { exclude } : {},
    ...fallback ? {} : { fallback },
  };
}

/** "8080", "8000-8100", "3000,8000-8100": the ports, in order, once each. */
function parsePorts(text: string | undefined, name: string): number[] {
  const ports = new Set<number>();
  for (const part of text?.split(",") ?? []) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    const [from, to] = [match?.[1], match?.[2] ?? match?.[1]].map(Number);
    const why = !match
      ? "is not a port or a range"
      : !(from >= 1 && to <= 65535)
      ? "is not in 1-65535"
      : from > to
      ? "runs backwards"
      : undefined;
    const what =
      "ports 1-65535 or ranges such as 8000-8100, separated by commas";
    if (why) usage(`${name} must be ${what}: ${JSON.stringify(part)} ${why}`);
    for (let port = from; port <= to; port++) ports.add(port);
  }
  return [...ports];
}

function usage(message: string): never {
  throw new UsageError(message);
}

/** Bad usage: "`what`: current value is `value`", quoted. */
function bad(what: string, value: string): never {
  usage(`${what}: current value is ${JSON.stringify(value)}`);
}

/** Says `message` on stderr, as one line, and returns `status`. */
function fail(message: string, status: number): number {
  // deno-lint-ignore no-console
  console.error(`port-reserve: ${message}`);
  return status;
}

// Read off an alias, as bun build rewrites `import.meta.main`; and named, as a
// bundle that inlines this module shares its entry's import.meta.
const meta = import.meta;
if (meta.main && /\/cli\.[jt]s$/.test(meta.url)) await run();
