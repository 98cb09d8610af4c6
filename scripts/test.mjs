// Copyright 2026 the @x/port-reserve authors. MIT license.
// deno-lint-ignore-file explicit-function-return-type -- plain JavaScript for Node 20, which runs npm test
// `npm test`: the quality gates, then the test suite on every runtime, one
// after another (they share the host's ephemeral port range). Ends with one
// line `test: N passed, N failed, N skipped` over all runtimes.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => `${root}node_modules/.bin/${name}`;
const deno = bin("deno");

const bun = bin("bun");
const nodeBackend = { PORT_RESERVE_BACKEND: "node" };
const build = (entry, out) => [
  "build",
  entry,
  "--target=node",
  "--format=esm",
  `--outfile=.build/${out}`,
];

/** A small stress run (bench/stress.ts) in a fresh network namespace. */
const stress = (runtime, method, expect) => [
  "bench/in_namespace.sh",
  ...(runtime === "deno" ? ["deno", "run", "-A"] : ["bun"]),
  "bench/stress.ts",
  ...["--method", method, "--expect", expect],
  ...["--processes", "4", "--per-process", "250"],
];

/** [label, command, args, summary parser (none for a gate), extra env] */
const steps = [
  ["deno fmt", deno, ["fmt", "--check"]],
  ["deno lint", deno, ["lint"]],
  ["deno check", deno, ["check", "."]],
  ["deno doc --lint", deno, ["doc", "--lint", "mod.ts", "cli.ts"]],
  // `deno publish --dry-run --allow-dirty` (a dry run publishes nothing, and
  // npm may touch the tree), then every relative link of the README must be a
  // file of that package: JSR's package page resolves them against it.
  [
    "deno publish --dry-run, README links",
    process.execPath,
    ["scripts/check_package.mjs"],
  ],
  ["deno test", deno, [
    "test",
    "-A",
    "--doc",
    "mod.ts",
    "cli.ts",
    "mod_test.ts",
    "cli_test.ts",
  ], denoCounts],
  ["bun test", bun, ["test", "./mod_test.ts", "./cli_test.ts"], bunCounts],
  // The node:net backend, which Node uses, on Deno and Bun too.
  [
    "deno test, node:net backend",
    deno,
    ["test", "-A", "mod_test.ts"],
    denoCounts,
    nodeBackend,
  ],
  [
    "bun test, node:net backend",
    bun,
    ["test", "./mod_test.ts"],
    bunCounts,
    nodeBackend,
  ],
  // A small race stress test on both runtimes, and its control: the port 0
  // trick must show races, or the check could not fail.
  ["stress, deno", "sh", stress("deno", "ours", "none")],
  ["stress, bun", "sh", stress("bun", "ours", "none")],
  ["stress control, port 0 trick", "sh", stress("deno", "naive", "races")],
  // Real Node runs a JavaScript build, as JSR's npm layer serves one.
  ["build for node", bun, build("mod_test.ts", "mod_test.js")],
  [
    "build child for node",
    bun,
    build("testdata/child.ts", "testdata/child.js"),
  ],
  ["node test", process.execPath, [".build/mod_test.js"], nodeCounts],
];

const total = { passed: 0, failed: 0, skipped: 0 };
const failures = [];
for (const [label, command, args, parse, env = {}] of steps) {
  const shown = [command.replace(root, ""), ...args].join(" ");
  const vars = Object.entries(env).map(([key, value]) => `${key}=${value} `);
  process.stdout.write(`\n== ${label}: ${vars.join("")}${shown}\n`);
  const { code, output } = await run(command, args, env);
  if (parse) {
    const counts = parse(output);
    if (!counts) failures.push(`${label}: no test summary`);
    else for (const key of Object.keys(total)) total[key] += counts[key];
  }
  if (code !== 0) failures.push(`${label}: exit ${code}`);
}
for (const failure of failures) process.stdout.write(`FAILED ${failure}\n`);
process.stdout.write(
  `test: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`,
);
process.exit(failures.length === 0 && total.failed === 0 ? 0 : 1);

function denoCounts(output) {
  const match = output.match(
    /(\d+) passed \| (\d+) failed(?: \| (\d+) ignored)?/,
  );
  return match && {
    passed: Number(match[1]),
    failed: Number(match[2]),
    skipped: Number(match[3] ?? 0),
  };
}

function bunCounts(output) {
  const count = (word) =>
    Number(output.match(new RegExp(`^ *(\\d+) ${word}$`, "m"))?.[1] ?? 0);
  return /^Ran \d+ tests?/m.test(output) &&
    { passed: count("pass"), failed: count("fail"), skipped: count("skip") };
}

function nodeCounts(output) {
  const count = (word) =>
    Number(output.match(new RegExp(`^# ${word} (\\d+)$`, "m"))?.[1] ?? 0);
  return /^# tests \d+$/m.test(output) &&
    { passed: count("pass"), failed: count("fail"), skipped: count("skipped") };
}

function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", ...env },
    });
    let output = "";
    const keep = (stream) => (chunk) => {
      output += chunk;
      stream.write(chunk);
    };
    child.stdout.on("data", keep(process.stdout));
    child.stderr.on("data", keep(process.stderr));
    child.on("error", (error) => {
      output += String(error);
      resolve({ code: -1, output });
    });
    child.on("close", (code) => resolve({ code, output }));
  });
}
