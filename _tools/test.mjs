// Copyright 2026 the @x/port-reserve authors. MIT license.
// deno-lint-ignore-file explicit-function-return-type -- plain JavaScript for Node 20, which runs npm test
// `npm test`: the quality gates one after another, then the test suites side
// by side (--jobs N at a time, 4 by default), each in network and mount
// namespaces of its own where Linux permits it (_tools/suite_namespace.sh).
// Ends with the seconds of every step and one line
// `test: N passed, N failed, N skipped` over all runtimes.
//
// `steps` below is the one list of what is checked, and the place for a new
// gate or CI step. Parts of it, in the list's order:
//   node _tools/test.mjs --gates       the gates only (`deno task check`)
//   node _tools/test.mjs --only NAME   the step named NAME, as printed after
//                                      `==`; repeatable
//   node _tools/test.mjs --quick       the quick run while editing, not a
//                                      step of the whole: Deno alone, the
//                                      slow tests left out (`npm run
//                                      test:quick`, `deno task test`)
//   node _tools/test.mjs --help        the usage and every step's name
// A part that runs a test suite ends with the `test:` line too, any other
// with `steps: N passed, N failed, N skipped`. Exits 1 if a step fails.
// deno.json's tasks call it through npm: `deno task` would run a command it
// finds in node_modules/.bin, such as the pinned `node`, as a JavaScript file
// (denoland/deno#27114).
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const windows = process.platform === "win32";
const bin = (name) =>
  windows
    ? `${root}node_modules\\.bin\\${name}.cmd`
    : `${root}node_modules/.bin/${name}`;
const deno = bin("deno");
const bun = bin("bun");
// Two Nodes, each called by its path. Inside npm scripts the pinned Node 24
// (the `node` devDependency) is first on PATH, so `npm test` runs this file on
// it; npm itself runs on the system Node, which npm names in
// npm_node_execpath. That one (Node 20 in CI) runs the JavaScript build.
const node24 = bin("node");
const systemNode = process.env.npm_node_execpath || process.execPath;
const nodeVersion = (node) =>
  spawnSync(node, ["--version"], { encoding: "utf8", shell: windows })
    .stdout?.trim() || "missing";
const systemVersion = nodeVersion(systemNode);
const node24Version = nodeVersion(node24);

const nodeBackend = { PORT_RESERVE_BACKEND: "node" };
/** The shipped modules: their docs are linted and their examples run. */
const shipped = ["mod.ts", "cli.ts", "supervise.ts", "_cli_util.ts"];
/** How long one step may run before it is killed and fails (TEST_STEP_LIMIT seconds). */
const STEP_LIMIT_MS = stepLimit(process.env.TEST_STEP_LIMIT);
/** The steps' processes running now, each the leader of its group. */
const running = new Set();
// Interrupted, stop every step's group too: they are not in ours.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    for (const child of running) killGroup(child);
    process.exit(128 + { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal]);
  });
}
const npmCi = [
  "ci",
  "--dry-run",
  "--ignore-scripts",
  "--no-audit",
  "--no-fund",
];
/** A `bun build` of a test file for Node 20, into .build/. */
const build = (name, entry, out) => ({
  name,
  command: bun,
  args: [
    "build",
    entry,
    "--target=node",
    "--format=esm",
    `--outfile=.build/${out}`,
  ],
});
// The stress steps run in a network namespace (_tools/in_namespace.sh).
const notLinux = process.platform === "linux"
  ? false
  : `network namespaces are Linux's, not ${process.platform}'s`;

/**
 * A test suite, in fresh network and mount namespaces where Linux permits it
 * (_tools/suite_namespace.sh): its own ports, TIME_WAIT table and resolver.
 */
const suite = (name, command, args, counts, env) => ({
  name,
  ...(notLinux
    ? { command, args }
    : { command: "sh", args: ["_tools/suite_namespace.sh", command, ...args] }),
  counts,
  env,
});

/** A small stress run (_tools/stress.ts) in a fresh network namespace. */
const stress = (name, runtime, method, expect) => ({
  name,
  command: "sh",
  args: [
    "_tools/in_namespace.sh",
    ...(runtime === "deno" ? ["deno", "run", "-A"] : ["bun"]),
    "_tools/stress.ts",
    ...["--method", method, "--expect", expect],
    ...["--processes", "4", "--per-process", "250"],
  ],
  skip: notLinux,
});

/**
 * Every step, in the order they run. Each is
 * `{ name, command, args, gate?, counts?, env?, skip? }`: `name` is printed and
 * picked by `--only`; `command` runs with `args` from the repository root;
 * `gate: true` makes it a quality gate (`--gates`, `deno task check`);
 * `counts` reads a test suite's summary from its output, which the `test:`
 * line adds up; `env` adds environment variables; `skip` is false or the
 * reason the step cannot run here.
 */
const steps = [
  { name: "deno fmt", command: deno, args: ["fmt", "--check"], gate: true },
  { name: "deno lint", command: deno, args: ["lint"], gate: true },
  // deno.json's compilerOptions make this check refuse what Node 24 cannot
  // strip: enums, namespaces, parameter properties, untyped type imports.
  { name: "deno check", command: deno, args: ["check", "."], gate: true },
  {
    name: "deno doc --lint",
    command: deno,
    args: ["doc", "--lint", ...shipped],
    gate: true,
  },
  // `deno publish --dry-run --allow-dirty` (a dry run publishes nothing, and
  // npm may touch the tree), then every relative link of the README must be a
  // file of that package: JSR's package page resolves them against it.
  {
    name: "deno publish --dry-run, README links",
    command: systemNode,
    args: ["_tools/check_package.mjs"],
    gate: true,
  },
  // One version: deno.json's, which CHANGELOG.md must list (cli_test.ts keeps
  // cli.ts's --version equal to it; the publish workflow checks the tag).
  {
    name: "version and CHANGELOG.md",
    command: systemNode,
    args: ["_tools/check_release.mjs"],
    gate: true,
  },
  // The workflows cannot run here: they must parse and say what they should.
  {
    name: "GitHub workflows",
    command: bun,
    args: ["_tools/check_workflows.mjs"],
    gate: true,
  },
  // `npm ci` fails on a lockfile that lacks any package.json asks for, an
  // optional platform package included (deno's, bun's and node's for every
  // OS): its dry run says so without installing anything.
  {
    name: "package-lock.json complete (npm ci --dry-run)",
    ...(process.env.npm_execpath
      ? { command: systemNode, args: [process.env.npm_execpath, ...npmCi] }
      : { command: windows ? "npm.cmd" : "npm", args: npmCi }),
    gate: true,
  },
  // What a new user does from a clone: `deno install -g ./cli.ts`, then run it.
  {
    name: "deno install from this checkout",
    command: systemNode,
    args: ["_tools/check_install.mjs"],
    gate: true,
    skip: windows &&
      "the installed command is a .cmd on Windows: not checked there",
  },
  // The suites, longest first, so that the last to start are short. Each runs
  // in namespaces of its own (_tools/suite_namespace.sh): its own port range
  // and TIME_WAIT table, which suites side by side would otherwise share and
  // swell (/proc/net/tcp with 10,000 entries takes 90 ms to read), and a
  // resolver of its own, so that no lookup leaves the machine.
  suite("deno test", deno, [
    "test",
    "-A",
    "--doc",
    ...shipped,
    "mod_test.ts",
  ], denoCounts),
  // Node 24 runs the TypeScript as it is: no build, its own type stripping.
  suite(
    `node ${node24Version} test, TypeScript as is`,
    node24,
    ["--test-reporter=tap", "mod_test.ts"],
    nodeCounts,
  ),
  // The node:net backend, which Node uses, on Deno and Bun too.
  suite(
    "deno test, node:net backend",
    deno,
    ["test", "-A", "mod_test.ts"],
    denoCounts,
    nodeBackend,
  ),
  suite("bun test", bun, ["test", "./mod_test.ts"], bunCounts),
  suite(
    "bun test, node:net backend",
    bun,
    ["test", "./mod_test.ts"],
    bunCounts,
    nodeBackend,
  ),
  // Node 20 runs a JavaScript build, as JSR's npm layer serves one.
  build("build for node", "mod_test.ts", "mod_test.js"),
  build("build cli tests for node", "cli_test.ts", "cli_test.js"),
  build(
    "build supervise tests for node",
    "supervise_test.ts",
    "supervise_test.js",
  ),
  build("build child for node", "testdata/child.ts", "testdata/child.js"),
  {
    ...suite(
      `node ${systemVersion} test, JavaScript build`,
      systemNode,
      [".build/mod_test.js"],
      nodeCounts,
    ),
    needs: ["build for node", "build child for node"],
  },
  // The command line and process supervision, spawned as users run them.
  suite("deno test, the command line", deno, [
    "test",
    "-A",
    "cli_test.ts",
    "supervise_test.ts",
  ], denoCounts),
  suite(
    `node ${node24Version} test, the command line`,
    node24,
    ["--test", "--test-reporter=tap", "cli_test.ts", "supervise_test.ts"],
    nodeCounts,
  ),
  suite(
    "bun test, the command line",
    bun,
    ["test", "./cli_test.ts", "./supervise_test.ts"],
    bunCounts,
  ),
  {
    ...suite(
      `node ${systemVersion} test, the command line's main()`,
      systemNode,
      [
        "--test",
        "--test-reporter=tap",
        ".build/cli_test.js",
        ".build/supervise_test.js",
      ],
      nodeCounts,
    ),
    needs: ["build cli tests for node", "build supervise tests for node"],
  },
  // Every code block of README.md, CONTRIBUTING.md and docs/, on the runtimes
  // its info string names (Vitest and Playwright recipes with the real tools).
  suite(
    `node ${node24Version} docs code blocks`,
    node24,
    ["--test-reporter=tap", "docs_test.ts"],
    nodeCounts,
  ),
  // A small race stress test on both runtimes, and its control: the port 0
  // trick must show races, or the check could not fail.
  stress("stress, deno", "deno", "ours", "none"),
  stress("stress, bun", "bun", "ours", "none"),
  stress("stress control, port 0 trick", "deno", "naive", "races"),
];

/**
 * The quick run while editing (`npm run test:quick`): every suite file on
 * Deno alone, side by side, with the tests that take a second or more left
 * out (PORT_RESERVE_QUICK: test_util.ts's QUICK); not a step of `npm test`.
 */
const quick = suite(
  "quick: deno test, no slow tests",
  deno,
  [
    "test",
    "-A",
    "--parallel",
    "--doc",
    ...shipped,
    "mod_test.ts",
    "cli_test.ts",
    "supervise_test.ts",
  ],
  denoCounts,
  { PORT_RESERVE_QUICK: "1" },
);

const { selected, jobs } = select(process.argv.slice(2));
const everything = selected.length === steps.length;
const suites = selected.some((step) => step.counts);

// The fault tests drop packets with nftables inside private network
// namespaces: install it where we can (root on Debian), as CI starts bare.
// Without it those tests skip with a reason; in CI that is a failure.
const toolFailures = suites && !selected.includes(quick) ? installTools() : [];

const total = { passed: 0, failed: 0, skipped: 0 };
const ran = { passed: 0, failed: 0, skipped: 0 };
const failures = [...toolFailures];
const timings = [];
// The gates one after another, their output as it comes; then the suites side
// by side, JOBS at a time (each waits for the steps it `needs`), each one's
// output whole once it ends, so that their lines do not interleave.
for (const step of selected.filter((step) => step.gate)) {
  await runStep(step, true);
}
const started = new Map();
const queue = selected.filter((step) => !step.gate);
await Promise.all(Array.from({ length: jobs }, async () => {
  for (let step; (step = queue.shift());) {
    const needs = (step.needs ?? []).map((name) => started.get(name));
    const done = Promise.all(needs).then(() => runStep(step, false));
    started.set(step.name, done);
    await done;
  }
}));
process.stdout.write("\n== seconds per step\n");
const order = (name) => selected.findIndex((step) => step.name === name);
timings.sort(([a], [b]) => order(a) - order(b));
for (const [name, seconds] of timings) {
  process.stdout.write(`${seconds.toFixed(1).padStart(7)}  ${name}\n`);
}
for (const failure of failures) process.stdout.write(`FAILED ${failure}\n`);
if (everything) {
  process.stdout.write(
    `runtimes: deno, bun, node ${node24Version} (TypeScript as is), ` +
      `node ${systemVersion} (JavaScript build)\n`,
  );
}
process.stdout.write(
  suites
    ? `test: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`
    : `steps: ${ran.passed} passed, ${ran.failed} failed, ${ran.skipped} skipped\n`,
);
process.exit(failures.length === 0 && total.failed === 0 ? 0 : 1);

/** The steps the command line asks for, in the list's order; all by default. */
function select(args) {
  const names = new Set();
  let gates = false;
  let jobs = 4;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--quick" && args.length > 1) {
      usage("--quick goes alone");
    } else if (args[i] === "--quick") return { selected: [quick], jobs };
    if (args[i] === "--gates") gates = true;
    else if (args[i] === "--jobs" && /^[1-9]\d*$/.test(args[i + 1] ?? "")) {
      jobs = Number(args[++i]);
    } else if (args[i] === "--jobs") {
      usage("--jobs needs a whole number, 1 or more");
    } else if (args[i] === "--only" && i + 1 < args.length) {
      names.add(args[++i]);
    } else if (args[i] === "--only") usage("--only needs a step's name");
    else if (args[i] === "--help") usage();
    else usage(`unknown argument ${JSON.stringify(args[i])}`);
  }
  const known = new Set(steps.map((step) => step.name));
  for (const name of names) {
    if (!known.has(name)) usage(`no step is named ${JSON.stringify(name)}`);
  }
  const all = !gates && names.size === 0;
  // A step picked by name brings the steps it needs (the builds it runs).
  for (const step of steps) {
    if (names.has(step.name)) {
      for (const need of step.needs ?? []) names.add(need);
    }
  }
  const selected = steps.filter((step) =>
    all || (gates && step.gate) || names.has(step.name)
  );
  return { selected, jobs };
}

/** Prints the usage and the steps' names; exits 2 if there is a problem. */
function usage(problem) {
  (problem ? process.stderr : process.stdout).write(
    (problem ? `test.mjs: ${problem}\n` : "") +
      "usage: node _tools/test.mjs [--gates] [--only NAME]... [--jobs N] | --quick\n" +
      `steps (* a gate):\n${
        steps.map((step) => `  ${step.gate ? "*" : " "} ${step.name}\n`)
          .join("")
      }`,
  );
  process.exit(problem ? 2 : 0);
}

/** Runs one step and counts it; `live`: its output as it comes. */
async function runStep({ name, command, args, counts, env, skip }, live) {
  const shown = [command.replace(root, ""), ...args].join(" ");
  const vars = Object.entries(env ?? {}).map(([key, value]) =>
    `${key}=${value} `
  );
  const header = `\n== ${name}: ${vars.join("")}${shown}\n`;
  if (skip) {
    process.stdout.write(`${header}skipped: ${skip}\n`);
    ran.skipped++;
    return;
  }
  if (live) process.stdout.write(header);
  else process.stdout.write(`-- started: ${name}\n`);
  const failed = failures.length;
  const start = performance.now();
  const { code, output } = await run(command, args, env, live);
  timings.push([name, (performance.now() - start) / 1000]);
  if (!live) process.stdout.write(header + output);
  if (counts) {
    const found = counts(output);
    if (!found) failures.push(`${name}: no test summary`);
    else for (const key of Object.keys(total)) total[key] += found[key];
  }
  if (code !== 0) failures.push(`${name}: exit ${code}`);
  if (failures.length > failed) ran.failed++;
  else ran.passed++;
}

function installTools() {
  const has = (tool) => spawnSync(tool, ["--version"]).status === 0;
  if (process.platform !== "linux" || has("nft")) return [];
  process.stdout.write("\n== install nftables for the fault tests\n");
  const root = process.getuid?.() === 0;
  const apt = (...args) =>
    spawnSync("apt-get", args, {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status === 0;
  if (root) {
    // A fresh machine may have no package lists yet.
    apt("install", "-y", "-q", "nftables") ||
      (apt("update", "-q") && apt("install", "-y", "-q", "nftables"));
  }
  if (has("nft")) return [];
  const why = root ? "apt-get could not install nftables" : "not root";
  process.stdout.write(`nft is missing (${why}): the fault tests skip\n`);
  return process.env.CI
    ? [`nftables: ${why}, so the fault tests cannot run`]
    : [];
}

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

/**
 * Runs a step's command; its exit code and output. A step still running after
 * STEP_LIMIT_MS is killed with all it started (its process group) and fails,
 * so that a hang fails the run in minutes, not at CI's limit.
 */
function run(command, args, env, live) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", ...env },
      shell: windows,
      detached: !windows, // a process group of its own, to kill whole
    });
    let output = "";
    const keep = (stream) => (chunk) => {
      output += chunk;
      if (live) stream.write(chunk);
    };
    let settled = false;
    const settle = (code) => {
      if (settled) return;
      settled = true;
      running.delete(child);
      clearTimeout(timer);
      resolve({ code, output });
    };
    const timer = setTimeout(() => {
      const note = `\ntest.mjs: still running after ${
        STEP_LIMIT_MS / 1000
      } s: killed\n`;
      output += note;
      if (live) process.stdout.write(note);
      killGroup(child);
      // A process that left the group may hold the output open: end anyway.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        settle(null);
      }, 5000).unref();
    }, STEP_LIMIT_MS);
    running.add(child);
    child.stdout.on("data", keep(process.stdout));
    child.stderr.on("data", keep(process.stderr));
    child.on("error", (error) => {
      output += String(error);
      settle(-1);
    });
    child.on("close", (code) => settle(code));
  });
}

/** SIGKILL to a step's process and all it started. */
function killGroup(child) {
  try {
    process.kill(windows ? child.pid : -child.pid, "SIGKILL");
  } catch {
    // It has just ended.
  }
}

/** TEST_STEP_LIMIT, in seconds (1-86400), as milliseconds; 15 minutes if unset. */
function stepLimit(text) {
  if (text === undefined || text === "") return 15 * 60_000;
  const seconds = Number(text);
  if (Number.isInteger(seconds) && seconds >= 1 && seconds <= 86400) {
    return seconds * 1000;
  }
  process.stderr.write(
    `test.mjs: TEST_STEP_LIMIT must be whole seconds, 1-86400: current value is ${
      JSON.stringify(text)
    }\n`,
  );
  process.exit(2);
}
