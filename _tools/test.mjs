// Copyright 2026 the @x/port-reserve authors. MIT license.
// deno-lint-ignore-file explicit-function-return-type -- plain JavaScript for Node 20, which runs npm test
// `npm test`: the quality gates, then the test suite on every runtime, one
// after another (they share the host's ephemeral port range). Ends with one
// line `test: N passed, N failed, N skipped` over all runtimes.
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
const build = (entry, out) => [
  "build",
  entry,
  "--target=node",
  "--format=esm",
  `--outfile=.build/${out}`,
];
// The stress steps run in a network namespace (_tools/in_namespace.sh).
const notLinux = process.platform === "linux"
  ? false
  : `network namespaces are Linux's, not ${process.platform}'s`;

/** A small stress run (_tools/stress.ts) in a fresh network namespace. */
const stress = (label, runtime, method, expect) => [
  label,
  "sh",
  [
    "_tools/in_namespace.sh",
    ...(runtime === "deno" ? ["deno", "run", "-A"] : ["bun"]),
    "_tools/stress.ts",
    ...["--method", method, "--expect", expect],
    ...["--processes", "4", "--per-process", "250"],
  ],
  undefined,
  {},
  notLinux,
];

/**
 * [label, command, args, summary parser (none for a gate), extra env,
 * reason to skip]
 */
const steps = [
  ["deno fmt", deno, ["fmt", "--check"]],
  ["deno lint", deno, ["lint"]],
  // deno.json's compilerOptions make this check refuse what Node 24 cannot
  // strip: enums, namespaces, parameter properties, untyped type imports.
  ["deno check", deno, ["check", "."]],
  ["deno doc --lint", deno, ["doc", "--lint", "mod.ts", "cli.ts"]],
  // `deno publish --dry-run --allow-dirty` (a dry run publishes nothing, and
  // npm may touch the tree), then every relative link of the README must be a
  // file of that package: JSR's package page resolves them against it.
  [
    "deno publish --dry-run, README links",
    systemNode,
    ["_tools/check_package.mjs"],
  ],
  // One version: deno.json's, which CHANGELOG.md must list (cli_test.ts keeps
  // cli.ts's --version equal to it; the publish workflow checks the tag).
  ["version and CHANGELOG.md", systemNode, ["_tools/check_release.mjs"]],
  // The workflows cannot run here: they must parse and say what they should.
  ["GitHub workflows", bun, ["_tools/check_workflows.mjs"]],
  // What a new user does from a clone: `deno install -g ./cli.ts`, then run it.
  [
    "deno install from this checkout",
    systemNode,
    ["_tools/check_install.mjs"],
    undefined,
    {},
    windows && "the installed command is a .cmd on Windows: not checked there",
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
  // Node 24 runs the TypeScript as it is: no build, its own type stripping.
  [
    `node ${node24Version} test, TypeScript as is`,
    node24,
    ["--test-reporter=tap", "mod_test.ts"],
    nodeCounts,
  ],
  [
    `node ${node24Version} test, the command line`,
    node24,
    ["--test-reporter=tap", "cli_test.ts"],
    nodeCounts,
  ],
  // A small race stress test on both runtimes, and its control: the port 0
  // trick must show races, or the check could not fail.
  stress("stress, deno", "deno", "ours", "none"),
  stress("stress, bun", "bun", "ours", "none"),
  stress("stress control, port 0 trick", "deno", "naive", "races"),
  // Node 20 runs a JavaScript build, as JSR's npm layer serves one.
  ["build for node", bun, build("mod_test.ts", "mod_test.js")],
  ["build cli tests for node", bun, build("cli_test.ts", "cli_test.js")],
  [
    "build child for node",
    bun,
    build("testdata/child.ts", "testdata/child.js"),
  ],
  [
    `node ${systemVersion} test, JavaScript build`,
    systemNode,
    [".build/mod_test.js"],
    nodeCounts,
  ],
  [
    `node ${systemVersion} test, the command line's main()`,
    systemNode,
    [".build/cli_test.js"],
    nodeCounts,
  ],
];

// The fault tests drop packets with nftables inside private network
// namespaces: install it where we can (root on Debian), as CI starts bare.
// Without it those tests skip with a reason; in CI that is a failure.
const toolFailures = installTools();

const total = { passed: 0, failed: 0, skipped: 0 };
const failures = [...toolFailures];
for (const [label, command, args, parse, env = {}, skip] of steps) {
  const shown = [command.replace(root, ""), ...args].join(" ");
  const vars = Object.entries(env).map(([key, value]) => `${key}=${value} `);
  process.stdout.write(`\n== ${label}: ${vars.join("")}${shown}\n`);
  if (skip) {
    process.stdout.write(`skipped: ${skip}\n`);
    continue;
  }
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
  `runtimes: deno, bun, node ${node24Version} (TypeScript as is), ` +
    `node ${systemVersion} (JavaScript build)\n`,
);
process.stdout.write(
  `test: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`,
);
process.exit(failures.length === 0 && total.failed === 0 ? 0 : 1);

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

function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", ...env },
      shell: windows,
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
