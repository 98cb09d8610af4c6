// Copyright 2026 the @x/port-reserve authors. MIT license.
// The command line, spawned as users run it: `deno run -N cli.ts` under
// `deno test`, `bun cli.ts` under `bun test`, `node cli.ts` on Node 24. Runs
// unchanged on all three.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { main } from "./cli.ts";
import {
  assertTimeWait,
  closeServer,
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
  waitFor,
} from "./test_util.ts";

const NAMESPACE = namespaceSupport();
const PYTHON = spawnSync("python3", ["--version"]).status === 0
  ? false
  : "python3 is not installed";
const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));
const MOD = fileURLToPath(new URL("./mod.ts", import.meta.url));
const DENO_ONLY = RUNTIME === "deno" ? false : "Deno permissions are Deno's";
/** Node on PATH: under Deno and Bun, process.execPath is not Node. */
const NODE = process.env.PATH?.split(":").map((dir) => `${dir}/node`)
  .find((path) => existsSync(path));
const NO_NODE = NODE ? false : "node is not on PATH";
const BUN = RUNTIME === "bun"
  ? process.execPath
  : [fileURLToPath(new URL("./node_modules/.bin/bun", import.meta.url))]
    .find((path) => existsSync(path));
const NO_BUN = BUN ? false : "bun is not in node_modules/.bin";
/** Deno reads /proc/self/stat only under -A, and looks at stdio otherwise. */
const TERMINAL_FLAGS = RUNTIME === "deno"
  ? [["-N", "--allow-run"], ["-A"]]
  : [[]];
const NO_SCRIPT = existsSync("/usr/bin/script") || existsSync("/bin/script")
  ? false
  : "script(1), which runs a command on a terminal, is missing";

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
    // A wildcard connects to every interface address: mod_test.ts tries
    // those in a network namespace of its own; localhost stays on loopback.
    const both = await cli(["localhost"]);
    await assertTimeWait("127.0.0.1", Number(both.stdout));
    await assertTimeWait("::1", Number(both.stdout));
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

// ---------------------------------------------------------------------------
// Start, wait, test, tear down

/** Python's http.server on {port}, as the server of the workflow tests. */
const SERVER = [
  "python3",
  "-m",
  "http.server",
  "{port}",
  "--bind",
  "127.0.0.1",
];
/** A test command that fetches from the server and exits with its argument. */
const FETCH = fileURLToPath(new URL("./testdata/fetch.py", import.meta.url));
const RUN = ["-N", "--allow-run"];

test(
  "-- SERVER --then TEST runs the tests once the server answers, with its status, and leaves nothing running",
  { timeout: 60_000, skip: NO_CLI || PYTHON || LINUX_ONLY },
  async () => {
    for (const status of [0, 3]) {
      const result = await cli(
        ["--", ...SERVER, "--then", "python3", FETCH, String(status)],
        RUN,
      );
      assert.equal(result.code, status, result.stderr);
      const port = /port (\d+) status 200/.exec(result.stdout)?.[1];
      assert.ok(port, result.stdout);
      assert.equal(running(`http.server ${port}`), false);
    }
  },
);

test(
  "a server that never listens fails the run within --timeout, naming what it waited for, and is stopped",
  { timeout: 60_000, skip: NO_CLI || LINUX_ONLY },
  async () => {
    const marker = `${40 + Math.random()}`;
    const start = Date.now();
    const result = await cli(
      ["--timeout", "0.5", "--", "sleep", marker, "--then", "true"],
      RUN,
    );
    assert.equal(result.code, 1);
    assertOneErrorLine(
      result,
      /^port-reserve: Cannot run the tests as the server was not ready within 0\.5 s: nothing accepted connections on 127\.0\.0\.1:\d+; raise --timeout or check where it listens\n$/,
    );
    assert.ok(Date.now() - start < 20_000);
    assert.equal(running(`(^|/)sleep ${marker}`), false);
  },
);

test(
  "a server that exits before it is ready ends the run at once with its status",
  { timeout: 60_000, skip: NO_CLI },
  async () => {
    const result = await cli(
      ["--", "sh", "-c", "exit 4", "--then", "true"],
      RUN,
    );
    assert.equal(result.code, 4);
    assertOneErrorLine(
      result,
      /^port-reserve: Cannot run the tests as the server \(sh\) exited with status 4 before it was ready\n$/,
    );
  },
);

test(
  "a server that crashes while the tests run fails the run and stops the tests",
  { timeout: 60_000, skip: NO_CLI || PYTHON || LINUX_ONLY },
  async () => {
    const marker = `${42 + Math.random()}`;
    const crashing =
      'python3 -m http.server "$PORT" --bind 127.0.0.1 2>/dev/null & sleep 1; kill $!; exit 9';
    const result = await cli(
      ["--", "sh", "-c", crashing, "--then", "sleep", marker],
      RUN,
    );
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /^port-reserve: The server \(sh\) exited with status 9 while the tests ran: the tests were stopped\n$/,
    );
    assert.equal(running(`(^|/)sleep ${marker}`), false);
  },
);

test(
  "--ready URL waits for a 2xx or 3xx answer, and names the last answer when none comes",
  { timeout: 60_000, skip: NO_CLI || PYTHON },
  async () => {
    const ok = await cli(
      [
        "--ready",
        "http://127.0.0.1:{port}/",
        "--",
        ...SERVER,
        "--then",
        "python3",
        FETCH,
      ],
      RUN,
    );
    assert.equal(ok.code, 0, ok.stderr);
    const missing = await cli(
      [
        "--ready",
        "http://127.0.0.1:{port}/nope",
        "--timeout",
        "1",
        "--",
        ...SERVER,
        "--then",
        "true",
      ],
      RUN,
    );
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /port-reserve: Cannot run the tests as the server was not ready within 1 s: http:\/\/127\.0\.0\.1:\d+\/nope did not answer with a 2xx or 3xx status \(last answer: 404\)/,
    );
  },
);

test(
  "SIGTERM and SIGINT to port-reserve mid-run stop the tests and the server, and nothing is left",
  { timeout: 60_000, skip: NO_CLI || PYTHON || LINUX_ONLY },
  async () => {
    for (
      const [signal, status] of [["SIGTERM", 143], ["SIGINT", 130]] as const
    ) {
      const marker = `${43 + Math.random()}`;
      const { command, args } = cliCommand(
        ["--", ...SERVER, "--then", "sleep", marker],
        RUN,
      );
      const child = spawn(command, args, {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, DENO_BINARY: process.execPath },
      });
      let output = "";
      child.stderr!.on("data", (chunk) => output += chunk);
      const closed = new Promise((resolve) => child.once("close", resolve));
      await waitFor(() => running(`(^|/)sleep ${marker}`), 20_000);
      const port = /port (\d+)/.exec(output)?.[1];
      // Not child.kill(): Deno's node:child_process then reports the
      // signal as the way the child ended, whatever its exit status.
      process.kill(child.pid!, signal);
      assert.equal(await closed, status, output);
      assert.equal(running(`(^|/)sleep ${marker}`), false);
      assert.equal(running(`http.server ${port}`), false, output);
    }
  },
);

test(
  "Ctrl-C in a terminal reaches the tests once and stops the server",
  { timeout: 60_000, skip: NO_CLI || PYTHON || NO_SCRIPT || LINUX_ONLY },
  async () => {
    const marker = `${44 + Math.random()}`;
    // Counts SIGINTs for two seconds, then exits 7.
    const count = `n=0; trap 'n=$((n+1)); echo "got $n"' INT; echo ready; ` +
      "i=0; while [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; exit 7";
    const terminal = inTerminal(
      ["--", ...SERVER, "--then", "sh", "-c", count, marker],
      RUN,
      "pipe",
    );
    let output = "";
    terminal.stdout!.on("data", (chunk) => output += chunk);
    const closed = new Promise((resolve) => terminal.once("close", resolve));
    await waitFor(() => output.includes("ready"), 20_000);
    terminal.stdin!.write("\x03"); // Ctrl-C
    await closed;
    // The tests' shell counted one SIGINT, from port-reserve.
    assert.match(output, /got 1/);
    assert.doesNotMatch(output, /got 2/);
    assert.equal(running(marker), false, output);
  },
);

const SERVERS = fileURLToPath(new URL("./testdata/server.py", import.meta.url));

test(
  "--ready leaves no idle connection behind for a single-threaded server to block on",
  { timeout: 60_000, skip: NO_CLI || PYTHON },
  async () => {
    const result = await cli(
      [
        "--ready",
        "http://127.0.0.1:{port}/",
        "--",
        "python3",
        SERVERS,
        "single",
        "--then",
        "python3",
        FETCH,
      ],
      RUN,
    );
    // fetch.py gives up after 5 s: before, Deno's and Node's pooled probe
    // connection held the server's one thread for 4 to 90 s.
    assert.equal(result.code, 0, result.stdout + result.stderr);
  },
);

test(
  "a server behind a wrapper gets its grace to shut down; a test that ignores signals is killed after the grace",
  { timeout: 60_000, skip: NO_CLI || PYTHON || LINUX_ONLY },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "port-reserve-"));
    try {
      const flag = join(dir, "flushed");
      const wrapped = `python3 ${SERVERS} graceful ${flag}; echo done`;
      const result = await cli(
        ["--", "sh", "-c", wrapped, "--then", "true"],
        RUN,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(readFileSync(flag, "utf8"), "flushed");
    } finally {
      rmSync(dir, { recursive: true });
    }
    const marker = `${46 + Math.random()}`;
    const stubborn = `trap '' TERM INT; sleep ${marker}`;
    const { command, args } = cliCommand(
      ["--grace", "1", "--", ...SERVER, "--then", "sh", "-c", stubborn],
      RUN,
    );
    const child = spawn(command, args, {
      stdio: "ignore",
      env: { ...process.env, DENO_BINARY: process.execPath },
    });
    const closed = new Promise((resolve) => child.once("close", resolve));
    await waitFor(() => running(`(^|/)sleep ${marker}`), 20_000);
    process.kill(child.pid!, "SIGTERM");
    assert.equal(await closed, 137); // killed a grace after the SIGTERM
    assert.equal(running(`(^|/)sleep ${marker}`), false);
  },
);

test(
  "on Deno a server and its tests need --allow-run for every command, said before anything starts",
  { timeout: 60_000, skip: NO_CLI || DENO_ONLY || LINUX_ONLY },
  async () => {
    const marker = `${45 + Math.random()}`;
    const result = await cli(
      ["--", "sleep", marker, "--then", "true"],
      ["-N", "--allow-run=sleep,true"],
    );
    assert.equal(result.code, 1);
    assertOneErrorLine(
      result,
      /^port-reserve: Cannot run a server and its tests as Deno may not stop their process groups without the run permission for every command: run with --allow-run, not --allow-run=LIST\n$/,
    );
    assert.equal(running(`(^|/)sleep ${marker}`), false);
  },
);

test(
  "8 runs in parallel pass on distinct ports, where one fixed port would clash",
  { timeout: 120_000, skip: NO_CLI || PYTHON || LINUX_ONLY || NAMESPACE },
  async () => {
    const runs = await Promise.all(
      Array.from(
        { length: 8 },
        () => cli(["--", ...SERVER, "--then", "python3", FETCH], RUN),
      ),
    );
    const ports = runs.map((result) => {
      assert.equal(result.code, 0, result.stderr);
      return /port (\d+) status 200/.exec(result.stdout)?.[1];
    });
    assert.equal(new Set(ports).size, 8, JSON.stringify(ports));
    // The control: the same 8 runs naming port 8000, in a namespace, their
    // tests kept running for 5 s so that the runs overlap, as in CI.
    const fixed = await cliInNamespace([
      `for i in 1 2 3 4 5 6 7 8; do ("$@" 127.0.0.1 8000 --no-fallback -- ${
        SERVER.join(" ")
      } --then sh -c 'python3 ${FETCH} && sleep 5' >/dev/null 2>&1; echo "status $?") & done; wait`,
    ]);
    const passed = fixed.stdout.split("\n").filter((l) => l === "status 0");
    assert.ok(passed.length <= 1, fixed.stdout);
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
  // Linux's numbers; `ulimit -c 0`: no core files from SEGV, ABRT and QUIT.
  const statuses = { SEGV: 139, ABRT: 134, QUIT: 131, PIPE: 141, USR1: 138 };
  for (const [signal, status] of Object.entries({ ...statuses, TERM: 143 })) {
    const script = `ulimit -c 0; kill -${signal} $$`;
    const result = await cli(["--", "sh", "-c", script], ["-N", "--allow-run"]);
    assert.equal(result.code, status, `SIG${signal}: ${result.stderr}`);
  }
});

test(
  "HUP, INT, QUIT and TERM sent to port-reserve alone reach the command once",
  { skip: NO_CLI, timeout: 60_000 },
  async () => {
    for (const signal of ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM"] as const) {
      const { command, args } = cliCommand(
        ["--", "sh", "-c", counter(signal.slice(3))],
        ["-N", "--allow-run"],
      );
      // No terminal, as for a CI runner cancelling a job: setsid(1) starts a
      // session without one. The status comes from a shell's `wait`: after
      // kill(), Deno's node:child_process reports the signal, not the status.
      const wrapper = '"$@" & echo "pid=$!"; wait $!; echo "status=$?"';
      const child = spawn("setsid", [
        "sh",
        "-c",
        wrapper,
        "sh",
        command,
        ...args,
      ], {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, DENO_BINARY: process.execPath },
      });
      let output = "";
      child.stdout!.on("data", (chunk) => output += chunk);
      const exited = new Promise((resolve) => child.on("close", resolve));
      await countSignals(() => output, 1, () => {
        process.kill(Number(output.match(/pid=(\d+)/)![1]), signal);
      });
      await exited;
      assert.match(output, /\ncount=1\nstatus=0\n$/, `${signal}: ${output}`);
    }
  },
);

test("Ctrl-C in a terminal reaches the command once", {
  skip: NO_CLI || NO_SCRIPT,
  timeout: 60_000,
}, async () => {
  for (const flags of TERMINAL_FLAGS) {
    const child = inTerminal(["--", "sh", "-c", counter("INT")], flags, "pipe");
    let output = "";
    child.stdout!.on("data", (chunk) => output += chunk);
    const exited = new Promise((resolve) => child.on("close", resolve));
    // Three times: a signal passed on can come before the command handled the
    // terminal's, and the kernel then delivers the two as one.
    await countSignals(() => output, 3, () => child.stdin!.write("\x03"));
    const code = await exited;
    child.stdin!.end();
    assert.match(output, /count=3\r?\n/, `${flags.join(" ")}: ${output}`);
    assert.equal(code, 0, output);
  }
});

test("a hangup of the terminal reaches the command once", {
  skip: NO_CLI || NO_SCRIPT,
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "port-reserve-"));
  try {
    for (const [i, flags] of TERMINAL_FLAGS.entries()) {
      // To a file, as the terminal is gone once it has hung up.
      const file = join(dir, `output${i}`);
      const script = `exec >"$0"; ${counter("HUP")}`;
      const child = inTerminal(
        ["--", "sh", "-c", script, file],
        flags,
        "ignore",
      );
      const output = () => existsSync(file) ? readFileSync(file, "utf8") : "";
      // Killing script(1) closes the terminal's master side: a hangup.
      await countSignals(output, 1, () => child.kill("SIGKILL"));
      await waitFor(() => output().includes("count="), 10_000);
      assert.match(output(), /\ncount=1\n$/, `${flags.join(" ")}: ${output()}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
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

test("importing a bundle of mod.ts in Node runs no command line", {
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

/**
 * A command that counts the SIG`signal`s it gets: it prints `ready sleep=PID`,
 * `got N` at each, and `count=N` once PID (a sleep of 10 s at most) has ended.
 * The `wait` builtin returns at each signal, so that the trap runs at once.
 */
function counter(signal: string): string {
  return `n=0; trap 'n=$((n+1)); echo "got $n"' ${signal}; ` +
    'sleep 10 & s=$!; echo "ready sleep=$s"; ' +
    'while kill -0 $s 2>/dev/null; do wait $s; done; echo "count=$n"';
}

/**
 * Drives a counter() whose output so far is output(): send() a signal `rounds`
 * times, each once the last has been counted, then end it.
 */
async function countSignals(
  output: () => string,
  rounds: number,
  send: () => unknown,
): Promise<void> {
  await waitFor(() => output().includes("ready"), 20_000);
  for (let round = 1; round <= rounds; round++) {
    send();
    await waitFor(() => output().includes(`got ${round}`), 10_000);
    // A signal passed on comes a few milliseconds later: give it time.
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  try {
    process.kill(Number(output().match(/sleep=(\d+)/)?.[1]));
  } catch {
    // It has ended: 10 s have passed.
  }
}

/**
 * Runs the command line with `args` on a new terminal, by script(1), whose
 * input is the terminal's keyboard. `exec`: port-reserve leads the terminal's
 * session, as under `ssh -t`.
 */
function inTerminal(
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
function cliInNamespace(lines: string[]): Promise<RunResult> {
  const { command, args } = cliCommand([], ["-N", "--allow-run"]);
  const script = ['set -- "$0" "$@"', "ip link set lo up", ...lines]
    .join("\n");
  return run("unshare", ["-n", "sh", "-c", script, command, ...args], 30_000);
}

/** Whether a process whose command line contains `pattern` is running. */
function running(pattern: string): boolean {
  return spawnSync("pgrep", ["-f", pattern]).status === 0;
}

function cli(args: string[], denoFlags: string[] = ["-N"]): Promise<RunResult> {
  const { command, args: all } = cliCommand(args, denoFlags);
  return run(command, all, 30_000);
}

/** Runs the command line with its stdout redirected by sh, e.g. `>&-`. */
function cliWithStdout(redirect: string, args: string[]): Promise<RunResult> {
  const { command, args: all } = cliCommand(args, ["-N"]);
  return run("sh", ["-c", `"$@" ${redirect}`, "sh", command, ...all], 30_000);
}

function assertOneErrorLine(result: RunResult, message: RegExp): void {
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^port-reserve: [^\n]+\n$/);
  assert.match(result.stderr, message);
}
