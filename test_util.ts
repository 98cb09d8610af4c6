// Copyright 2026 the @x/port-reserve authors. MIT license.
// Helpers shared by mod_test.ts and cli_test.ts: the kernel's view of a port
// (/proc/net/tcp{,6}), listeners, and running child processes.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as net from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The runtime running the tests. */
export const RUNTIME = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

export { useBackend } from "./testdata/hooks.ts";

/**
 * Whether the tests run from the TypeScript sources (Deno, Bun, Node 22.18+
 * and 24, which strip types) rather than from Node 20's JavaScript build in
 * .build/ (_tools/test.mjs), where this module is bundled into a .js file.
 */
const FROM_SOURCE = import.meta.url.endsWith(".ts");

/**
 * false on Linux, else the reason to skip a test that reads /proc (socket
 * states, open descriptors) or checks how Linux's port allocators treat
 * TIME_WAIT. docs/platforms.md says how each of those claims would be
 * checked on macOS and Windows.
 */
export const LINUX_ONLY = process.platform === "linux"
  ? false
  : `reads /proc or checks Linux's TCP port allocation; ${process.platform} is not Linux`;

/**
 * false where the command line can be spawned as users run it, else the
 * reason to skip: Node 20 has no type stripping and runs a JavaScript build of
 * the tests, while the command line is cli.ts itself; on Windows the tests
 * start it through sh.
 */
export const NO_CLI = !FROM_SOURCE
  ? "Node 20 runs a JavaScript build of the tests; the command line is cli.ts, run on Deno, Bun and Node 24"
  : process.platform === "win32"
  ? "these tests start the command line through sh, which Windows lacks"
  : false;

/**
 * false, else the reason to skip a slow test: the quick run while editing
 * (`npm run test:quick`, PORT_RESERVE_QUICK=1) leaves out the tests that take
 * a second or more (faults, floods, signals, namespaces); `npm test` runs all.
 */
export const QUICK = process.env.PORT_RESERVE_QUICK
  ? "slow: the quick run leaves it to npm test"
  : false;

/** Whether ::1 is configured here, and the reason to skip where it is not. */
export const HAS_IPV6 = existsSync("/proc/net/if_inet6") &&
  readFileSync("/proc/net/if_inet6", "utf8").includes(
    "00000000000000000000000000000001",
  );
export const NO_IPV6 = LINUX_ONLY ||
  (HAS_IPV6 ? false : "::1 is not configured on this machine");

/** The states of sockets whose local address is address:port, from /proc. */
export function states(address: string, port: number): string[] {
  const file = address.includes(":") ? "/proc/net/tcp6" : "/proc/net/tcp";
  const local = `${procAddress(address)}:${
    port.toString(16).toUpperCase().padStart(4, "0")
  }`;
  const names: Record<string, string> = { "06": "TIME_WAIT", "0A": "LISTEN" };
  return readFileSync(file, "utf8").split("\n").slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1] === local)
    .map((fields) => names[fields[3]] ?? fields[3]);
}

/**
 * The TCP counters of this network namespace that say where a TIME_WAIT went
 * (/proc/net/netstat and /proc/net/snmp, name lines over value lines): a
 * timewait the kernel could not make (TCPTimeWaitOverflow), one reused or
 * killed, resets sent. For a failure's message: a CI run once found a
 * released port with no TIME_WAIT, under load. A late acknowledgement had
 * most likely made the closed client port send a reset, which ends a
 * TIME_WAIT (docs/beware.md#a-late-packet-can-end-a-reservation): then
 * OutRsts is 1 and the rest 0.
 */
export function tcpCounters(): Record<string, number> {
  const wanted = new Set([
    "TCPTimeWaitOverflow",
    "TWRecycled",
    "TWKilled",
    "TCPAbortOnData",
    "TCPAbortOnClose",
    "OutRsts",
    "RetransSegs",
    "EstabResets",
  ]);
  const counters: Record<string, number> = {};
  for (const file of ["/proc/net/netstat", "/proc/net/snmp"]) {
    const lines = readFileSync(file, "utf8").split("\n");
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i].trim().split(/\s+/);
      const values = lines[i + 1].trim().split(/\s+/);
      if (names[0] !== values[0]) continue;
      names.forEach((name, k) => {
        if (wanted.has(name)) counters[name] = Number(values[k]);
      });
    }
  }
  return counters;
}

export async function assertTimeWait(
  address: string,
  port: number,
): Promise<void> {
  // The last FIN crosses loopback in softirq context: allow it a moment.
  // One read of /proc a try: it is long where many ports are in TIME_WAIT.
  let seen: string[] = [];
  await waitFor(() => (seen = states(address, port)).includes("TIME_WAIT"));
  assert.ok(
    seen.includes("TIME_WAIT"),
    `${address}:${port} has no TIME_WAIT entry: ${seen}`,
  );
}

export async function waitFor(
  condition: () => boolean,
  timeout = 1000,
): Promise<void> {
  for (let waited = 0; waited < timeout && !condition(); waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** An address as /proc/net/tcp{,6} prints it: 32-bit words in host order. */
function procAddress(address: string): string {
  let bytes: number[];
  if (address.includes(":")) {
    const [head, tail = ""] = address.split("::");
    const words = (part: string) => part ? part.split(":") : [];
    const groups = [...words(head)];
    const rest = words(tail);
    while (groups.length + rest.length < 8) groups.push("0");
    bytes = [...groups, ...rest].flatMap((group) => {
      const value = parseInt(group, 16);
      return [value >> 8, value & 0xff];
    });
  } else {
    bytes = address.split(".").map(Number);
  }
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    for (let j = 3; j >= 0; j--) {
      out += bytes[i + j].toString(16).toUpperCase().padStart(2, "0");
    }
  }
  return out;
}

export function listen(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.end());
    server.once("error", reject);
    server.listen({ host, port }, () => resolve(server));
  });
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/**
 * How to run `script` with `args` on this runtime. A Deno child gets exactly
 * `denoFlags`: Deno's node:child_process gives a Deno child that has no
 * permission flags the parent's permissions, and it spots execPath even inside
 * `sh -c` arguments, so the binary goes through the environment (see run()).
 */
export function runtimeCommand(
  script: string,
  args: string[],
  denoFlags: string[],
): { command: string; args: string[] } {
  if (RUNTIME === "deno") {
    const exec = 'exec "$DENO_BINARY" "$@"';
    return {
      command: "sh",
      args: ["-c", exec, "deno", "run", ...denoFlags, script, ...args],
    };
  }
  return { command: process.execPath, args: [script, ...args] };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command with no input; a liveness bound, not a speed target. An
 * abort of `signal` sends it SIGTERM, and the result still comes when it ends.
 */
export function run(
  command: string,
  args: string[],
  timeout: number,
  signal?: AbortSignal,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", DENO_BINARY: process.execPath },
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => stdout += chunk);
    child.stderr!.on("data", (chunk) => stderr += chunk);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} hung for ${timeout} ms`));
    }, timeout);
    const stop = (): unknown => child.kill("SIGTERM");
    signal?.addEventListener("abort", stop, { once: true });
    child.on("error", reject);
    child.on("close", (code) => {
      signal?.removeEventListener("abort", stop);
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** false where `unshare -n` works here, else the reason to skip. */
export function namespaceSupport(): string | false {
  if (process.platform !== "linux") return "network namespaces are Linux's";
  const probe = spawnSync("unshare", ["-n", "ip", "link", "set", "lo", "up"], {
    encoding: "utf8",
  });
  if (probe.error) return `unshare or ip is missing: ${probe.error.message}`;
  if (probe.status !== 0) {
    return `unshare -n is not permitted here (needs root): ${probe.stderr.trim()}`;
  }
  return false;
}

// ---------------------------------------------------------------------------
// The command line, spawned as users run it: `deno run cli.ts` under Deno,
// `bun cli.ts` under Bun, `node cli.ts` on Node 24. For cli_test.ts and
// supervise_test.ts.

export const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));
export const PYTHON = spawnSync("python3", ["--version"]).status === 0
  ? false
  : "python3 is not installed";
export const DENO_ONLY = RUNTIME === "deno"
  ? false
  : "Deno permissions are Deno's";
export const NO_SCRIPT =
  existsSync("/usr/bin/script") || existsSync("/bin/script")
    ? false
    : "script(1), which runs a command on a terminal, is missing";

export function cliCommand(
  args: string[],
  denoFlags: string[],
): { command: string; args: string[] } {
  // Bun drops a `--` that directly follows the script; `-- --` keeps one.
  const bunArgs = RUNTIME === "bun" && args[0] === "--"
    ? ["--", ...args]
    : args;
  return runtimeCommand(CLI, bunArgs, denoFlags);
}

/**
 * Runs the command line with `args` on a new terminal, by script(1), whose
 * input is the terminal's keyboard. `exec`: port-reserve leads the terminal's
 * session, as under `ssh -t`.
 */
export function inTerminal(
  args: string[],
  denoFlags: string[],
  stdout: "pipe" | "ignore",
): ReturnType<typeof spawn> {
  const { command, args: all } = cliCommand(args, denoFlags);
  const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;
  const line = `exec ${[command, ...all].map(quote).join(" ")}`;
  return spawn("script", ["-qec", line, "/dev/null"], {
    stdio: ["pipe", stdout, "inherit"],
    env: { ...process.env, SHELL: "/bin/sh", DENO_BINARY: process.execPath },
  });
}

/**
 * Runs `lines` in sh in a fresh network namespace with loopback up, the
 * command line being "$@" there (with --allow-run on Deno).
 */
export function cliInNamespace(lines: string[]): Promise<RunResult> {
  const { command, args } = cliCommand([], ["-N", "--allow-run"]);
  const script = ['set -- "$0" "$@"', "ip link set lo up", ...lines]
    .join("\n");
  return run("unshare", ["-n", "sh", "-c", script, command, ...args], 30_000);
}

/** Whether a process whose command line contains `pattern` is running. */
export function running(pattern: string): boolean {
  return spawnSync("pgrep", ["-f", pattern]).status === 0;
}

export function cli(
  args: string[],
  denoFlags: string[] = ["-N"],
): Promise<RunResult> {
  const { command, args: all } = cliCommand(args, denoFlags);
  return run(command, all, 30_000);
}

export function assertOneErrorLine(result: RunResult, message: RegExp): void {
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^port-reserve: [^\n]+\n$/);
  assert.match(result.stderr, message);
}
