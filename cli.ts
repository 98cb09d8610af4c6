// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * The `port-reserve` command: prints TCP ports left in TIME_WAIT, which the
 * kernel hands to no other process or outgoing connection for about 60 seconds
 * on Linux, or runs a command with them in its environment.
 *
 * ```sh
 * port-reserve [options] [HOST] [PORT] [-- COMMAND [ARGS...]]
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
 * const status = await main(["--count", "3", "--json"]);
 * console.log(status); // 0, after {"hostname":"127.0.0.1","ports":[…]}
 * ```
 *
 * @module
 */
import { reserveMany } from "./mod.ts";

/** The package version, as in deno.json (a test keeps them equal). */
const VERSION = "0.1.0";

const HELP = `port-reserve ${VERSION}: TCP ports the kernel gives to no one else

Prints ports left in TCP TIME_WAIT: for about 60 s on Linux the kernel gives
them to no other process or outgoing connection, while a server that binds
with SO_REUSEADDR (Deno, Bun, Node, Python, nginx) can listen on them at once.

Usage:
  port-reserve [options] [HOST] [PORT] [-- COMMAND [ARGS...]]

Arguments:
  HOST                  address to reserve on (default 127.0.0.1); localhost for
                        127.0.0.1 and ::1; 0.0.0.0 for every IPv4 address of the
                        interfaces, :: for every address (Deno: add
                        --allow-sys=networkInterfaces to list them)
  PORT                  preferred port, reserved if it can be bound (default 0: any)

Options:
  -n, --count N         reserve N distinct ports, one per line (default 1)
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

Exit status: 0 done, 1 the ports or the command could not be had or stdout
could not be written, 2 bad usage; with a command, the command's (128 + N if
signal N ended it).

Examples:
  PORT="$(deno run -N jsr:@x/port-reserve)"
  docker run -p "127.0.0.1:$(deno run -N jsr:@x/port-reserve):5000" registry:2
  deno run -N jsr:@x/port-reserve --count 3 --json
  deno run -N --allow-sys=networkInterfaces jsr:@x/port-reserve 0.0.0.0 8080
  deno run -N --allow-run jsr:@x/port-reserve -- python3 -m http.server {port}`;

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
 * @example Print one reserved port
 * ```ts
 * import { main } from "@x/port-reserve/cli";
 *
 * const status = await main([]);
 * console.log(status); // 0, after the port on a line of its own
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    fail(`${error.message}: see port-reserve --help`);
    return 2;
  }
  const { hostname, port, count, json, command, help, version } = options;
  // Asked before reserving anything, which would be lost.
  if ((help || version || !command) && await stdoutClosed()) {
    fail("Cannot write to stdout as it is closed");
    return 1;
  }
  if (help || version) return await print(help ? HELP : VERSION);
  // Asked before reserving anything: without it there is nothing to run.
  const denied = command && runDenied(command[0]);
  if (denied) {
    fail(denied);
    return 1;
  }
  let ports: number[];
  try {
    ports = await reserveMany(count, { hostname, port });
  } catch (error) {
    fail((error as Error).message);
    return error instanceof RangeError || error instanceof TypeError ? 2 : 1;
  }
  if (!command) {
    if (json) return await print(JSON.stringify({ hostname, ports }));
    return ports.length > 0 ? await print(ports.join("\n")) : 0;
  }
  const [program, ...rest] = command;
  const first = String(ports[0]);
  const env = { [options.env]: first, PORTS: ports.join(" ") };
  try {
    return await execute(
      program,
      rest.map((arg) => arg.replaceAll("{port}", first)),
      env,
    );
  } catch (error) {
    fail(`Cannot run ${program}: ${(error as Error).message}`);
    return 1;
  }
}

// ---------------------------------------------------------------------------

interface Options {
  hostname: string;
  port: number;
  count: number;
  json: boolean;
  env: string;
  command: string[] | undefined;
  help: boolean;
  version: boolean;
}

class UsageError extends Error {}

/** The options that take no value: `--json=false` is bad usage, not `--json`. */
const TAKES_NO_VALUE = ["--", "--help", "--version", "--json"];

function parse(args: string[]): Options {
  const options: Options = {
    hostname: "127.0.0.1",
    port: 0,
    count: 1,
    json: false,
    env: "PORT",
    command: undefined,
    help: false,
    version: false,
  };
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    // "--count=3", "-n3" and "-n 3" all give the value 3.
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : /^-n./.test(arg)
      ? ["-n", arg.slice(2)]
      : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      if (i + 1 >= args.length) throw new UsageError(`${flag} needs a value`);
      return args[++i];
    };
    if (inline !== undefined && TAKES_NO_VALUE.includes(flag)) {
      throw new UsageError(
        `${flag} takes no value: current value is ${JSON.stringify(inline)}`,
      );
    }
    if (flag === "--") {
      options.command = args.slice(i + 1);
      if (options.command.length === 0) {
        throw new UsageError("-- must be followed by a command");
      }
      break;
    } else if (flag === "-h" || flag === "--help") options.help = true;
    else if (flag === "-V" || flag === "--version") options.version = true;
    else if (flag === "--json") options.json = true;
    else if (flag === "-n" || flag === "--count") {
      options.count = integer(value(), 65535, "--count");
    } else if (flag === "--env") {
      options.env = value();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.env)) {
        throw new UsageError(
          `--env must name an environment variable: current value is ${
            JSON.stringify(options.env)
          }`,
        );
      }
      if (options.env === "PORTS") {
        throw new UsageError(
          "--env cannot be PORTS, which holds all the ports",
        );
      }
    } else if (flag.startsWith("-") && flag !== "-") {
      throw new UsageError(`Unknown option ${flag}`);
    } else positional.push(arg);
  }
  if (options.help || options.version) return options;
  if (positional.length > 2) {
    throw new UsageError(`Unexpected argument ${positional[2]}`);
  }
  if (positional[0] !== undefined) options.hostname = positional[0];
  if (positional[1] !== undefined) {
    options.port = integer(positional[1], 65535, "PORT");
  }
  if (options.command && options.json) {
    throw new UsageError(
      "--json prints ports and a command uses them: pick one",
    );
  }
  if (options.command && options.count === 0) {
    throw new UsageError(
      "A command needs at least one port: --count must be 1 or more",
    );
  }
  return options;
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

// The command line's only output: results on stdout, errors on stderr.

/** Prints `text` and a newline on stdout: 0, or 1 after an error line. */
async function print(text: string): Promise<number> {
  const { Deno, Bun } = globalThis as unknown as Entry;
  try {
    // Not console.log, which says nothing of a failed write on Bun and Node,
    // nor of a broken pipe on Deno.
    if (Deno) {
      const bytes = new TextEncoder().encode(`${text}\n`);
      let written = 0;
      while (written < bytes.length) {
        written += Deno.stdout.writeSync(bytes.subarray(written));
      }
    } else if (Bun) await Bun.write(Bun.stdout, `${text}\n`);
    else await writeNode((globalThis as unknown as Entry).process, text);
    return 0;
  } catch (error) {
    fail(`Cannot write to stdout: ${(error as Error).message}`);
    return 1;
  }
}

/** Node reports a failed write to its callback, and as an "error" event. */
function writeNode(process: NodeProcess, text: string): Promise<void> {
  const { stdout } = process;
  return new Promise((resolve, reject) => {
    // On a failure the event follows the callback, and takes the listener.
    stdout.once("error", reject);
    stdout.write(`${text}\n`, (error) => {
      if (error) return reject(error);
      stdout.off("error", reject);
      resolve();
    });
  });
}

function fail(message: string): void {
  // deno-lint-ignore no-console
  console.error(`port-reserve: ${message}`);
}

/**
 * Whether stdout was closed (`>&-`), on Bun. Deno, Bun and Node open /dev/null
 * on a closed fd 1 before any script runs, so that writes to it succeed. Bun
 * opens it close-on-exec, which no inherited stdout can be: that tells, on
 * Linux. Deno's is read-write /dev/null, the same as Python's
 * subprocess.DEVNULL and Node's stdio "ignore" give: Deno cannot tell.
 */
async function stdoutClosed(): Promise<boolean> {
  const { Bun } = globalThis as unknown as Entry;
  if (!Bun) return false;
  try {
    const fdinfo = await Bun.file("/proc/self/fdinfo/1").text();
    // Octal; O_CLOEXEC is 02000000 on x86 and Arm.
    const flags = parseInt(/^flags:\s*([0-7]+)/m.exec(fdinfo)?.[1] ?? "0", 8);
    return (flags & 0o2000000) !== 0;
  } catch {
    return false; // not Linux
  }
}

/**
 * Whether Deno may read `path` without asking: it must never prompt. Granted,
 * it may still not read /proc/self: that takes -A, and then reading throws.
 */
function mayRead(deno: DenoRuntime, path: string): boolean {
  return deno.permissions.querySync({ name: "read", path }).state === "granted";
}

/** The signals passed on to the command. */
const SIGNALS = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM"] as const;
type Signal = typeof SIGNALS[number];

interface BunFile {
  text(): Promise<string>;
}
interface NodeProcess {
  argv: string[];
  env: Record<string, string | undefined>;
  exit(code: number): never;
  on(signal: Signal, handler: () => void): void;
  off(signal: Signal, handler: () => void): void;
  stdout: {
    write(text: string, done: (error?: Error | null) => void): unknown;
    once(event: "error", handler: (error: Error) => void): unknown;
    off(event: "error", handler: (error: Error) => void): unknown;
  };
}
interface DenoRuntime {
  args: string[];
  exit(code: number): never;
  stdin: { isTerminal(): boolean };
  stdout: { isTerminal(): boolean; writeSync(data: Uint8Array): number };
  stderr: { isTerminal(): boolean };
  permissions: {
    querySync(
      descriptor: { name: "run"; command: string } | {
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
  }) => {
    spawn(): {
      status: Promise<{ code: number }>;
      kill(signal: Signal): void;
    };
  };
  addSignalListener(signal: Signal, handler: () => void): void;
  removeSignalListener(signal: Signal, handler: () => void): void;
}
interface Entry {
  Deno?: DenoRuntime;
  Bun?: {
    stdout: BunFile;
    file(path: string): BunFile;
    write(destination: BunFile, data: string): Promise<number>;
  };
  process: NodeProcess;
}

/** A running command; its status is 128 + n if signal n ended it. */
interface Child {
  kill(signal: Signal): unknown;
  status: Promise<number>;
}

/** What exec mode needs of the runtime, chosen once. */
interface Host {
  listen(signal: Signal, handler: () => void): void;
  unlisten(signal: Signal, handler: () => void): void;
  /** Starts the command; throws, or its status rejects, if it cannot. */
  spawn(program: string, args: string[], env: Record<string, string>): Child;
  /** /proc/self/stat, or undefined where it cannot be read. */
  procStat(): string | undefined;
  /** Whether stdin, stdout or stderr is a terminal. */
  onTerminal(): boolean;
}

/** Why Deno may not run `program`, or undefined if it may (or not Deno). */
function runDenied(program: string): string | undefined {
  const { Deno } = globalThis as unknown as Entry;
  if (!Deno) return undefined;
  const query = { name: "run", command: program } as const;
  if (Deno.permissions.querySync(query).state === "granted") return undefined;
  return `Cannot run ${program} as Deno has no run permission for it: run with --allow-run or --allow-run=${program}`;
}

/** Runs the command with stdio inherited and signals passed on; its status. */
async function execute(
  program: string,
  args: string[],
  env: Record<string, string>,
): Promise<number> {
  const scope = globalThis as unknown as Entry;
  // `process` only without Deno: on Deno it loads the Node layer.
  const host = scope.Deno
    ? denoHost(scope.Deno)
    : await nodeHost(scope.process);
  let child: Child | undefined;
  const handlers = SIGNALS.map((signal) => {
    const handler = (): void => {
      if (fromTerminal(host, signal)) return; // the command has it too
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
  for (const [signal, handler] of handlers) host.listen(signal, handler);
  try {
    child = host.spawn(program, args, env);
    return await child.status;
  } finally {
    for (const [signal, handler] of handlers) host.unlisten(signal, handler);
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
function fromTerminal(host: Host, signal: Signal): boolean {
  if (signal !== "SIGINT" && signal !== "SIGQUIT") return false;
  const stat = host.procStat();
  if (stat === undefined) return host.onTerminal();
  // "pid (comm) state ppid pgrp session tty_nr tpgid ...": comm may hold
  // spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[2] === fields[5];
}

function denoHost(deno: DenoRuntime): Host {
  const proc = "/proc/self/stat";
  const readable = mayRead(deno, proc);
  return {
    listen: (signal, handler) => deno.addSignalListener(signal, handler),
    unlisten: (signal, handler) => deno.removeSignalListener(signal, handler),
    spawn(program, args, env): Child {
      const child = new deno.Command(program, {
        args,
        env,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
      // Deno's code is already 128 + n for a command that signal n ended.
      const status = child.status.then(({ code }) => code);
      return { kill: (signal) => child.kill(signal), status };
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

/** Bun and Node: their node: modules are loaded only in exec mode. */
async function nodeHost(process: NodeProcess): Promise<Host> {
  const [{ spawn }, { readFileSync }, { constants }, { isatty }] = await Promise
    .all([
      import("node:child_process"),
      import("node:fs"),
      import("node:os"),
      import("node:tty"),
    ]);
  return {
    listen: (signal, handler) => process.on(signal, handler),
    unlisten: (signal, handler) => process.off(signal, handler),
    spawn(program, args, env): Child {
      const child = spawn(program, args, {
        env: { ...process.env, ...env },
        stdio: "inherit",
      });
      const status = new Promise<number>((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code, signal) => {
          resolve(signal ? 128 + constants.signals[signal] : code ?? 1);
        });
      });
      return { kill: (signal) => child.kill(signal), status };
    },
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
if (meta.main && /\/cli\.[jt]s$/.test(meta.url)) {
  // `process` only where there is no Deno: on Deno it loads the Node layer.
  const scope = globalThis as unknown as Entry;
  const code = await main(scope.Deno?.args ?? scope.process.argv.slice(2));
  if (scope.Deno) scope.Deno.exit(code);
  else scope.process.exit(code);
}
