// Copyright 2026 the @x/port-reserve authors. MIT license.
// Runs unchanged under `deno test` and `bun test` (node:test + node:assert).
// Every claim is checked against the kernel: /proc/net/tcp{,6} for TIME_WAIT,
// real listeners and connections for who can and cannot get a port.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import * as net from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { reserve, reserveMany } from "./mod.ts";
import {
  assertTimeWait,
  closeServer,
  HAS_IPV6,
  LINUX_ONLY,
  listen,
  namespaceSupport,
  NO_IPV6,
  portOf,
  run,
  RUNTIME,
  runtimeCommand,
  states,
  waitFor,
} from "./test_util.ts";

// PORT_RESERVE_BACKEND=node runs the node:net backend on Deno and Bun too,
// through a global that mod.ts reads and does not document.
const BACKEND = process.env.PORT_RESERVE_BACKEND || undefined;
if (BACKEND) {
  (globalThis as Record<symbol, string>)[
    Symbol.for("@x/port-reserve/backend")
  ] = BACKEND;
}
// The permission tests are the Deno backend's: only this suite picks another
// backend on Deno, and only the Deno backend asks Deno for permissions.
const DENO_BACKEND = RUNTIME !== "deno"
  ? "Deno permissions exist only on Deno"
  : BACKEND && BACKEND !== "deno"
  ? `the ${BACKEND} backend is picked on Deno only by this suite`
  : false;
// Node runs a JavaScript build of this file and of the child (scripts/).
const CHILD = fileURLToPath(
  new URL(
    `./testdata/child.${RUNTIME === "node" ? "js" : "ts"}`,
    import.meta.url,
  ),
);

test("reserve() leaves the port in TIME_WAIT on 127.0.0.1", {
  skip: LINUX_ONLY,
}, async () => {
  const port = await reserve();
  assert.ok(Number.isInteger(port) && port > 0 && port < 65536);
  await assertTimeWait("127.0.0.1", port);
  assert.deepEqual(states("127.0.0.1", port), ["TIME_WAIT"]);
});

test("a new listener can take a reserved port at once", async () => {
  const port = await reserve();
  await closeServer(await listen("127.0.0.1", port));
  const again = await reserve();
  listenNatively("127.0.0.1", again);
});

const PYTHON = spawnSync("python3", ["--version"]).status === 0
  ? false
  : "python3 is not installed";

test(
  "Python's http.server takes a reserved port at once; a bare bind without SO_REUSEADDR cannot",
  {
    skip: LINUX_ONLY || PYTHON,
  },
  async () => {
    const port = await reserve();
    const server = "import http.server, sys\n" +
      "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), " +
      "http.server.BaseHTTPRequestHandler).server_close()\nprint('bound')";
    const served = await run("python3", ["-c", server, String(port)], 20_000);
    assert.equal(served.stdout, "bound\n", served.stderr);
    const bare = "import socket, sys\ns = socket.socket()\n" +
      "try:\n  s.bind(('127.0.0.1', int(sys.argv[1])))\n  print('bound')\n" +
      "except OSError as e:\n  print(e.errno == 98 and 'EADDRINUSE' or e)";
    const refused = await run("python3", ["-c", bare, String(port)], 20_000);
    assert.equal(refused.stdout, "EADDRINUSE\n", refused.stderr);
  },
);

test(
  "the kernel hands reserved ports to no port-0 listener or outgoing connection",
  { skip: LINUX_ONLY },
  async () => {
    const reserved = new Set(await reserveMany(50));
    const used = await churn(2000);
    assert.equal(used.length, 4000);
    assert.deepEqual(used.filter((port) => reserved.has(port)), []);
  },
);

test(
  "the same churn does land on ports released by the port 0 trick (control)",
  { skip: LINUX_ONLY },
  async () => {
    // Shows the test above can fail: ports that are merely free get reused.
    const released = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const server = await listen("127.0.0.1", 0);
      released.add(portOf(server));
      await closeServer(server);
    }
    const used = await churn(2000);
    assert.ok(used.some((port) => released.has(port)));
  },
);

test("reserveMany() reserves distinct ports, each in TIME_WAIT", {
  skip: LINUX_ONLY,
}, async () => {
  const ports = await reserveMany(40);
  assert.equal(ports.length, 40);
  assert.equal(new Set(ports).size, 40);
  for (const port of ports) await assertTimeWait("127.0.0.1", port);
});

test("reserveMany(0) resolves to []", async () => {
  assert.deepEqual(await reserveMany(0), []);
});

test("reserveMany() gives the preferred port first and distinct ports after it", async () => {
  const preferred = await reserve();
  const ports = await reserveMany(5, { port: preferred });
  assert.equal(ports[0], preferred);
  assert.equal(new Set(ports).size, 5);
});

test(
  "reserve() reserves a free preferred port",
  { skip: LINUX_ONLY },
  async () => {
    const server = await listen("127.0.0.1", 0);
    const free = portOf(server);
    await closeServer(server); // free, and not in TIME_WAIT: nothing connected
    assert.deepEqual(states("127.0.0.1", free), []);
    assert.equal(await reserve({ port: free }), free);
    await assertTimeWait("127.0.0.1", free);
  },
);

test("reserve() renews a preferred port that is in TIME_WAIT", {
  skip: LINUX_ONLY,
}, async () => {
  const port = await reserve();
  assert.equal(await reserve({ port }), port);
  await waitFor(() => states("127.0.0.1", port).length === 2);
  assert.deepEqual(states("127.0.0.1", port), ["TIME_WAIT", "TIME_WAIT"]);
});

test("reserve() reserves another port when the preferred one has a listener", {
  skip: LINUX_ONLY,
}, async () => {
  const server = await listen("127.0.0.1", 0);
  try {
    const taken = portOf(server);
    const port = await reserve({ port: taken });
    assert.notEqual(port, taken);
    await assertTimeWait("127.0.0.1", port);
  } finally {
    await closeServer(server);
  }
});

test("reserve() on ::1 leaves the port in TIME_WAIT in /proc/net/tcp6", {
  skip: NO_IPV6,
}, async () => {
  const port = await reserve({ hostname: "::1" });
  await assertTimeWait("::1", port);
  assert.equal(await reserve({ hostname: "[::1]", port }), port);
});

test(
  "reserve() on 0.0.0.0 reserves through 127.0.0.1 and a wildcard listener takes it",
  { skip: LINUX_ONLY },
  async () => {
    const port = await reserve({ hostname: "0.0.0.0" });
    await assertTimeWait("127.0.0.1", port);
    await closeServer(await listen("0.0.0.0", port));
  },
);

test("reserve() on :: reserves through ::1 and a wildcard listener takes it", {
  skip: NO_IPV6,
}, async () => {
  const port = await reserve({ hostname: "::" });
  await assertTimeWait("::1", port);
  await closeServer(await listen("::", port));
});

test("reserve() on localhost reserves the same port on 127.0.0.1 and ::1", {
  skip: NO_IPV6,
}, async () => {
  const port = await reserve({ hostname: "localhost" });
  await assertTimeWait("127.0.0.1", port);
  await assertTimeWait("::1", port);
});

test(
  "reserve() on localhost picks another port when the preferred one is taken on ::1",
  {
    skip: NO_IPV6,
  },
  async () => {
    const server = await listen("::1", 0);
    try {
      const taken = portOf(server);
      const port = await reserve({ hostname: "localhost", port: taken });
      assert.notEqual(port, taken);
      await assertTimeWait("127.0.0.1", port);
      await assertTimeWait("::1", port);
    } finally {
      await closeServer(server);
    }
  },
);

test(
  "8 processes × 200 reservations are all distinct",
  { skip: LINUX_ONLY },
  async () => {
    const children = Array.from(
      { length: 8 },
      () => runChild(["sequential", "200"]),
    );
    const ports = (await Promise.all(children)).flatMap((child) =>
      (child.json as { ports: number[] }).ports
    );
    assert.equal(ports.length, 1600);
    assert.equal(new Set(ports).size, 1600);
  },
);

test("reserve() rejects a port that is not an integer in 0-65535 with a RangeError", async () => {
  const cases: [unknown, string][] = [
    [1.5, "1.5"],
    [-1, "-1"],
    [65536, "65536"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    ["80", '"80"'],
  ];
  for (const [port, shown] of cases) {
    await assert.rejects(reserve({ port: port as number }), {
      name: "RangeError",
      message:
        `Cannot reserve port as 'port' must be an integer in 0-65535: current value is ${shown}`,
    });
  }
  await assert.rejects(reserveMany(2, { port: 70000 }), {
    name: "RangeError",
    message:
      "Cannot reserve ports as 'port' must be an integer in 0-65535: current value is 70000",
  });
});

test("reserveMany() rejects a count that is not a non-negative integer with a RangeError", async () => {
  for (const [count, shown] of [[-1, "-1"], [2.5, "2.5"], ["3", '"3"']]) {
    await assert.rejects(reserveMany(count as number), {
      name: "RangeError",
      message:
        `Cannot reserve ports as 'count' must be a non-negative integer: current value is ${shown}`,
    });
  }
});

test("reserve() rejects a hostname that is not a non-empty string and options that are not an object with a TypeError", async () => {
  await assert.rejects(reserve({ hostname: 42 as unknown as string }), {
    name: "TypeError",
    message:
      "Cannot reserve port as 'hostname' must be a non-empty string: current value is 42",
  });
  await assert.rejects(reserve({ hostname: " " }), { name: "TypeError" });
  await assert.rejects(reserve(null as unknown as object), {
    name: "TypeError",
    message:
      "Cannot reserve port as 'options' must be an object: current value is null",
  });
});

test("reserve() on an address of another machine fails naming it, with the runtime's error as cause", async () => {
  const error = await rejection(reserve({ hostname: "192.0.2.1" }));
  assert.equal(error.name, "Error");
  assert.match(
    error.message,
    /^Cannot reserve port on 192\.0\.2\.1 as it is not an address of this machine: /,
  );
  assert.ok(error.cause instanceof Error);
});

test("reserve() on a hostname that does not resolve fails naming it, with the runtime's error as cause", async () => {
  const error = await rejection(reserve({ hostname: "nope.invalid" }));
  assert.match(
    error.message,
    /^Cannot reserve port on nope\.invalid as the hostname does not resolve: /,
  );
  assert.ok(error.cause instanceof Error);
});

test(
  "Deno without net permission fails naming the flag, before touching the network",
  {
    skip: DENO_BACKEND,
  },
  async () => {
    const cases: [string[], string, RegExp][] = [
      [[], "{}", /--allow-net=127\.0\.0\.1$/],
      [["--allow-net=127.0.0.1:1"], "{}", /--allow-net=127\.0\.0\.1$/],
      [["--allow-net=127.0.0.1"], '{"hostname":"::1"}', /--allow-net=\[::1\]$/],
      [["--allow-net=0.0.0.0"], '{"hostname":"0.0.0.0"}', /=127\.0\.0\.1$/],
    ];
    for (const [flags, options, flag] of cases) {
      const { json } = await runChild(["call", options], flags);
      const { error } = json as { error: { name: string; message: string } };
      assert.ok(error, `${flags} ${options} gave ${JSON.stringify(json)}`);
      assert.equal(error.name, "Error");
      assert.match(error.message, /Deno has no net permission/);
      assert.match(error.message, / -N /);
      assert.match(error.message, flag);
    }
    // Bad input is reported before any permission is needed.
    const { json } = await runChild(["call", '{"port":1.5}'], []);
    assert.equal(
      (json as { error: { name: string } }).error.name,
      "RangeError",
    );
  },
);

test("Deno without net permission never prompts, even on a terminal", {
  skip: DENO_BACKEND || LINUX_ONLY ||
    (!existsSync("/usr/bin/script") &&
      "script(1) from util-linux is needed to give the child a terminal"),
}, async () => {
  // script(1) gives the child a terminal, where Deno would prompt.
  const command = `"$DENO_BINARY" run '${CHILD}' auto call {}`;
  const result = await run("script", ["-qec", command, "/dev/null"], 20_000);
  assert.doesNotMatch(result.stdout, /Deno requests|Allow\?/);
  assert.match(result.stdout, /Deno has no net permission/);
});

const NAMESPACE = namespaceSupport();

test(
  "an exhausted ephemeral range fails promptly with an 'ephemeral' error and nothing open",
  {
    skip: NAMESPACE,
  },
  async () => {
    // A private network namespace with an 8-port range: its own TIME_WAIT table.
    const { command, args } = childCommand(["exhaust"], ["-A"]);
    const script = [
      "ip link set lo up",
      'echo "40000 40007" > /proc/sys/net/ipv4/ip_local_port_range',
      `exec "$0" "$@"`,
    ].join(" && ");
    const result = await run(
      "unshare",
      ["-n", "sh", "-c", script, command, ...args],
      30_000,
    );
    const report = JSON.parse(result.stdout) as {
      ports: number[];
      error: { name: string; message: string; cause: string | null };
      fdBefore: number;
      fdAfter: number;
    };
    assert.ok(report.ports.length >= 1 && report.ports.length <= 7);
    assert.equal(new Set(report.ports).size, report.ports.length);
    assert.ok(report.ports.every((port) => port >= 40000 && port <= 40007));
    assert.equal(report.error.name, "Error");
    assert.match(
      report.error.message,
      /^Cannot reserve port on 127\.0\.0\.1 as no ephemeral port is left: .*ip_local_port_range$/,
    );
    assert.notEqual(report.error.cause, null);
    assert.equal(report.fdAfter, report.fdBefore);
  },
);

test("reservations and every failure path leave no file descriptor open", {
  skip: LINUX_ONLY,
}, async () => {
  // The first round may open the runtime's own descriptors (DNS, pollers).
  await everyPath();
  const before = openFds();
  for (let i = 0; i < 3; i++) await everyPath();
  assert.equal(openFds(), before);
});

// Deno's resource and op sanitizers (on in deno.json) see only Deno.test.
const { Deno } = globalThis as {
  Deno?: { test(name: string, fn: () => Promise<void>): void };
};
Deno?.test(
  "reserve() and its failure paths close every resource (Deno sanitizers)",
  everyPath,
);

// ---------------------------------------------------------------------------
// Helpers

/** Successful reservations of every kind, then every failure we can cause. */
async function everyPath(): Promise<void> {
  await reserveMany(20);
  await reserve({ hostname: "0.0.0.0" });
  if (HAS_IPV6) await reserve({ hostname: "localhost" });
  const server = await listen("127.0.0.1", 0);
  await reserve({ port: portOf(server) });
  await closeServer(server);
  await rejection(reserve({ port: 1.5 }));
  await rejection(reserveMany(-1));
  await rejection(reserve({ hostname: "192.0.2.1" }));
  await rejection(reserve({ hostname: "nope.invalid" }));
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Listens with the runtime's own API (Deno.listen, Bun.listen), then closes. */
function listenNatively(hostname: string, port: number): void {
  const { Deno, Bun } = globalThis as {
    Deno?: { listen(o: object): { close(): void } };
    Bun?: { listen(o: object): { stop(force?: boolean): void } };
  };
  if (Deno) Deno.listen({ hostname, port }).close();
  else if (Bun) {
    Bun.listen({ hostname, port, socket: { data(): void {} } }).stop(true);
  }
}

/**
 * `count` port-0 listeners, then `count` outgoing connections, one at a time;
 * returns every local port the kernel handed them.
 */
async function churn(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = await listen("127.0.0.1", 0);
    ports.push(portOf(server));
    await closeServer(server);
  }
  // The server closes first, so the clients' own ports get no TIME_WAIT.
  const target = await listen("127.0.0.1", 0);
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ host: "127.0.0.1", port: portOf(target) });
    await new Promise((resolve) => socket.once("connect", resolve));
    ports.push(socket.localPort!);
    await new Promise((resolve) => socket.once("close", resolve));
  }
  await closeServer(target);
  return ports;
}

function childCommand(
  args: string[],
  denoFlags: string[],
): { command: string; args: string[] } {
  return runtimeCommand(CHILD, [BACKEND ?? "auto", ...args], denoFlags);
}

async function runChild(
  args: string[],
  denoFlags: string[] = ["-N"],
): Promise<{ json: unknown; stderr: string }> {
  const { command, args: all } = childCommand(args, denoFlags);
  const result = await run(command, all, 60_000);
  assert.equal(result.code, 0, result.stderr);
  return { json: JSON.parse(result.stdout), stderr: result.stderr };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("Expected a rejection");
}
