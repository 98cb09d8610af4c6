// Copyright 2026 the @x/port-reserve authors. MIT license.
// Process supervision (supervise.ts): supervise() called with plain data, and
// the command line's exec mode and start-wait-test runs spawned as users run
// them, with signals and terminals, on Deno, Bun and Node 24 alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { reserveMany } from "./mod.ts";
import { runDenied, supervise } from "./supervise.ts";
import {
  assertOneErrorLine,
  assertTimeWait,
  cli,
  cliCommand,
  cliInNamespace,
  DENO_ONLY,
  inTerminal,
  LINUX_ONLY,
  namespaceSupport,
  NO_CLI,
  NO_SCRIPT,
  PYTHON,
  QUICK,
  running,
  RUNTIME,
  waitFor,
} from "./test_util.ts";

const NAMESPACE = namespaceSupport();
/** Python that fetches / from the server on $PORT, then exits 6. */
const FETCH_AND_EXIT_6 = "import os, urllib.request; " +
  "urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ['PORT']); " +
  "raise SystemExit(6)";
/** Deno reads /proc/self/stat only under -A, and looks at stdio otherwise. */
const TERMINAL_FLAGS = RUNTIME === "deno"
  ? [["-N", "--allow-run"], ["-A"]]
  : [[]];

test(
  "supervise() runs the command with PORT, PORTS and {port}, and gives its status",
  { skip: LINUX_ONLY },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "port-reserve-"));
    try {
      const file = join(dir, "env");
      const ports = await reserveMany(2);
      const script = 'echo "$API|$PORTS|$1" > "$0"; exit 5';
      const status = await supervise(["sh", "-c", script, file, "{port}"], {
        ports,
        env: "API",
      });
      assert.equal(status, 5);
      assert.equal(
        readFileSync(file, "utf8"),
        `${ports[0]}|${ports.join(" ")}|${ports[0]}\n`,
      );
      await assertTimeWait("127.0.0.1", ports[1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  "supervise() with tests runs them once the server listens, and stops the server",
  { skip: LINUX_ONLY || PYTHON, timeout: 60_000 },
  async () => {
    const marker = `${47 + Math.random()}`;
    const ports = await reserveMany(1);
    const server = ["sh", "-c", `exec ${SERVER.join(" ")}`, marker];
    const status = await supervise(server, {
      ports,
      // The server answers the tests, whose status is 6.
      then: { test: ["python3", "-c", FETCH_AND_EXIT_6], graceMs: 2000 },
    });
    assert.equal(status, 6);
    assert.equal(running(`http.server ${ports[0]}`), false);
  },
);

test(
  "supervise() says a command that cannot start, with status 1",
  async () => {
    const ports = await reserveMany(1);
    const { error } = console;
    const said: string[] = [];
    Object.assign(console, { error: (line: string) => said.push(line) });
    try {
      assert.equal(await supervise(["no-such-command-here"], { ports }), 1);
    } finally {
      Object.assign(console, { error });
    }
    assert.match(
      said.join("\n"),
      /^port-reserve: Cannot run no-such-command-here/,
    );
  },
);

test(
  "runDenied() finds nothing to deny where the run permission is granted",
  () => {
    // Deno's suites run with -A; Bun and Node have no permissions.
    assert.equal(runDenied(["true"], { test: ["true"] }), undefined);
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
  { timeout: 60_000, skip: NO_CLI || PYTHON || LINUX_ONLY || QUICK },
  async () => {
    const marker = `${42 + Math.random()}`;
    // It crashes once the tests run, however slow python3 is to start (on a
    // loaded machine it was not ready within a fixed second).
    const crashing =
      `python3 -m http.server "$PORT" --bind 127.0.0.1 2>/dev/null & until pgrep -f '(^|/)sleep ${marker}' >/dev/null; do sleep 0.05; done; kill $!; exit 9`;
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
  { timeout: 60_000, skip: NO_CLI || PYTHON || QUICK },
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
        // Long enough for python3 to start and answer on a loaded machine.
        "--timeout",
        "5",
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
      /port-reserve: Cannot run the tests as the server was not ready within 5 s: http:\/\/127\.0\.0\.1:\d+\/nope did not answer with a 2xx or 3xx status \(last answer: 404\)/,
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
  {
    timeout: 60_000,
    skip: NO_CLI || PYTHON || NO_SCRIPT || LINUX_ONLY || QUICK,
  },
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

const SERVERS = fileURLToPath(
  new URL("./testdata/server.py", import.meta.url),
);

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
  { timeout: 60_000, skip: NO_CLI || PYTHON || LINUX_ONLY || QUICK },
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
  "on Deno a readiness check it has no net permission for fails before the server starts, without prompting",
  { timeout: 60_000, skip: NO_CLI || DENO_ONLY || NO_SCRIPT || LINUX_ONLY },
  async () => {
    // On a terminal, where Deno would prompt: the first check's fetch did,
    // and the prompt held the run past --timeout.
    {
      const marker = `${48 + Math.random()}`;
      const args = ["--ready", "http://[::1]:{port}/", "--timeout", "2"];
      args.push("--", "sleep", marker, "--then", "true");
      const net = "--allow-net=127.0.0.1";
      const terminal = inTerminal(args, [net, "--allow-run"], "pipe");
      let output = "";
      terminal.stdout!.on("data", (chunk) => output += chunk);
      const closed = new Promise((resolve) => terminal.once("close", resolve));
      const timer = setTimeout(() => terminal.kill("SIGKILL"), 20_000);
      await closed;
      clearTimeout(timer);
      terminal.stdin!.end();
      assert.doesNotMatch(output, /Allow\?/, output);
      assert.match(
        output,
        /Cannot check that the server is ready as Deno has no net permission for \[::1\]: run with -N or --allow-net=\[::1\]/,
        output,
      );
      assert.equal(running(`(^|/)sleep ${marker}`), false);
    }
  },
);

test(
  "8 runs in parallel pass on distinct ports, where one fixed port would clash",
  {
    timeout: 120_000,
    skip: NO_CLI || PYTHON || LINUX_ONLY || NAMESPACE || QUICK,
  },
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
  { skip: NO_CLI || QUICK, timeout: 60_000 },
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
  skip: NO_CLI || NO_SCRIPT || QUICK,
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
  skip: NO_CLI || NO_SCRIPT || QUICK,
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
