// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * What the command line (`cli.ts`) needs of Deno, Bun or Node to start and
 * end: its arguments, stdout and exit. Not part of the API.
 *
 * @example The runtime's arguments
 * ```ts
 * import { pickRuntime } from "./_runtime.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(Array.isArray(pickRuntime().args));
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
 * import { pickRuntime } from "./_runtime.ts";
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
