// Copyright 2026 the @x/port-reserve authors. MIT license.
// The command line, spawned as users run it: `deno run -N cli.ts` under
// `deno test`, `bun cli.ts` under `bun test`, `node cli.ts` on Node 24. Runs
// unchanged on all three.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { main } from "./cli.ts";
import {
  assertTimeWait,
  closeServer,
  LINUX_ONLY,
  listen,
  NO_CLI,
  NO_IPV6,
  portOf,
  run,
  type RunResult,
  RUNTIME,
  runtimeCommand,
  waitFor,
} from "./test_util.ts";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));
const MOD = fileURLToPath(new URL("./mod.ts", import.meta.url));
const DENO_ONLY = RUNTIME === "deno" ? false : "Deno permissions are Deno's";

test("with no arguments it prints one reserved port and nothing else", {
  skip: NO_CLI || LINUX_ONLY,
}, async () => {
  const result = await cli([]);
  assert.deepEqual([result.code, result.stderr], [0, ""]);
  assert.match(result.stdout, /^\d+\n$/);
  await assertTimeWait("127.0.0.1", Number(result.stdout));
});

test(
  "HOST and PORT are positional: the host to reserve on and a preferred port",
  {
    skip: NO_CLI || NO_IPV6,
  },
  async () => {
    const server = await listen("::1", 0);
    const free = portOf(server);
    await closeServer(server);
    const result = await cli(["::1", String(free)]);
    assert.deepEqual([result.code, result.stdout, result.stderr], [
      0,
      `${free}\n`,
      "",
    ]);
    await assertTimeWait("::1", free);
    const wildcard = await cli(["0.0.0.0"]);
    await assertTimeWait("127.0.0.1", Number(wildcard.stdout));
  },
);

test("--count N prints N distinct reserved ports, one per line", {
  skip: NO_CLI || LINUX_ONLY,
}, async () => {
  for (const args of [["--count", "3"], ["-n", "3"], ["-n3"], ["--count=3"]]) {
    const result = await cli(args);
    assert.equal(result.code, 0, result.stderr);
    const ports = result.stdout.trimEnd().split("\n").map(Number);
    assert.equal(new Set(ports).size, 3);
    for (const port of ports) await assertTimeWait("127.0.0.1", port);
  }
  assert.deepEqual(await cli(["-n", "0"]), { code: 0, stdout: "", stderr: "" });
});

test("--json prints one line with the hostname and an array of ports", {
  skip: NO_CLI || LINUX_ONLY,
}, async () => {
  const one = await cli(["--json"]);
  assert.equal(one.code, 0);
  assert.match(one.stdout, /^\{"hostname":"127\.0\.0\.1","ports":\[\d+\]\}\n$/);
  const many = await cli(["--json", "-n", "2", "0.0.0.0"]);
  const parsed = JSON.parse(many.stdout);
  assert.equal(parsed.hostname, "0.0.0.0");
  assert.equal(parsed.ports.length, 2);
  await assertTimeWait("127.0.0.1", parsed.ports[1]);
});

test(
  "-- COMMAND runs it with PORT, PORTS and {port}, and its exit status is ours",
  {
    skip: NO_CLI || LINUX_ONLY,
  },
  async () => {
    const script = 'echo "$PORT|$PORTS|$1"; exit 7';
    const result = await cli(
      ["-n", "2", "--", "sh", "-c", script, "sh", "--port={port}"],
      ["-N", "--allow-run"],
    );
    assert.equal(result.code, 7, result.stderr);
    const [port, ports, arg] = result.stdout.trimEnd().split("|");
    assert.equal(ports.split(" ")[0], port);
    assert.equal(ports.split(" ").length, 2);
    assert.equal(arg, `--port=${port}`);
    await assertTimeWait("127.0.0.1", Number(port));
  },
);

test("--env NAME puts the first port into NAME instead of PORT", {
  skip: NO_CLI,
}, async () => {
  const result = await cli(
    ["--env", "API_PORT", "--", "sh", "-c", 'echo "${PORT:-unset} $API_PORT"'],
    ["-N", "--allow-run"],
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^unset \d+\n$/);
});

test("a command killed by a signal gives 128 + its number", {
  skip: NO_CLI,
}, async () => {
  const result = await cli(["--", "sh", "-c", "kill -TERM $$"], [
    "-N",
    "--allow-run",
  ]);
  assert.equal(result.code, 143);
});

test("SIGTERM and SIGINT are passed on to the command", {
  skip: NO_CLI,
}, async () => {
  for (const [signal, status] of [["SIGTERM", 42], ["SIGINT", 43]] as const) {
    // Bounded: if the signal never arrives, it exits 99 after about 10 s.
    const script = `trap 'exit ${status}' ${signal.slice(3)}; echo ready; ` +
      "i=0; while [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; exit 99";
    const { command, args } = cliCommand(["--", "sh", "-c", script], [
      "-N",
      "--allow-run",
    ]);
    // The status comes from a shell's `wait`: after kill(), Deno's
    // node:child_process reports the signal, not how the process exited.
    const wrapper = '"$@" & echo "pid=$!"; wait $!; echo "status=$?"';
    const child = spawn("sh", ["-c", wrapper, "sh", command, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, DENO_BINARY: process.execPath },
    });
    let output = "";
    child.stdout!.on("data", (chunk) => output += chunk);
    const exited = new Promise((resolve) => child.on("close", resolve));
    await waitFor(() => output.includes("ready"), 20_000);
    process.kill(Number(output.match(/pid=(\d+)/)![1]), signal);
    await exited;
    assert.match(output, new RegExp(`status=${status}\n$`));
  }
});

test("--help prints usage, options and examples on stdout", {
  skip: NO_CLI,
}, async () => {
  for (const flag of ["--help", "-h"]) {
    const result = await cli([flag]);
    assert.deepEqual([result.code, result.stderr], [0, ""]);
    for (const heading of ["Usage:", "Options:", "Examples:", "--count"]) {
      assert.ok(result.stdout.includes(heading), heading);
    }
  }
});

test(
  "--version prints the version in deno.json",
  { skip: NO_CLI },
  async () => {
    const config = new URL("./deno.json", import.meta.url);
    const { version } = JSON.parse(readFileSync(config, "utf8"));
    for (const flag of ["--version", "-V"]) {
      assert.deepEqual(await cli([flag]), {
        code: 0,
        stdout: `${version}\n`,
        stderr: "",
      });
    }
  },
);

test("bad usage exits 2 with one line on stderr naming the problem", {
  skip: NO_CLI,
}, async () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Unknown option --bogus/],
    [
      ["-n", "x"],
      /--count must be an integer in 0-65535: current value is "x"/,
    ],
    [["--count"], /--count needs a value/],
    [["127.0.0.1", "70000"], /PORT must be an integer in 0-65535: .*"70000"/],
    [["a", "1", "b"], /Unexpected argument b/],
    [["--env", "1X", "--", "true"], /--env must name an environment variable/],
    [["--json", "--", "true"], /--json .* pick one/],
    [["-n", "0", "--", "true"], /at least one port/],
    [["-n", "1", "--"], /-- must be followed by a command/],
  ];
  for (const [args, message] of cases) {
    const result = await cli(args);
    assert.equal(result.code, 2, args.join(" "));
    assertOneErrorLine(result, message);
  }
});

test(
  "a host that is not local exits 1 naming it",
  { skip: NO_CLI },
  async () => {
    const result = await cli(["192.0.2.1"]);
    assert.equal(result.code, 1);
    assertOneErrorLine(
      result,
      /192\.0\.2\.1 as it is not an address of this machine/,
    );
  },
);

test("without net permission Deno exits 1 naming -N, without prompting", {
  skip: NO_CLI || DENO_ONLY,
}, async () => {
  const result = await cli([], []);
  assert.equal(result.code, 1);
  assertOneErrorLine(
    result,
    /no net permission .*run with -N or --allow-net=127\.0\.0\.1\n$/,
  );
});

test(
  "a command without --allow-run exits 1 naming the flag, reserving nothing",
  {
    skip: NO_CLI || DENO_ONLY,
  },
  async () => {
    const result = await cli(["--", "true"], ["-N"]);
    assert.equal(result.code, 1);
    assertOneErrorLine(
      result,
      /Cannot run true as Deno has no run permission .*--allow-run/,
    );
  },
);

test(
  "a command that cannot start exits 1 naming it",
  { skip: NO_CLI },
  async () => {
    const result = await cli(["-n", "1", "--", "no-such-command-here"], [
      "-N",
      "--allow-run",
    ]);
    assert.equal(result.code, 1);
    assertOneErrorLine(result, /Cannot run no-such-command-here/);
  },
);

test("running mod.ts as the main module starts the command line", {
  skip: NO_CLI,
}, async () => {
  const { command, args } = runtimeCommand(MOD, ["--json", "-n", "2"], ["-N"]);
  const result = await run(command, args, 30_000);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).ports.length, 2);
});

test("Bun drops a leading --, so -- -- COMMAND runs COMMAND there", {
  skip: RUNTIME === "bun" ? false : "only Bun drops it",
}, async () => {
  const words = ["--", "--", "sh", "-c", "echo $PORT"];
  const { command, args } = runtimeCommand(CLI, words, []);
  const result = await run(command, args, 30_000);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^\d+\n$/);
});

test("main() returns the status without exiting, for use in scripts", async () => {
  // main() prints through console: capture it for the length of the test.
  const { log, error } = console;
  const printed: string[] = [];
  const capture = (line: string): number => printed.push(line);
  Object.assign(console, { log: capture, error: capture });
  try {
    assert.equal(await main(["--bogus"]), 2);
    assert.equal(await main(["-n", "2"]), 0);
  } finally {
    Object.assign(console, { log, error });
  }
  assert.match(printed[0], /^port-reserve: Unknown option --bogus/);
  assert.match(printed[1], /^\d+\n\d+$/);
});

// ---------------------------------------------------------------------------

function cliCommand(
  args: string[],
  denoFlags: string[],
): { command: string; args: string[] } {
  // Bun drops a `--` that directly follows the script; `-- --` keeps one.
  const bunArgs = RUNTIME === "bun" && args[0] === "--"
    ? ["--", ...args]
    : args;
  return runtimeCommand(CLI, bunArgs, denoFlags);
}

function cli(args: string[], denoFlags: string[] = ["-N"]): Promise<RunResult> {
  const { command, args: all } = cliCommand(args, denoFlags);
  return run(command, all, 30_000);
}

function assertOneErrorLine(result: RunResult, message: RegExp): void {
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^port-reserve: [^\n]+\n$/);
  assert.match(result.stderr, message);
}
