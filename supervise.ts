// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * Process supervision for the `port-reserve` command line: runs a command
 * with reserved ports in its environment (exec mode), or starts a server,
 * waits until it is ready, runs its tests and tears both down. Signals are
 * passed on, and nothing either started is left running. `cli.ts` imports
 * this module only when a command is given; it takes plain data (the
 * commands, the ports, the options) and returns an exit status.
 *
 * @example Run a command with a reserved port in PORT
 * ```ts
 * import { reserveMany } from "@x/port-reserve";
 * import { supervise } from "./supervise.ts";
 * import assert from "node:assert/strict";
 *
 * const ports = await reserveMany(1);
 * const status = await supervise(["sh", "-c", 'test "$PORT" = {port}'], {
 *   ports,
 * });
 * assert.equal(status, 0);
 * ```
 *
 * @module
 */

/** A server and the tests to run against it once it is ready. */
export interface ServerTests {
  /** The test command and its arguments. */
  test: string[];
  /**
   * An http:// or https:// URL, `{port}` in it for the first port, that must
   * answer 2xx or 3xx; else the server is ready once the port accepts TCP.
   * @default {undefined}
   */
  ready?: string;
  /** How long to wait for the server to be ready, in ms. @default {60000} */
  timeoutMs?: number;
  /** From SIGTERM to SIGKILL when tearing down, in ms. @default {5000} */
  graceMs?: number;
}

/** The ports a command runs with, and how. */
export interface SuperviseOptions {
  /** The reserved ports: the first goes into `env` and `{port}`, all into PORTS. */
  ports: number[];
  /** The environment variable for the first port. @default {"PORT"} */
  env?: string;
  /** The host the ports were reserved on, where readiness is checked. @default {"127.0.0.1"} */
  hostname?: string;
  /** With tests: the command is a server, run as {@linkcode ServerTests} say. @default {undefined} */
  then?: ServerTests;
}

/**
 * Runs `command` with the ports in its environment: PORT (or `env`) holds the
 * first, PORTS all of them space-separated, and `{port}` in an argument
 * becomes the first. SIGHUP, SIGINT, SIGQUIT and SIGTERM are passed on, once.
 * With `then`, the command is a server: once it is ready the tests run, then
 * both process groups are stopped (SIGTERM, then SIGKILL after the grace).
 *
 * @param command The program and its arguments.
 * @param options The ports, and the tests to run with a server.
 * @returns The command's exit status (128 + n if signal n ended it); with
 * tests, theirs, or 1 (the server's status if it exited before it was ready)
 * when the server was not ready or exited while they ran, said on stderr.
 * @throws {Error} Never for a command that cannot start: that is status 1,
 * said on stderr.
 *
 * @example A server and its tests
 * ```ts
 * import { reserveMany } from "@x/port-reserve";
 * import { supervise } from "./supervise.ts";
 * import assert from "node:assert/strict";
 *
 * const server = ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"];
 * const status = await supervise(server, {
 *   ports: await reserveMany(1),
 *   then: { test: ["sh", "-c", "exit 3"] },
 * });
 * assert.equal(status, 3);
 * ```
 */
export async function supervise(
  command: string[],
  options: SuperviseOptions,
): Promise<number> {
  const { ports, env: name = "PORT", hostname = "127.0.0.1", then } = options;
  const first = String(ports[0]);
  const env = { [name]: first, PORTS: ports.join(" ") };
  const withPort = (arg: string): string => arg.replaceAll("{port}", first);
  const processes = await pickProcesses();
  if (then) {
    const ready = then.ready === undefined ? undefined : withPort(then.ready);
    // Asked before the server starts: Deno would prompt at the first check.
    const denied = readinessDenied(ready, probeHosts(hostname));
    if (denied) {
      fail(denied);
      return 1;
    }
    return await startWaitTest(processes, {
      server: command.map(withPort),
      test: then.test.map(withPort),
      ready,
      probeHosts: probeHosts(hostname),
      port: ports[0],
      env,
      timeoutMs: then.timeoutMs ?? 60_000,
      graceMs: then.graceMs ?? 5000,
    });
  }
  const [program, ...args] = command;
  try {
    return await execute(processes, program, args.map(withPort), env);
  } catch (error) {
    fail(`Cannot run ${program}: ${(error as Error).message}`);
    return 1;
  }
}

/**
 * Why this runtime may not run the commands, before anything is reserved:
 * on Deno, a run permission that is missing; elsewhere, never.
 *
 * @param command The program and its arguments.
 * @param then The tests, if `command` is a server.
 * @returns The one-line reason, naming the flag, or undefined if it may.
 *
 * @example Deno without --allow-run
 * ```ts
 * import { runDenied } from "./supervise.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(runDenied(["true"]), undefined); // under `deno test -A`
 * ```
 */
export function runDenied(
  command: string[],
  then?: ServerTests,
): string | undefined {
  const deno = (globalThis as unknown as Scope).Deno;
  if (!deno) return undefined;
  const granted = (query: { name: "run"; command?: string }): boolean =>
    deno.permissions.querySync(query).state === "granted";
  // Deno.kill, which stops the server's and the tests' process groups,
  // takes the run permission for every command, not one scoped to some.
  if (then && !granted({ name: "run" })) {
    return "Cannot run a server and its tests as Deno may not stop their process groups without the run permission for every command: run with --allow-run, not --allow-run=LIST";
  }
  const program = [command[0], then?.test[0]]
    .find((program) => program && !granted({ name: "run", command: program }));
  if (program === undefined) return undefined;
  return `Cannot run ${program} as Deno has no run permission for it: run with --allow-run or --allow-run=${program}`;
}

/**
 * On Deno, why readiness cannot be checked: a net permission missing for the
 * URL's host, or for a host the TCP check connects to.
 */
function readinessDenied(
  ready: string | undefined,
  hosts: string[],
): string | undefined {
  const deno = (globalThis as unknown as Scope).Deno;
  if (!deno) return undefined;
  const checked = ready === undefined
    ? hosts.map(bracket)
    : [new URL(ready).hostname];
  const host = checked.find((host) =>
    deno.permissions.querySync({ name: "net", host }).state !== "granted"
  );
  if (host === undefined) return undefined;
  return `Cannot check that the server is ready as Deno has no net permission for ${host}: run with -N or --allow-net=${host}`;
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
// Runtimes: what supervision needs of Deno, or of Bun and Node.

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

/** Deno's processes, else Bun's and Node's (both also have `process`). */
function pickProcesses(): Promise<Processes> {
  const scope = globalThis as unknown as Scope;
  // `process` only where there is no Deno: reading it on Deno loads the Node
  // layer, 20 ms at every start (bench/startup.sh).
  if (scope.Deno) return Promise.resolve(denoProcesses(scope.Deno));
  return nodeProcesses(scope.process);
}

interface Scope {
  Deno?: DenoRuntime;
  process: NodeProcess;
}

interface DenoRuntime {
  stdin: { isTerminal(): boolean };
  stdout: { isTerminal(): boolean };
  stderr: { isTerminal(): boolean };
  permissions: {
    querySync(
      descriptor:
        | { name: "run"; command?: string }
        | { name: "read"; path: string }
        | { name: "net"; host: string },
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

interface NodeProcess {
  env: Record<string, string | undefined>;
  kill(pid: number, signal: Signal | "SIGKILL" | 0): void;
  on(signal: Signal, handler: () => void): void;
  off(signal: Signal, handler: () => void): void;
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
      nodeConnects(net, hostname, port, signal),
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

/** Whether node:net's connection to hostname:port is accepted before `signal`. */
function nodeConnects(
  net: typeof import("node:net"),
  hostname: string,
  port: number,
  signal: AbortSignal,
): Promise<boolean> {
  return new Promise((resolve) => {
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
  });
}
