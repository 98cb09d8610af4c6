// Copyright 2026 the @x/port-reserve authors. MIT license.
// The command line, spawned as users run it: `deno run -N cli.ts` under
// `deno test`, `bun cli.ts` under `bun test`, `node cli.ts` on Node 24. Runs
// unchanged on all three.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { main } from "./cli.ts";
import {
  assertOneErrorLine,
  assertTimeWait,
  CLI,
  cli,
  cliCommand,
  cliInNamespace,
  closeServer,
  DENO_ONLY,
  LINUX_ONLY,
  listen,
  namespaceSupport,
  NO_CLI,
  NO_IPV6,
  portOf,
  run,
  type RunResult,
  RUNTIME,
  runtimeCommand,
} from "./test_util.ts";

/** A bound for tests that start the command line: Bun's default is 5 s. */
const SPAWNS = 60_000;

const NAMESPACE = namespaceSupport();
const MOD = fileURLToPath(new URL("./mod.ts", import.meta.url));
/** Node on PATH: under Deno and Bun, process.execPath is not Node. */
const NODE = process.env.PATH?.split(":").map((dir) => `${dir}/node`)
  .find((path) => existsSync(path));
const NO_NODE = NODE ? false : "node is not on PATH";
const BUN = RUNTIME === "bun"
  ? process.execPath
  : [fileURLToPath(new URL("./node_modules/.bin/bun", import.meta.url))]
    .find((path) => existsSync(path));
const NO_BUN = BUN ? false : "bun is not in node_modules/.bin";

test("with no arguments it prints one reserved port and nothing else", {
  timeout: SPAWNS,
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
    timeout: SPAWNS,
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
    // A wildcard connects to every interface address: mod_test.ts tries
    // those in a network namespace of its own; localhost stays on loopback.
    const both = await cli(["localhost"]);
    await assertTimeWait("127.0.0.1", Number(both.stdout));
    await assertTimeWait("::1", Number(both.stdout));
  },
);

test("--count N prints N distinct reserved ports, one per line", {
  timeout: SPAWNS,
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
  timeout: SPAWNS,
  skip: NO_CLI || NO_IPV6,
}, async () => {
  const one = await cli(["--json"]);
  assert.equal(one.code, 0);
  assert.match(one.stdout, /^\{"hostname":"127\.0\.0\.1","ports":\[\d+\]\}\n$/);
  const many = await cli(["--json", "-n", "2", "[::1]"]);
  const parsed = JSON.parse(many.stdout);
  assert.equal(parsed.hostname, "[::1]");
  assert.equal(parsed.ports.length, 2);
  await assertTimeWait("::1", parsed.ports[1]);
});

test(
  "a wildcard HOST on Deno without --allow-sys=networkInterfaces exits 1 naming the flag, before touching the network",
  {
    timeout: SPAWNS,
    skip: NO_CLI || DENO_ONLY,
  },
  async () => {
    for (const host of ["0.0.0.0", "::"]) {
      const result = await cli([host]);
      assert.equal(result.code, 1);
      assertOneErrorLine(
        result,
        /^port-reserve: Cannot reserve port on (0\.0\.0\.0|::) as a wildcard reservation covers every address of the network interfaces, and Deno has no permission to list them: run with --allow-sys=networkInterfaces\n$/,
      );
    }
  },
);

test(
  "-- COMMAND runs it with PORT, PORTS and {port}, and its exit status is ours",
  {
    timeout: SPAWNS,
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

test(
  "PORT takes a port, a list, a range or a mix, and --exclude and --no-fallback work as the options do",
  { timeout: 60_000, skip: NO_CLI || NAMESPACE },
  async () => {
    // Fixed ports, in a network namespace of our own where all are free.
    const result = await cliInNamespace([
      '"$@" 127.0.0.1 8000',
      '"$@" -n 3 127.0.0.1 3000,8000-8001',
      '"$@" -n 3 127.0.0.1 8000-8001 --exclude 8000',
      '"$@" --json -n 2 127.0.0.1 9000-9001',
      '"$@" -n 3 127.0.0.1 8000-8001 --no-fallback; echo "status $?"',
      '"$@" -n 2 127.0.0.1 8000-8001 --no-fallback --exclude 8001; echo "status $?"',
      '"$@" 127.0.0.1 7000-7010 --exclude=7000,7002 -- sh -c \'echo "PORT=$PORT"\'',
    ]);
    const lines = result.stdout.trimEnd().split("\n");
    assert.deepEqual(
      lines.slice(0, 5),
      ["8000", "3000", "8000", "8001", "8001"],
      result.stderr,
    );
    // Then kernel-chosen ports: the named ones left ran out.
    assert.ok(lines.slice(5, 7).every((port) => Number(port) >= 32768));
    assert.deepEqual(lines.slice(7), [
      '{"hostname":"127.0.0.1","ports":[9000,9001]}',
      "status 2",
      "status 2",
      "PORT=7001",
    ]);
    assert.equal(
      result.stderr,
      "port-reserve: --count 3 asks for more ports than the 2 PORT names, with --no-fallback: see port-reserve --help\n" +
        "port-reserve: --count 2 asks for more ports than the 1 PORT names less --exclude, with --no-fallback: see port-reserve --help\n",
    );
  },
);

test("--env NAME puts the first port into NAME instead of PORT", {
  timeout: SPAWNS,
  skip: NO_CLI,
}, async () => {
  const result = await cli(
    ["--env", "API_PORT", "--", "sh", "-c", 'echo "${PORT:-unset} $API_PORT"'],
    ["-N", "--allow-run"],
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^unset \d+\n$/);
});

test("--help prints usage, options and examples on stdout", {
  timeout: SPAWNS,
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
  { timeout: SPAWNS, skip: NO_CLI },
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
  timeout: SPAWNS,
  skip: NO_CLI,
}, async () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Unknown option --bogus/],
    [
      ["-n", "x"],
      /--count must be an integer in 0-65535: current value is "x"/,
    ],
    [["--count"], /--count needs a value/],
    [
      ["127.0.0.1", "70000"],
      /PORT must be ports 1-65535 .*: "70000" is not in 1-65535/,
    ],
    [
      ["127.0.0.1", "8000-x"],
      /PORT must be .*: "8000-x" is not a port or a range/,
    ],
    [
      ["127.0.0.1", "3000,9000-8000"],
      /PORT must be .*: "9000-8000" runs backwards/,
    ],
    [["127.0.0.1", "8000,"], /PORT must be .*: "" is not a port or a range/],
    [["127.0.0.1", "0,8000"], /PORT must be .*: "0" is not in 1-65535/],
    [["--exclude", "80a"], /--exclude must be .*: "80a" is not a port/],
    [["--exclude"], /--exclude needs a value/],
    [
      ["127.0.0.1", "8000-8001", "--exclude", "8000,8001"],
      /--exclude leaves none of the ports PORT names: "8000-8001"/,
    ],
    [["--no-fallback=1"], /--no-fallback takes no value/],
    [
      ["--", "sleep", "1", "--then"],
      /--then must be followed by a test command/,
    ],
    [["--", "--then", "true"], /A server command must come before --then/],
    [
      ["--ready", "http://x/", "--", "true"],
      /--ready is for a server and its tests/,
    ],
    [
      ["--timeout", "soon", "--", "a", "--then", "b"],
      /--timeout must be a number of seconds, 0-86400: current value is "soon"/,
    ],
    [
      ["--ready", "ftp://x/", "--", "a", "--then", "b"],
      /--ready must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      ["--separator", "::", "--", "a", "::"],
      /:: must be followed by a test command/,
    ],
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

test("a value for a flag that takes none, or --env PORTS, is bad usage", {
  timeout: SPAWNS,
  skip: NO_CLI,
}, async () => {
  const cases: [string[], RegExp][] = [
    [["--json=false"], /--json takes no value: current value is "false"/],
    [["--version=1"], /--version takes no value: current value is "1"/],
    [["--help=x"], /--help takes no value: current value is "x"/],
    [["--=x", "true"], /-- takes no value: current value is "x"/],
    [["--env", "PORTS", "--", "true"], /--env .*PORTS/],
    [["--env=PORTS"], /--env .*PORTS/],
  ];
  for (const [args, message] of cases) {
    const result = await cli(args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stdout}`);
    assertOneErrorLine(result, message);
  }
});

test("stdout that cannot be written exits 1 with one line naming it", {
  timeout: SPAWNS,
  skip: NO_CLI,
}, async () => {
  const cases: [string, string[], RegExp][] = [
    [">/dev/full", [], /Cannot write to stdout: .*no space left on device/i],
    [">/dev/full", ["--help"], /Cannot write to stdout: .*no space left/i],
  ];
  for (const [redirect, args, message] of cases) {
    const result = await cliWithStdout(redirect, args);
    assert.equal(result.code, 1, `${redirect} ${args}: ${result.stderr}`);
    assertOneErrorLine(result, message);
  }
});

test("on Bun a closed stdout exits 1 with one line, and /dev/null is not one", {
  timeout: SPAWNS,
  skip: NO_CLI ||
    (RUNTIME === "bun"
      ? false
      : "Deno opens /dev/null on a closed stdout as Python's DEVNULL does"),
}, async () => {
  for (const args of [[], ["--version"]]) {
    const result = await cliWithStdout(">&-", args);
    assert.equal(result.code, 1, `>&- ${args}: ${result.stderr}`);
    assertOneErrorLine(
      result,
      /^port-reserve: Cannot write to stdout as it is closed\n$/,
    );
  }
  // Write-only as a shell opens it, read-write as Python's subprocess.DEVNULL
  // and Node's stdio "ignore" do: the ports are reserved and thrown away.
  for (const redirect of [">/dev/null", "1<>/dev/null"]) {
    const result = await cliWithStdout(redirect, []);
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" }, redirect);
  }
});

test(
  "a host that is not local exits 1 naming it",
  { timeout: SPAWNS, skip: NO_CLI },
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
  timeout: SPAWNS,
  skip: NO_CLI || DENO_ONLY,
}, async () => {
  const result = await cli([], []);
  assert.equal(result.code, 1);
  assertOneErrorLine(
    result,
    /no net permission .*run with -N or --allow-net=127\.0\.0\.1\n$/,
  );
});

test("running mod.ts as the main module starts the command line", {
  timeout: SPAWNS,
  skip: NO_CLI,
}, async () => {
  const { command, args } = runtimeCommand(MOD, ["--json", "-n", "2"], ["-N"]);
  const result = await run(command, args, 30_000);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).ports.length, 2);
});

test("importing a bundle of mod.ts in Node runs no command line", {
  timeout: SPAWNS,
  skip: NO_CLI || NO_NODE || NO_BUN,
}, async () => {
  // bun build rewrites import.meta.main into a test that is true in Node.
  const bundle = fileURLToPath(
    new URL(`./.build/mod_bundle_${RUNTIME}.js`, import.meta.url),
  );
  const built = await run(
    BUN!,
    ["build", MOD, "--target=node", "--format=esm", `--outfile=${bundle}`],
    30_000,
  );
  assert.equal(built.code, 0, built.stderr);
  const importer =
    `await import(${
      JSON.stringify(pathToFileURL(bundle).href)
    }); console.log("imported"); ` +
    'setTimeout(() => console.log("still running"), 300);';
  const result = await run(
    NODE!,
    ["--input-type=module", "-e", importer],
    30_000,
  );
  assert.deepEqual(result, {
    code: 0,
    stdout: "imported\nstill running\n",
    stderr: "",
  });
});

test(
  "running a bundle that inlines mod.ts and cli.ts runs its own entry alone, on every Node",
  {
    timeout: SPAWNS,
    skip: NO_CLI || NO_NODE || NO_BUN,
  },
  async () => {
    // Inlined, mod.ts and cli.ts share the bundle's import.meta, whose main is
    // true where Node has it (22.18+, 24): the module's own name must decide.
    const bundle = fileURLToPath(
      new URL(`./.build/entry_bundle_${RUNTIME}.js`, import.meta.url),
    );
    const entry = fileURLToPath(
      new URL("./testdata/bundle_entry.ts", import.meta.url),
    );
    const built = await run(
      BUN!,
      ["build", entry, "--target=node", "--format=esm", `--outfile=${bundle}`],
      30_000,
    );
    assert.equal(built.code, 0, built.stderr);
    const pinned = fileURLToPath(
      new URL("./node_modules/.bin/node", import.meta.url),
    );
    const nodes = [...new Set([NODE!, ...existsSync(pinned) ? [pinned] : []])];
    for (const node of nodes) {
      const result = await run(node, [bundle, "--count", "2"], 30_000);
      assert.deepEqual(result, {
        code: 0,
        stdout: "function function\n",
        stderr: "",
      }, node);
    }
  },
);

test("Bun drops a leading --, so -- -- COMMAND runs COMMAND there", {
  timeout: SPAWNS,
  skip: RUNTIME === "bun" ? false : "only Bun drops it",
}, async () => {
  const words = ["--", "--", "sh", "-c", "echo $PORT"];
  const { command, args } = runtimeCommand(CLI, words, []);
  const result = await run(command, args, 30_000);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^\d+\n$/);
});

test("main() returns the status without exiting, for use in scripts", async () => {
  // main() prints its results by Deno.stdout.writeSync on Deno, Bun.write on
  // Bun and process.stdout.write on Node, and errors by console.error:
  // capture them for the test's length.
  const printed: string[] = [];
  const capture = (line: string): number => printed.push(line);
  const { Deno, Bun } = globalThis as {
    Deno?: { stdout: { writeSync?: (data: Uint8Array) => number } };
    Bun?: { write: unknown };
  };
  const { error } = console;
  const write = Bun?.write;
  const nodeWrite = process.stdout.write;
  if (!Deno && !Bun) {
    // The test runner writes here too: pass on all but main()'s ports.
    process.stdout.write = ((text: string, ...rest: unknown[]) => {
      const done = rest[0];
      if (typeof done !== "function" || !/^\d+(\n\d+)*\n$/.test(text)) {
        return nodeWrite.call(process.stdout, text, ...rest as []);
      }
      capture(text.slice(0, -1));
      done();
      return true;
    }) as typeof process.stdout.write;
  }
  Object.assign(console, { error: capture });
  if (Deno) {
    Deno.stdout.writeSync = (data) => {
      capture(new TextDecoder().decode(data).slice(0, -1));
      return data.length;
    };
  }
  if (Bun) Bun.write = (_: unknown, text: string) => capture(text.slice(0, -1));
  try {
    assert.equal(await main(["--bogus"]), 2);
    assert.equal(await main(["-n", "2"]), 0);
  } finally {
    Object.assign(console, { error });
    if (Deno) delete Deno.stdout.writeSync; // the prototype's again
    if (Bun) Bun.write = write;
    if (!Deno && !Bun) process.stdout.write = nodeWrite;
  }
  assert.match(printed[0], /^port-reserve: Unknown option --bogus/);
  assert.match(printed[1], /^\d+\n\d+$/);
});

// ---------------------------------------------------------------------------

/** Runs the command line with its stdout redirected by sh, e.g. `>&-`. */
function cliWithStdout(redirect: string, args: string[]): Promise<RunResult> {
  const { command, args: all } = cliCommand(args, ["-N"]);
  return run("sh", ["-c", `"$@" ${redirect}`, "sh", command, ...all], 30_000);
}
