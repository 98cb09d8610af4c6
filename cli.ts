// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * The `port-reserve` command: prints TCP ports reserved as
 * {@linkcode reserveMany} reserves them (the `@x/port-reserve` module
 * documentation says what that protects), or runs a command with them in its
 * environment.
 *
 * ```sh
 * port-reserve [options] [HOST] [PORT] [-- COMMAND [ARGS...]]
 * port-reserve [options] [HOST] [PORT] -- SERVER [ARGS...] --then TEST [ARGS...]
 * ```
 *
 * Install it as a command with Deno (add `--allow-run` to the install for
 * `-- COMMAND`), or run it without installing:
 *
 * ```sh
 * deno install -g -N -n port-reserve jsr:@x/port-reserve/cli
 * port-reserve --count 2
 * deno run -N jsr:@x/port-reserve --count 2
 * ```
 *
 * `port-reserve --help` lists the options.
 *
 * @example Reserve three ports as JSON, from a script
 * ```ts
 * import { main } from "@x/port-reserve/cli";
 *
 * import assert from "node:assert/strict";
 *
 * // Prints {"hostname":"127.0.0.1","ports":[…]} on stdout.
 * assert.equal(await main(["--count", "3", "--json"]), 0);
 * ```
 *
 * @module
 */
import { reserveMany, type ReserveOptions } from "./mod.ts";

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
  HOST                  address to reserve on (default 127.0.0.1); localhost for
                        127.0.0.1 and ::1; 0.0.0.0 for every IPv4 address of the
                        interfaces, :: for every address (Deno: add
                        --allow-sys=networkInterfaces to list them)
  PORT                  ports to prefer, tried in order: 8080, a list 8080,9000,
                        a range 8000-8100, or a mix 3000,8000-8100; the first
                        that can be bound is reserved, else any port (default
                        0: any port)

Options:
  -n, --count N         reserve N distinct ports, one per line (default 1)
      --exclude LIST    never these ports (a list and ranges, as for PORT)
      --no-fallback     fail, naming the ports tried, when none of PORT can be
                        had, rather than reserve any port
      --json            print {"hostname":HOST,"ports":[...]} on one line
      --env NAME        with a command: put the first port in NAME, not PORT
  -h, --help            print this help
  -V, --version         print the version
  -- COMMAND [ARGS...]  run COMMAND with PORT set to the first port and PORTS
                        to all of them, space-separated; {port} in ARGS becomes
                        the first port. SIGHUP, SIGINT, SIGQUIT and SIGTERM are
                        passed on, except that Ctrl-C and the like in a terminal
                        reach COMMAND once, from the terminal; its exit status
                        is ours. On Deno this needs --allow-run.

Start, wait, test, tear down (-- SERVER ... --then TEST ...):
  SERVER starts with PORT, PORTS and {port} as a COMMAND does; once it is ready
  TEST runs with the same; then SERVER, TEST and all they started in their
  process groups are stopped (SIGTERM, then SIGKILL to what is left after the
  grace). The status is TEST's; SERVER's (1 for 0) if it exited before it was
  ready, 1 if it was not ready in time or exited while TEST ran, saying so.
  Each runs in a session of its own, off the terminal: a signal reaches TEST
  once, from here, and a second one kills both at once.
      --ready URL       ready when URL ({port} in it) answers 2xx or 3xx; by
                        default, when HOST:PORT accepts TCP connections
      --timeout SECONDS how long to wait for ready (default 60)
      --grace SECONDS   from SIGTERM to SIGKILL at the end (default 5)
      --separator WORD  the word between SERVER and TEST (default --then), for
                        a SERVER that takes --then as an argument

Exit status: 0 done, 1 the ports or the command could not be had or stdout
could not be written, 2 bad usage; with a command, the command's (128 + N if
signal N ended it).

Examples:
  PORT="$(deno run -N jsr:@x/port-reserve)"
  docker run -p "127.0.0.1:$(deno run -N jsr:@x/port-reserve):5000" registry:2
  deno run -N jsr:@x/port-reserve --count 3 --json
  deno run -N jsr:@x/port-reserve 127.0.0.1 8000-8100 --exclude 8080
  deno run -N --allow-sys=networkInterfaces jsr:@x/port-reserve 0.0.0.0 8080
  deno run -N --allow-run jsr:@x/port-reserve -- python3 -m http.server {port}
  deno run -N --allow-run jsr:@x/port-reserve --ready 'http://127.0.0.1:{port}/health' \\
    -- node server.js --then npx playwright test`;

/**
 * Runs the `port-reserve` command line: reserves ports and prints them on
 * stdout, or runs a command with them in its environment. Errors go to stderr
 * as one line each.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status: 0 done, 1 the ports or the command could not be
 * had or stdout could not be written, 2 bad usage; in exec mode, the command's
 * status.
 * @throws {Error} Never for bad input, a failed reservation or a failed write
 * to stdout, which give a status; only if writing to stderr fails (on Deno).
 *
 * @example Reserve two ports from a range, as JSON
 * ```ts
 * import { main } from "@x/port-reserve/cli";
 * import assert from "node:assert/strict";
 *
 * // Prints {"hostname":"127.0.0.1","ports":[…]} on stdout.
 * assert.equal(await main(["--count", "2", "--json", "127.0.0.1", "20000-20100"]), 0);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const runtime = pickRuntime();
  let invocation;
  try {
    invocation = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    fail(`${error.message}: see port-reserve --help`);
    return 2;
  }
  // Asked before reserving anything, which would be lost.
  if (invocation.kind !== "exec" && await runtime.stdoutClosed()) {
    fail("Cannot write to stdout as it is closed");
    return 1;
  }
  if (invocation.kind === "help") return await print(runtime, HELP);
  if (invocation.kind === "version") return await print(runtime, VERSION);
  // Asked before reserving anything: without it there is nothing to run.
  const denied = invocation.kind === "exec" &&
    ((invocation.then && runtime.groupKillDenied()) ||
      [invocation.command, invocation.then?.test ?? []]
        .map((command) => command[0] && runtime.runDenied(command[0]))
        .find(Boolean));
  if (denied) {
    fail(denied);
    return 1;
  }
  const { count, hostname, options } = invocation;
  let ports: number[];
  try {
    ports = await reserveMany(count, { hostname, ...options });
  } catch (error) {
    fail((error as Error).message);
    return error instanceof RangeError || error instanceof TypeError ? 2 : 1;
  }
  if (invocation.kind === "print") {
    if (invocation.json) {
      return await print(runtime, JSON.stringify({ hostname, ports }));
    }
    return ports.length > 0 ? await print(runtime, ports.join("\n")) : 0;
  }
  return await runCommands(await runtime.processes(), invocation, ports);
}

/** Exec mode, or a server and its tests: the status to exit with. */
async function runCommands(
  processes: Processes,
  invocation: Invocation & { kind: "exec" },
  ports: number[],
): Promise<number> {
  const [program, ...rest] = invocation.command;
  const first = String(ports[0]);
  const env = { [invocation.env]: first, PORTS: ports.join(" ") };
  const withPort = (arg: string): string => arg.replaceAll("{port}", first);
  if (invocation.then) {
    const { test, ready } = invocation.then;
    return await startWaitTest(processes, {
      ...invocation.then,
      server: invocation.command.map(withPort),
      test: test.map(withPort),
      ready: ready === undefined ? undefined : withPort(ready),
      probeHosts: probeHosts(invocation.hostname),
      port: ports[0],
      env,
    });
  }
  try {
    return await execute(processes, program, rest.map(withPort), env);
  } catch (error) {
    fail(`Cannot run ${program}: ${(error as Error).message}`);
    return 1;
  }
}

/**
 * Runs the command line as the process: on the runtime's arguments, exiting
 * with {@linkcode main}'s status. The entry blocks of `cli.ts` and `mod.ts`
 * (`deno run jsr:@x/port-reserve`) call it; so can a script that is a
 * `port-reserve` command of its own.
 *
 * @returns Never: it exits.
 *
 * @example A script of your own that is the command
 * ```ts ignore
 * import { run } from "@x/port-reserve/cli";
 *
 * await run();
 * ```
 */
export async function run(): Promise<never> {
  const runtime = pickRuntime();
  return runtime.exit(await main(runtime.args));
}

// ---------------------------------------------------------------------------
// Parsing: what the arguments ask for, or a UsageError naming what is wrong.

/** What the command line asks for. */
type Invocation =
  | { kind: "help" }
  | { kind: "version" }
  | PortRequest & { kind: "print"; json: boolean }
  | PortRequest & {
    kind: "exec";
    command: string[];
    env: string;
    /** With `--then`: the tests to run once the server is ready. */
    then?: Workflow;
  };

/** Start the server, wait until it is ready, run the tests, tear down. */
interface Workflow {
  test: string[];
  /** An HTTP URL, `{port}` in it, that must answer 2xx or 3xx. */
  ready: string | undefined;
  timeoutMs: number;
  graceMs: number;
}

/** The ports asked for, as reserveMany() takes them. */
interface PortRequest {
  hostname: string;
  count: number;
  options: ReserveOptions;
}

class UsageError extends Error {}

/** The options that take no value: `--json=false` is bad usage, not `--json`. */
const TAKES_NO_VALUE = ["--", "--help", "--version", "--json", "--no-fallback"];

function parse(args: string[]): Invocation {
  const { flags, positional, command } = readFlags(args);
  if (flags["--help"]) return { kind: "help" };
  if (flags["--version"]) return { kind: "version" };
  if (positional.length > 2) {
    throw new UsageError(`Unexpected argument ${positional[2]}`);
  }
  const [hostname = "127.0.0.1", port = "0"] = positional;
  const count = flags["--count"] === undefined
    ? 1
    : integer(flags["--count"] as string, 65535, "--count");
  const env = (flags["--env"] as string | undefined) ?? "PORT";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) {
    throw new UsageError(
      `--env must name an environment variable: current value is ${
        JSON.stringify(env)
      }`,
    );
  }
  if (env === "PORTS") {
    throw new UsageError("--env cannot be PORTS, which holds all the ports");
  }
  const reservation = { hostname, count, options: ports(port, count, flags) };
  if (!command) {
    return { kind: "print", json: flags["--json"] === true, ...reservation };
  }
  if (flags["--json"]) {
    throw new UsageError(
      "--json prints ports and a command uses them: pick one",
    );
  }
  if (count === 0) {
    throw new UsageError(
      "A command needs at least one port: --count must be 1 or more",
    );
  }
  const separator = (flags["--separator"] as string | undefined) ?? "--then";
  if (separator === "") {
    throw new UsageError("--separator must be a non-empty word");
  }
  const split = command.indexOf(separator);
  const then = split < 0
    ? undefined
    : workflow(command.slice(split + 1), flags);
  if (then && split === 0) {
    throw new UsageError(`A server command must come before ${separator}`);
  }
  const waiting = ["--ready", "--timeout", "--grace", "--separator"]
    .find((flag) => flags[flag] !== undefined);
  if (!then && waiting) {
    throw new UsageError(
      `${waiting} is for a server and its tests: -- SERVER [ARGS...] ${separator} TEST [ARGS...]`,
    );
  }
  return {
    kind: "exec",
    command: then ? command.slice(0, split) : command,
    env,
    then,
    ...reservation,
  };
}

function workflow(test: string[], flags: Record<string, unknown>): Workflow {
  if (test.length === 0) {
    throw new UsageError(
      `${flags["--separator"] ?? "--then"} must be followed by a test command`,
    );
  }
  const ready = flags["--ready"] as string | undefined;
  if (ready !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(ready.replaceAll("{port}", "1"));
    } catch {
      // said below
    }
    if (!url || !/^https?:$/.test(url.protocol)) {
      throw new UsageError(
        `--ready must be an http:// or https:// URL, {port} in it for the port: current value is ${
          JSON.stringify(ready)
        }`,
      );
    }
  }
  return {
    test,
    ready,
    timeoutMs: seconds(flags["--timeout"], "--timeout", 60),
    graceMs: seconds(flags["--grace"], "--grace", 5),
  };
}

/** A number of seconds from a flag, as milliseconds. */
function seconds(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback * 1000;
  const text = value as string;
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) > 86400) {
    throw new UsageError(
      `${name} must be a number of seconds, 0-86400: current value is ${
        JSON.stringify(text)
      }`,
    );
  }
  return Number(text) * 1000;
}

/**
 * Splits the arguments into flags (by their long name), positional arguments
 * and the command after `--`.
 */
function readFlags(args: string[]): {
  flags: Record<string, string | true>;
  positional: string[];
  command: string[] | undefined;
} {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  let command: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    // "--count=3", "-n3" and "-n 3" all give the value 3.
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : /^-n./.test(arg)
      ? ["-n", arg.slice(2)]
      : [arg, undefined];
    const name = ALIASES[flag] ?? flag;
    if (inline !== undefined && TAKES_NO_VALUE.includes(name)) {
      throw new UsageError(
        `${flag} takes no value: current value is ${JSON.stringify(inline)}`,
      );
    }
    if (name === "--") {
      command = args.slice(i + 1);
      if (command.length === 0) {
        throw new UsageError("-- must be followed by a command");
      }
      break;
    } else if (TAKES_NO_VALUE.includes(name)) flags[name] = true;
    else if (TAKES_VALUE.includes(name)) {
      if (inline === undefined && i + 1 >= args.length) {
        throw new UsageError(`${flag} needs a value`);
      }
      flags[name] = inline ?? args[++i];
    } else if (flag.startsWith("-") && flag !== "-") {
      throw new UsageError(`Unknown option ${flag}`);
    } else positional.push(arg);
  }
  return { flags, positional, command };
}

const ALIASES: Record<string, string> = {
  "-h": "--help",
  "-V": "--version",
  "-n": "--count",
};
const TAKES_VALUE = [
  "--count",
  "--env",
  "--exclude",
  "--ready",
  "--timeout",
  "--grace",
  "--separator",
];

/** PORT, --exclude and --no-fallback as reserveMany() options. */
function ports(
  port: string,
  count: number,
  flags: Record<string, unknown>,
): ReserveOptions {
  const named = port === "0" ? [] : parsePorts(port, "PORT");
  const exclude = flags["--exclude"] === undefined
    ? []
    : parsePorts(flags["--exclude"] as string, "--exclude");
  const left = named.filter((p) => !exclude.includes(p)).length;
  if (named.length > 0 && left === 0) {
    throw new UsageError(
      `--exclude leaves none of the ports PORT names: ${JSON.stringify(port)}`,
    );
  }
  const fallback = flags["--no-fallback"] !== true;
  if (!fallback && named.length > 0 && count > left) {
    throw new UsageError(
      `--count ${count} asks for more ports than the ${left} PORT names${
        exclude.length > 0 ? " less --exclude" : ""
      }, with --no-fallback`,
    );
  }
  return { port: named.length > 0 ? named : 0, exclude, fallback };
}

/** "8080", "8000-8100", "3000,8000-8100": the ports, in order, once each. */
function parsePorts(text: string, name: string): number[] {
  const ports: number[] = [];
  for (const part of text.split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    const [from, to] = [match?.[1], match?.[2] ?? match?.[1]].map(Number);
    const why = !match
      ? "is not a port or a range"
      : !(from >= 1 && to <= 65535)
      ? "is not in 1-65535"
      : from > to
      ? "runs backwards"
      : undefined;
    if (why) {
      throw new UsageError(
        `${name} must be ports 1-65535 or ranges such as 8000-8100, separated by commas: ${
          JSON.stringify(part)
        } ${why}`,
      );
    }
    for (let port = from; port <= to; port++) ports.push(port);
  }
  return [...new Set(ports)];
}

function integer(text: string, max: number, name: string): number {
  if (!/^\d+$/.test(text) || Number(text) > max) {
    throw new UsageError(
      `${name} must be an integer in 0-${max}: current value is ${
        JSON.stringify(text)
      }`,
    );
  }
  return Number(text);
}

// ---------------------------------------------------------------------------
// Output: results on stdout, errors on stderr.

/** Prints `text` and a newline on stdout: 0, or 1 after an error line. */
async function print(runtime: Runtime, text: string): Promise<number> {
  try {
    await runtime.print(`${text}\n`);
    return 0;
  } catch (error) {
    fail(`Cannot write to stdout: ${(error as Error).message}`);
    return 1;
  }
}

function fail(message: string): void {
  // deno-lint-ignore no-console
  console.error(`port-reserve: ${message}`);
}

// ---------------------------------------------------------------------------
// Exec mode: the command, its status, and the signals passed on to it.

/** The signals passed on to the command. */
const SIGNALS = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM"] as const;
type Signal = typeof SIGNALS[number];

/** A running command; its status is 128 + n if signal n ended it. */
interface Child {
  kill(signal: Signal | "SIGKILL"): unknown;
  status: Promise<number>;
  /** For a process group: whether any of its processes is left. */
  alive?(): boolean;
}

/** Runs the command with stdio inherited and signals passed on; its status. */
async function execute(
  processes: Processes,
  program: string,
  args: string[],
  env: Record<string, string>,
): Promise<number> {
  let child: Child | undefined;
  const handlers = SIGNALS.map((signal) => {
    const handler = (): void => {
      if (fromTerminal(processes, signal)) return; // the command has it too
      try {
        child?.kill(signal);
      } catch {
        // It has just ended.
      }
    };
    return [signal, handler] as const;
  });
  // Listen before spawning: a signal ignored here (as in a script's background
  // job) would otherwise stay ignored in the command, which sh cannot trap.
  for (const [signal, handler] of handlers) processes.listen(signal, handler);
  try {
    child = processes.spawn(program, args, env, false);
    return await child.status;
  } finally {
    for (const [signal, handler] of handlers) {
      processes.unlisten(signal, handler);
    }
  }
}

/**
 * Whether a terminal sent `signal` to our whole process group, the command
 * included, as it sends SIGINT (Ctrl-C) and SIGQUIT (Ctrl-\) to its foreground
 * group: then passing it on would give the command a second one. It is so
 * when our group is the terminal's foreground group, from fields 5 (pgrp) and
 * 8 (tpgid) of /proc/self/stat; where that cannot be read (Deno without -A,
 * not Linux), when stdin, stdout or stderr is a terminal. SIGHUP is always
 * passed on: after a hangup we have no terminal left to tell, and a session
 * leader (as under `ssh -t host port-reserve ...`) is the only one to get it.
 */
function fromTerminal(processes: Processes, signal: Signal): boolean {
  if (signal !== "SIGINT" && signal !== "SIGQUIT") return false;
  const stat = processes.procStat();
  if (stat === undefined) return processes.onTerminal();
  // "pid (comm) state ppid pgrp session tty_nr tpgid ...": comm may hold
  // spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[2] === fields[5];
}

// ---------------------------------------------------------------------------
// Start, wait, test, tear down.

/** How often readiness is checked, in ms. */
const POLL_MS = 50;
/** How long one readiness check may take, in ms. */
const PROBE_MS = 1000;

/**
 * Starts the server, waits until it is ready, runs the tests, and tears both
 * down: the status is the tests'. Each runs in a process group of its own, so
 * that all it started can be stopped, and off the terminal: a signal reaches
 * the tests once, from here. Nothing of either group is left when it returns.
 */
async function startWaitTest(
  processes: Processes,
  plan: Plan,
): Promise<number> {
  const run = new StartWaitTest(processes, plan);
  const handlers = SIGNALS.map((signal) => {
    const handler = (): void => run.signalled(signal);
    return [signal, handler] as const;
  });
  for (const [signal, handler] of handlers) processes.listen(signal, handler);
  try {
    return await run.run();
  } finally {
    await run.tearDown();
    for (const [signal, handler] of handlers) {
      processes.unlisten(signal, handler);
    }
  }
}

/** What a server-and-tests run is given. */
interface Plan {
  server: string[];
  test: string[];
  ready: string | undefined;
  probeHosts: string[];
  port: number;
  env: Record<string, string>;
  timeoutMs: number;
  graceMs: number;
}

/**
 * One server-and-tests run, phase by phase. A signal goes to the tests once
 * they run; the server is stopped by the tear-down's SIGTERM, once, whenever
 * it comes. Tests still running a grace after a signal are killed; a second
 * signal kills them at once, and cuts the tear-down's grace short.
 */
class StartWaitTest {
  #processes: Processes;
  #plan: Plan;
  #children: Child[] = [];
  #test: Child | undefined;
  #signals = 0;
  #interrupt!: (signal: Signal) => void;
  #interrupted = new Promise<Signal>((resolve) => this.#interrupt = resolve);
  #hurry!: () => void;
  #hurried = new Promise<void>((resolve) => this.#hurry = resolve);
  #overdue: ReturnType<typeof setTimeout> | undefined;
  /** Ends the readiness checks, a pending one included. */
  #cancelled = new AbortController();
  constructor(processes: Processes, plan: Plan) {
    this.#processes = processes;
    this.#plan = plan;
  }

  signalled(signal: Signal): void {
    const killTests = (): unknown => this.#test?.kill("SIGKILL");
    if (++this.#signals > 1) {
      this.#hurry();
      killTests();
      return;
    }
    this.#interrupt(signal);
    this.#test?.kill(signal);
    this.#overdue = setTimeout(killTests, this.#plan.graceMs);
  }

  async run(): Promise<number> {
    const server = this.#start(this.#plan.server);
    if (!server) return 1;
    const exited = server.status.then(
      (status) => ({ exited: status }),
      (error: Error) => ({ exited: 1, error }),
    );
    const status = await this.#serverReady(exited);
    if (status !== undefined) return status;
    const test = this.#test = this.#start(this.#plan.test);
    if (!test) return 1;
    const tested = test.status.then(
      (status) => ({ tested: status }),
      (error: Error) => {
        fail(`Cannot run ${this.#plan.test[0]}: ${error.message}`);
        return { tested: 1 };
      },
    );
    // After a signal the server may go first: the tests' status still counts.
    const outcome = await Promise.race([
      tested,
      exited.then<{ tested: number } | { exited: number }>((exit) =>
        this.#signals > 0 ? tested : exit
      ),
    ]);
    if ("tested" in outcome) return outcome.tested;
    fail(
      `The server (${
        this.#plan.server[0]
      }) exited with status ${outcome.exited} while the tests ran: the tests were stopped`,
    );
    return 1;
  }

  /** The tests first, then the server they were talking to. */
  async tearDown(): Promise<void> {
    this.#cancelled.abort();
    for (const child of this.#children.reverse()) {
      await stopGroup(child, this.#plan.graceMs, this.#hurried);
    }
    clearTimeout(this.#overdue);
  }

  /** Undefined once the server is ready, else the status to exit with. */
  async #serverReady(
    exited: Promise<{ exited: number; error?: Error }>,
  ): Promise<number | undefined> {
    const program = this.#plan.server[0];
    const ready = await Promise.race([
      waitReady(this.#processes, this.#plan, this.#cancelled.signal),
      exited,
      this.#interrupted.then((signal) => ({ signal })),
    ]);
    this.#cancelled.abort();
    if ("signal" in ready) return 128 + SIGNAL_NUMBERS[ready.signal];
    if ("exited" in ready) {
      fail(
        ready.error
          ? `Cannot run ${program}: ${ready.error.message}`
          : `Cannot run the tests as the server (${program}) exited with status ${ready.exited} before it was ready`,
      );
      return ready.exited || 1;
    }
    if (!ready.failure) return undefined;
    fail(`Cannot run the tests as ${ready.failure}`);
    return 1;
  }

  #start(command: string[]): Child | undefined {
    const child = startGroup(this.#processes, command, this.#plan.env);
    if (child) this.#children.push(child);
    return child;
  }
}

/** Starts a command in a group of its own; undefined, said, if it cannot. */
function startGroup(
  processes: Processes,
  [program, ...args]: string[],
  env: Record<string, string>,
): Child | undefined {
  try {
    return processes.spawn(program, args, env, true);
  } catch (error) {
    fail(`Cannot run ${program}: ${(error as Error).message}`);
    return undefined;
  }
}

/** Linux's signal numbers, for the 128 + n status. */
const SIGNAL_NUMBERS: Record<Signal, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGTERM: 15,
};

/**
 * Polls until the server is ready: something accepts connections on the
 * port, or the URL answers 2xx or 3xx. Undefined failure when ready.
 */
async function waitReady(
  processes: Processes,
  plan: {
    ready: string | undefined;
    probeHosts: string[];
    port: number;
    timeoutMs: number;
  },
  cancelled: AbortSignal,
): Promise<{ failure: string | undefined }> {
  const end = Date.now() + plan.timeoutMs;
  let last = "";
  while (!cancelled.aborted) {
    const signal = AbortSignal.any([cancelled, AbortSignal.timeout(PROBE_MS)]);
    if (plan.ready === undefined) {
      for (const host of plan.probeHosts) {
        if (await processes.connects(host, plan.port, signal)) {
          return { failure: undefined };
        }
      }
    } else {
      try {
        const response = await fetch(plan.ready, {
          // No idle connection kept: a single-threaded server would serve
          // it, not the tests.
          headers: { connection: "close" },
          redirect: "manual",
          signal,
        });
        await response.body?.cancel();
        if (response.status >= 200 && response.status < 400) {
          return { failure: undefined };
        }
        last = ` (last answer: ${response.status})`;
      } catch (error) {
        last = ` (last error: ${(error as Error).message})`;
      }
    }
    if (Date.now() >= end || cancelled.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const waited = `${plan.timeoutMs / 1000} s`;
  const what = plan.ready === undefined
    ? `nothing accepted connections on ${
      plan.probeHosts.map((host) => `${bracket(host)}:${plan.port}`).join(
        " or ",
      )
    }`
    : `${plan.ready} did not answer with a 2xx or 3xx status${last}`;
  return {
    failure:
      `the server was not ready within ${waited}: ${what}; raise --timeout or check where it listens`,
  };
}

/** The addresses a TCP readiness check connects to for HOST. */
function probeHosts(hostname: string): string[] {
  const host = hostname.replace(/^\[(.*)\]$/, "$1");
  if (host.toLowerCase() === "localhost") return ["127.0.0.1", "::1"];
  if (host === "0.0.0.0") return ["127.0.0.1"];
  if (host === "::") return ["::1", "127.0.0.1"];
  return [host];
}

function bracket(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * SIGTERM to the whole group, then SIGKILL to what is left once the group is
 * empty, the grace has passed, or a second signal hurries it.
 */
async function stopGroup(
  child: Child,
  graceMs: number,
  hurried: Promise<void>,
): Promise<void> {
  child.kill("SIGTERM");
  let hurry = false;
  hurried.then(() => hurry = true);
  const end = Date.now() + graceMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    child.status.catch(() => undefined),
    hurried,
    new Promise((resolve) => timer = setTimeout(resolve, graceMs)),
  ]);
  clearTimeout(timer);
  // The command has ended: what it started gets the rest of the grace.
  while (!hurry && Date.now() < end && child.alive?.()) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  child.kill("SIGKILL");
}

// ---------------------------------------------------------------------------
// Runtimes: what the command line needs of Deno, Bun or Node, chosen once.

/** What the command line needs of its runtime. */
interface Runtime {
  args: string[];
  exit(code: number): never;
  /** Writes to stdout; rejects if it cannot. */
  print(text: string): Promise<void>;
  /** Whether stdout was closed (`>&-`); only Bun can tell. */
  stdoutClosed(): Promise<boolean>;
  /** Why Deno may not run `program`, or undefined if it may. */
  runDenied(program: string): string | undefined;
  /** Why Deno may not signal process groups, or undefined if it may. */
  groupKillDenied(): string | undefined;
  /** What exec mode needs; Bun and Node load its node: modules only then. */
  processes(): Promise<Processes>;
}

/** What exec mode needs of the runtime. */
interface Processes {
  listen(signal: Signal, handler: () => void): void;
  unlisten(signal: Signal, handler: () => void): void;
  /**
   * Starts the command; throws, or its status rejects, if it cannot. With
   * `group`, in a session and process group of its own, whose every process
   * `kill` signals.
   */
  spawn(
    program: string,
    args: string[],
    env: Record<string, string>,
    group: boolean,
  ): Child;
  /** Whether a TCP connection to hostname:port is accepted before `signal`. */
  connects(
    hostname: string,
    port: number,
    signal: AbortSignal,
  ): Promise<boolean>;
  /** /proc/self/stat, or undefined where it cannot be read. */
  procStat(): string | undefined;
  /** Whether stdin, stdout or stderr is a terminal. */
  onTerminal(): boolean;
}

/** Deno, then Bun (both also have `process`), then Node. */
function pickRuntime(): Runtime {
  const scope = globalThis as unknown as Scope;
  // `process` only where there is no Deno: reading it on Deno loads the Node
  // layer, 20 ms at every start (bench/startup.sh).
  if (scope.Deno) return denoRuntime(scope.Deno);
  const { Bun, process } = scope;
  return Bun ? bunRuntime(Bun, process) : nodeRuntime(process);
}

interface Scope {
  Deno?: DenoRuntime;
  Bun?: BunRuntime;
  process: NodeProcess;
}

interface DenoRuntime {
  args: string[];
  exit(code: number): never;
  stdin: { isTerminal(): boolean };
  stdout: { isTerminal(): boolean; writeSync(data: Uint8Array): number };
  stderr: { isTerminal(): boolean };
  permissions: {
    querySync(
      descriptor: { name: "run"; command?: string } | {
        name: "read";
        path: string;
      },
    ): { state: string };
  };
  readTextFileSync(path: string): string;
  Command: new (command: string, options: {
    args: string[];
    env: Record<string, string>;
    stdin: "inherit";
    stdout: "inherit";
    stderr: "inherit";
    detached?: boolean;
  }) => {
    spawn(): {
      pid: number;
      status: Promise<{ code: number }>;
      kill(signal: Signal): void;
    };
  };
  kill(pid: number, signal: Signal | "SIGKILL" | "SIGCONT"): void;
  connect(
    options: { hostname: string; port: number; signal: AbortSignal },
  ): Promise<{ close(): void }>;
  addSignalListener(signal: Signal, handler: () => void): void;
  removeSignalListener(signal: Signal, handler: () => void): void;
}

function denoRuntime(deno: DenoRuntime): Runtime {
  return {
    args: deno.args,
    exit: (code) => deno.exit(code),
    print(text): Promise<void> {
      // Not console.log, which says nothing of a broken pipe.
      const bytes = new TextEncoder().encode(text);
      let written = 0;
      while (written < bytes.length) {
        written += deno.stdout.writeSync(bytes.subarray(written));
      }
      return Promise.resolve();
    },
    // Deno opens /dev/null read-write on a closed fd 1, the same as Python's
    // subprocess.DEVNULL and Node's stdio "ignore" give: it cannot tell.
    stdoutClosed: () => Promise.resolve(false),
    runDenied(program): string | undefined {
      const query = { name: "run", command: program } as const;
      if (deno.permissions.querySync(query).state === "granted") return;
      return `Cannot run ${program} as Deno has no run permission for it: run with --allow-run or --allow-run=${program}`;
    },
    // Deno.kill, which stops the server's and the tests' process groups,
    // takes the run permission for every command, not one scoped to some.
    groupKillDenied(): string | undefined {
      if (deno.permissions.querySync({ name: "run" }).state === "granted") {
        return;
      }
      return "Cannot run a server and its tests as Deno may not stop their process groups without the run permission for every command: run with --allow-run, not --allow-run=LIST";
    },
    processes: () => Promise.resolve(denoProcesses(deno)),
  };
}

function denoProcesses(deno: DenoRuntime): Processes {
  const proc = "/proc/self/stat";
  // Deno must never prompt: granted, it may still not read /proc/self
  // (that takes -A), and then reading throws.
  const readable =
    deno.permissions.querySync({ name: "read", path: proc }).state ===
      "granted";
  function start(
    program: string,
    args: string[],
    env: Record<string, string>,
    detached: boolean,
  ): Child {
    const child = new deno.Command(program, {
      args,
      env,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
      detached, // setsid(): a session and process group of its own
    }).spawn();
    // Deno's code is already 128 + n for a command that signal n ended.
    const status = child.status.then(({ code }) => code);
    if (!detached) {
      return { kill: (signal) => child.kill(signal as Signal), status };
    }
    return {
      kill: (signal) => signalGroup(deno, child.pid, signal),
      status,
      // SIGCONT stands in for signal 0, which Deno.kill does not take.
      alive: () => signalGroup(deno, child.pid, "SIGCONT"),
    };
  }
  return {
    listen: (signal, handler) => deno.addSignalListener(signal, handler),
    unlisten: (signal, handler) => deno.removeSignalListener(signal, handler),
    spawn: start,
    async connects(hostname, port, signal): Promise<boolean> {
      try {
        (await deno.connect({ hostname, port, signal })).close();
        return true;
      } catch {
        return false;
      }
    },
    procStat(): string | undefined {
      try {
        return readable ? deno.readTextFileSync(proc) : undefined;
      } catch {
        return undefined; // not Linux, or not -A
      }
    },
    onTerminal: () =>
      [deno.stdin, deno.stdout, deno.stderr].some((s) => s.isTerminal()),
  };
}

/** Signals every process of a group; one that has ended is no error. */
function signalGroup(
  deno: DenoRuntime,
  pid: number,
  signal: Signal | "SIGKILL" | "SIGCONT",
): boolean {
  try {
    deno.kill(-pid, signal);
    return true;
  } catch {
    return false; // the group has ended
  }
}

interface BunFile {
  text(): Promise<string>;
}
interface BunRuntime {
  stdout: BunFile;
  file(path: string): BunFile;
  write(destination: BunFile, data: string): Promise<number>;
}

function bunRuntime(bun: BunRuntime, process: NodeProcess): Runtime {
  return {
    ...nodeRuntime(process),
    // Not console.log, which says nothing of a failed write.
    async print(text): Promise<void> {
      await bun.write(bun.stdout, text);
    },
    /**
     * Deno, Bun and Node open /dev/null on a closed fd 1 before any script
     * runs, so that writes to it succeed. Bun opens it close-on-exec, which
     * no inherited stdout can be: that tells, on Linux.
     */
    async stdoutClosed(): Promise<boolean> {
      try {
        const fdinfo = await bun.file("/proc/self/fdinfo/1").text();
        // Octal; O_CLOEXEC is 02000000 on x86 and Arm.
        const flags = /^flags:\s*([0-7]+)/m.exec(fdinfo)?.[1] ?? "0";
        return (parseInt(flags, 8) & 0o2000000) !== 0;
      } catch {
        return false; // not Linux
      }
    },
  };
}

interface NodeProcess {
  argv: string[];
  env: Record<string, string | undefined>;
  exit(code: number): never;
  kill(pid: number, signal: Signal | "SIGKILL" | 0): void;
  on(signal: Signal, handler: () => void): void;
  off(signal: Signal, handler: () => void): void;
  stdout: {
    write(text: string, done: (error?: Error | null) => void): unknown;
    once(event: "error", handler: (error: Error) => void): unknown;
    off(event: "error", handler: (error: Error) => void): unknown;
  };
}

function nodeRuntime(process: NodeProcess): Runtime {
  return {
    args: process.argv.slice(2),
    exit: (code) => process.exit(code),
    // Node reports a failed write to its callback, and as an "error" event;
    // on a failure the event follows the callback, and takes the listener.
    print: (text) =>
      new Promise((resolve, reject) => {
        const { stdout } = process;
        stdout.once("error", reject);
        stdout.write(text, (error) => {
          if (error) return reject(error);
          stdout.off("error", reject);
          resolve();
        });
      }),
    stdoutClosed: () => Promise.resolve(false),
    runDenied: () => undefined,
    groupKillDenied: () => undefined,
    processes: () => nodeProcesses(process),
  };
}

/** Bun and Node: their node: modules are loaded only in exec mode. */
async function nodeProcesses(process: NodeProcess): Promise<Processes> {
  const [{ spawn }, { readFileSync }, { constants }, { isatty }, net] =
    await Promise.all([
      import("node:child_process"),
      import("node:fs"),
      import("node:os"),
      import("node:tty"),
      import("node:net"),
    ]);
  function start(
    program: string,
    args: string[],
    env: Record<string, string>,
    detached: boolean,
  ): Child {
    const child = spawn(program, args, {
      env: { ...process.env, ...env },
      stdio: "inherit",
      detached, // setsid(): a session and process group of its own
    });
    const status = new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, signal) => {
        resolve(signal ? 128 + constants.signals[signal] : code ?? 1);
      });
    });
    if (!detached) return { kill: (signal) => child.kill(signal), status };
    function kill(signal: Signal | "SIGKILL" | 0): boolean {
      try {
        process.kill(-child.pid!, signal);
        return true;
      } catch {
        return false; // the group has ended, or never started
      }
    }
    return { kill, status, alive: () => kill(0) };
  }
  return {
    listen: (signal, handler) => process.on(signal, handler),
    unlisten: (signal, handler) => process.off(signal, handler),
    spawn: start,
    connects: (hostname, port, signal) =>
      new Promise((resolve) => {
        const socket = net.connect({ host: hostname, port });
        const abort = (): void => done(false);
        function done(connected: boolean): void {
          signal.removeEventListener("abort", abort);
          socket.destroy();
          resolve(connected);
        }
        if (signal.aborted) return done(false);
        signal.addEventListener("abort", abort);
        socket.once("connect", () => done(true));
        socket.once("error", () => done(false));
      }),
    procStat(): string | undefined {
      try {
        return readFileSync("/proc/self/stat", "utf8");
      } catch {
        return undefined;
      }
    },
    onTerminal: () => [0, 1, 2].some((fd) => isatty(fd)),
  };
}

// bun build turns `import.meta.main` into a test that is true in Node for
// every module, but leaves `main` read off an alias alone.
const meta = import.meta;
// Inlined into another entry's bundle, this module shares that entry's
// import.meta, whose main is true: only its own name says it is the entry.
if (meta.main && /\/cli\.[jt]s$/.test(meta.url)) await run();
