// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * The mechanics under the command line (`cli.ts`), not what it is: the
 * runtime's arguments, stdout and exit on Deno, Bun or Node, and a tokenizer
 * of arguments, as `@std/cli`'s `parseArgs` would be if a module of no
 * dependencies could import it. Not part of the API.
 *
 * @example Split arguments into options, positional arguments and a command
 * ```ts
 * import { readArgs } from "./_cli_util.ts";
 * import assert from "node:assert/strict";
 *
 * const table = { switches: ["--", "--json"], valued: ["--count"], aliases: { "-n": "--count" } };
 * assert.deepEqual(readArgs(["-n", "2", "--json", "x", "--", "ls"], table), {
 *   flags: { "--count": "2", "--json": "" },
 *   positional: ["x"],
 *   command: ["ls"],
 * });
 * ```
 *
 * @module
 */

/** The command line's arguments, stdout and exit on this runtime. */
export interface Runtime {
  /** The arguments, without the runtime's and the script's names. */
  args: string[];
  /** Ends the process with `code`. */
  exit(code: number): never;
  /** Writes to stdout; rejects if it cannot. */
  print(text: string): Promise<void>;
  /** Whether stdout was closed (`>&-`); only Bun can tell. */
  stdoutClosed(): Promise<boolean>;
}

/**
 * The runtime's arguments, stdout and exit: Deno's, then Bun's (both also
 * have `process`), then Node's.
 *
 * @returns The runtime's adapter.
 *
 * @example Print a line
 * ```ts
 * import { pickRuntime } from "./_cli_util.ts";
 *
 * await pickRuntime().print("hello\n");
 * ```
 */
export function pickRuntime(): Runtime {
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
  stdout: { writeSync(data: Uint8Array): number };
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
  };
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
  exit(code: number): never;
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
  };
}

/** The options a command line has, for {@linkcode readArgs}. */
export interface ArgsTable {
  /** The options that take no value, by long name; `--` ends the options. */
  switches: string[];
  /** The options that take a value, by long name. */
  valued: string[];
  /** Short names, to long ones. */
  aliases: Record<string, string>;
  /** Short names whose value may follow attached: `-n3`. @default {[]} */
  attached?: string[];
  /** Throws for bad usage. @default {(message) => { throw new TypeError(message) }} */
  fail?: (message: string) => never;
}

/** What {@linkcode readArgs} found. */
export interface Args {
  /** The options given, by long name: each one's value, "" if it takes none. */
  flags: Partial<Record<string, string>>;
  /** The arguments that are no option. */
  positional: string[];
  /** What follows `--`, if it came. */
  command?: string[];
}

/**
 * Splits arguments into options (by long name), positional arguments and the
 * command after `--`. `--count=3`, `-n3` (for an attached short name) and
 * `-n 3` all give `--count` the value 3.
 *
 * @param args The arguments, without the program name.
 * @param table The options there are.
 * @returns The options given, the positional arguments and the command.
 * @throws {TypeError} If an option is unknown, lacks its value or has one it
 * does not take, or `--` ends them with no command (by `table.fail`, if given).
 *
 * @example An unknown option
 * ```ts
 * import { readArgs } from "./_cli_util.ts";
 * import assert from "node:assert/strict";
 *
 * const table = { switches: ["--"], valued: [], aliases: {} };
 * assert.throws(() => readArgs(["--bogus"], table), TypeError);
 * ```
 */
export function readArgs(args: string[], table: ArgsTable): Args {
  const { switches, valued, aliases, attached = [] } = table;
  const fail = table.fail ?? ((message: string): never => {
    throw new TypeError(message);
  });
  const flags: Args["flags"] = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const equals = arg.startsWith("--") ? arg.indexOf("=") : -1;
    // A line break does not count as an attached value: "-n\n3" is unknown.
    const short = attached.find((name) =>
      arg.startsWith(name) && /^./.test(arg.slice(name.length))
    );
    const [flag, inline] = equals > 0
      ? [arg.slice(0, equals), arg.slice(equals + 1)]
      : short
      ? [short, arg.slice(short.length)]
      : [arg, undefined];
    const name = Object.hasOwn(aliases, flag) ? aliases[flag] : flag;
    if (inline !== undefined && switches.includes(name)) {
      fail(
        `${flag} takes no value: current value is ${JSON.stringify(inline)}`,
      );
    }
    if (name === "--") {
      const command = args.slice(i + 1);
      if (command.length > 0) return { flags, positional, command };
      fail("-- must be followed by a command");
    } else if (switches.includes(name)) flags[name] = "";
    else if (valued.includes(name)) {
      if (inline === undefined && i + 1 >= args.length) {
        fail(`${flag} needs a value`);
      }
      flags[name] = inline ?? args[++i];
    } else if (flag.startsWith("-") && flag !== "-") {
      fail(`Unknown option ${flag}`);
    } else positional.push(arg);
  }
  return { flags, positional };
}
