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

const HELP = `port-reserve ${VERSION}: TCP ports that nobody else will get

Prints ports left in TCP TIME_WAIT: for about 60 s on Linux the kernel gives
them to no other process or outgoing connection, while a server that binds
with SO_REUSEADDR (Deno, Bun, Node, Python, nginx) can listen on them at once.

Usage:
  port-reserve [options] [HOST] [PORT] [-- COMMAND [ARGS...]]

Arguments:
  HOST                  address to reserve on (default 127.0.0.1); 0.0.0.0 or ::
                        for all interfaces, localhost for 127.0.0.1 and ::1
  PORT                  preferred port, reserved if it can be bound (default 0: any)

Options:
  -n, --count N         reserve N distinct ports, one per line (default 1)
      --json            print {"hostname":HOST,"ports":[...]} on one line
      --env NAME        with a command: put the first port in NAME, not PORT
  -h, --help            print this help
  -V, --version         print the version
  -- COMMAND [ARGS...]  run COMMAND with PORT set to the first port and PORTS
                        to all of them, space-separated; {port} in ARGS becomes
                        the first port. Signals are passed on; its exit status
                        is ours. On Deno this needs --allow-run.

Exit status: 0 done, 1 the ports or the command could not be had, 2 bad usage;
with a command, the command's.

Examples:
  PORT="$(deno run -N jsr:@x/port-reserve)"
  docker run -p "127.0.0.1:$(deno run -N jsr:@x/port-reserve):5000" registry:2
  deno run -N jsr:@x/port-reserve --count 3 --json
  deno run -N jsr:@x/port-reserve 0.0.0.0 8080
  deno run -N --allow-run jsr:@x/port-reserve -- python3 -m http.server {port}`;

/**
 * Runs the `port-reserve` command line: reserves ports and prints them on
 * stdout, or runs a command with them in its environment. Errors go to stderr
 * as one line each.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status: 0 done, 1 the ports or the command could not be
 * had, 2 bad usage; in exec mode, the command's status.
 * @throws {Error} Never for bad input or a failed reservation, which give a
 * status; only if writing to stdout or stderr fails.
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
  if (options.help || options.version) {
    print(options.help ? HELP : VERSION);
    return 0;
  }
  const { hostname, port, count, json, command } = options;
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
    if (json) print(JSON.stringify({ hostname, ports }));
    else if (ports.length > 0) print(ports.join("\n"));
    return 0;
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
function print(text: string): void {
  // deno-lint-ignore no-console
  console.log(text);
}

function fail(message: string): void {
  // deno-lint-ignore no-console
  console.error(`port-reserve: ${message}`);
}

interface DenoChild {
  status: Promise<{ code: number; signal: string | null }>;
  kill(signal: string): void;
}
interface Entry {
  Deno?: {
    args: string[];
    exit(code: number): never;
    permissions: {
      querySync(descriptor: { name: "run"; command: string }): {
        state: string;
      };
    };
    Command: new (command: string, options: {
      args: string[];
      env: Record<string, string>;
      stdin: "inherit";
      stdout: "inherit";
      stderr: "inherit";
    }) => { spawn(): DenoChild };
    addSignalListener(signal: string, handler: () => unknown): void;
    removeSignalListener(signal: string, handler: () => unknown): void;
  };
  process: {
    argv: string[];
    env: Record<string, string | undefined>;
    exit(code: number): never;
    on(signal: string, handler: () => unknown): void;
    off(signal: string, handler: () => unknown): void;
  };
}

const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;

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
  const { Deno } = globalThis as unknown as Entry;
  // `process` only without Deno: on Deno it loads the Node layer.
  const process = Deno ? undefined : (globalThis as unknown as Entry).process;
  let child: { kill(signal: keyof typeof SIGNALS): unknown } | undefined;
  const names = Object.keys(SIGNALS) as (keyof typeof SIGNALS)[];
  const handlers = names.map((signal) => {
    return [signal, (): unknown => child?.kill(signal)] as const;
  });
  // Listen before spawning: a signal ignored here (as in a script's background
  // job) would otherwise stay ignored in the command, which sh cannot trap.
  for (const [signal, handler] of handlers) {
    if (Deno) Deno.addSignalListener(signal, handler);
    else process!.on(signal, handler);
  }
  try {
    if (Deno) {
      const spawned = new Deno.Command(program, {
        args,
        env,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
      child = spawned;
      const { code, signal } = await spawned.status;
      return signal ? 128 + signalNumber(signal) : code;
    }
    // Bun and Node: loaded only in exec mode.
    const { spawn } = await import("node:child_process");
    const spawned = spawn(program, args, {
      env: { ...process!.env, ...env },
      stdio: "inherit",
    });
    child = spawned;
    return await new Promise<number>((resolve, reject) => {
      spawned.once("error", reject);
      spawned.once("exit", (code, signal) => {
        resolve(signal ? 128 + signalNumber(signal) : code ?? 1);
      });
    });
  } finally {
    for (const [signal, handler] of handlers) {
      if (Deno) Deno.removeSignalListener(signal, handler);
      else process!.off(signal, handler);
    }
  }
}

function signalNumber(signal: string): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGKILL: 9, ...SIGNALS };
  return numbers[signal] ?? 0;
}

if (import.meta.main) {
  // `process` only where there is no Deno: on Deno it loads the Node layer.
  const scope = globalThis as unknown as Entry;
  const code = await main(scope.Deno?.args ?? scope.process.argv.slice(2));
  if (scope.Deno) scope.Deno.exit(code);
  else scope.process.exit(code);
}
