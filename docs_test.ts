// Copyright 2026 the @x/port-reserve authors. MIT license.
/**
 * Runs every fenced code block of README.md, CONTRIBUTING.md and docs/*.md,
 * one `node:test` test per block, named by file, heading and block. The
 * block's info string says what runs it:
 *
 * - `ts deno`, `ts bun`, `ts node`, `js node` (several runtimes allowed): the
 *   code itself, on each runtime named. Deno runs a file with `Deno.test` under
 *   `deno test -N`, anything else under `deno run -N`; Bun a file importing
 *   `bun:test` under `bun test`; Node a `.ts` on the pinned Node 24 as it is,
 *   and a `js` block also on the Node that runs npm (Node 20 in CI) against a
 *   JavaScript build of mod.ts, as JSR's npm layer serves one.
 * - `file=NAME` (any language): written to NAME in the heading's directory,
 *   for a later `sh` block of the same heading to use.
 * - `sh`: run by bash in the heading's directory, with the pinned runtimes
 *   first on PATH. With `server`, the block is a server that runs until
 *   stopped: it must print a URL that then answers HTTP, and stop, every
 *   process of it, on a SIGINT to its process group, as Ctrl-C sends.
 *   With `docker`, it runs only where `docker info` finds an engine, and is
 *   skipped, saying so, elsewhere.
 *
 * `jsr:@x/port-reserve`, `@x/port-reserve` and their `/cli` are mapped to this
 * checkout's mod.ts and cli.ts. Any other block fails, naming the file and
 * line: every block is run or skipped for a stated reason. Each heading gets a
 * fresh directory under .build/docs/.
 *
 * Run with `node --test-reporter=tap docs_test.ts` (Node 24) from the root;
 * `npm test` does.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
const bin = join(root, "node_modules", ".bin");
const work = join(root, ".build", "docs");
const systemNode = process.env.npm_node_execpath;
const env = {
  ...process.env,
  NO_COLOR: "1",
  CI: "1",
  PATH: `${bin}:${process.env.PATH}`,
};
const RUNTIMES = ["deno", "bun", "node"];

interface Block {
  file: string;
  line: number;
  heading: string;
  language: string;
  tokens: string[];
  code: string;
}

/** The fenced blocks of a Markdown file, with the heading each is under. */
function blocks(file: string): Block[] {
  const found: Block[] = [];
  let heading = "(top)";
  let open: Block | undefined;
  let fence = "";
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  lines.forEach((text, index) => {
    if (open) {
      if (text.trim() === fence) {
        found.push(open);
        open = undefined;
      } else open.code += `${text}\n`;
      return;
    }
    const start = text.match(/^(```+|~~~+)\s*(.*)$/);
    if (start) {
      const [language = "", ...tokens] = start[2].trim().split(/\s+/);
      fence = start[1];
      open = { file, line: index + 1, heading, language, tokens, code: "" };
      return;
    }
    const title = text.match(/^#{1,6}\s+(.*?)\s*$/);
    if (title) heading = title[1].replace(/`/g, "");
  });
  assert.equal(open, undefined, `${file}: a code fence is never closed`);
  return found;
}

/** The package's specifiers mapped to this checkout's files. */
function mapped(code: string, mod = join(root, "mod.ts")): string {
  const cli = join(root, "cli.ts");
  return code
    .replace(/(["'])(?:jsr:)?@x\/port-reserve\/cli\1/g, JSON.stringify(cli))
    .replace(/(["'])(?:jsr:)?@x\/port-reserve\1/g, JSON.stringify(mod))
    .replace(/jsr:@x\/port-reserve\/cli\b/g, cli)
    .replace(/jsr:@x\/port-reserve\b/g, mod);
}

interface Result {
  code: number | null;
  output: string;
}

/** Runs a command to its end, in its own process group, then ends the group. */
function run(
  command: string,
  args: string[],
  cwd: string,
  seconds = 60,
): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, detached: true });
    let output = "";
    child.stdout.on("data", (chunk) => output += chunk);
    child.stderr.on("data", (chunk) => output += chunk);
    const timer = setTimeout(() => {
      output += `\n(killed after ${seconds} s)`;
      endGroup(child);
    }, seconds * 1000);
    // A block may leave a server running in the background: once the shell
    // exits, the rest of its group is ended, and its output is complete.
    let status: number | null = null;
    child.on("exit", (code) => {
      status = code;
      endGroup(child);
    });
    child.on("close", () => {
      clearTimeout(timer);
      resolve({ code: status, output });
    });
  });
}

/** SIGKILL to what is left of a block's process group (background servers). */
function endGroup(
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGKILL",
): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is empty.
  }
}

/** Runs an `sh server` block: it must serve the URL it prints, then stop on SIGINT. */
function serve(code: string, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-e", "-c", code], {
      cwd,
      env,
      detached: true,
    });
    let output = "";
    let checked = false;
    const fail = (why: string): void => {
      endGroup(child);
      reject(new Error(`${why}\n${output}`));
    };
    const timer = setTimeout(() => fail("no URL printed in 30 s"), 30_000);
    const look = async (): Promise<void> => {
      const url = output.match(/https?:\/\/[^\s/]+:\d+\/?/)?.[0];
      if (!url || checked) return;
      checked = true;
      clearTimeout(timer);
      try {
        const response = await fetch(url);
        await response.arrayBuffer();
        output += `\n(${url} answered ${response.status})`;
      } catch (error) {
        return fail(`${url} did not answer: ${error}`);
      }
      const stop = setTimeout(
        () => fail("still running 10 s after SIGINT"),
        10_000,
      );
      child.on("close", (status) => {
        clearTimeout(stop);
        endGroup(child);
        resolve(`${output}\n(all stopped by SIGINT: exit ${status})`);
      });
      // As Ctrl-C in a terminal does: SIGINT to the whole process group.
      // (npm run passes no signal on to its script: SIGTERM to npm alone
      // leaves the script running.)
      endGroup(child, "SIGINT");
    };
    const collect = (chunk: Buffer): void => {
      output += chunk;
      void look();
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("close", (status) => {
      if (!checked) fail(`exited ${status} before printing a URL`);
    });
  });
}

let nodeBuild: string | undefined;
/** mod.ts as JavaScript, as JSR's npm layer serves it, for Node 20. */
function javascriptBuild(): string {
  if (nodeBuild) return nodeBuild;
  const out = join(work, "mod.js");
  const built = spawnSync(join(bin, "bun"), [
    "build",
    "mod.ts",
    "--target=node",
    "--format=esm",
    `--outfile=${out}`,
  ], { cwd: root, env, encoding: "utf8" });
  assert.equal(built.status, 0, built.stderr);
  return nodeBuild = out;
}

/** Runs one code block on one runtime, in `dir`; returns the output. */
async function runCode(
  block: Block,
  runtime: string,
  dir: string,
): Promise<string> {
  const extension = block.language === "js" ? "js" : "ts";
  const isTest = /\b(Deno\.test|from "bun:test"|from "node:test")/.test(
    block.code,
  );
  let command: string;
  let args: string[];
  let code = mapped(block.code);
  let name = `block_${block.line}_${runtime}${
    isTest ? ".test" : ""
  }.${extension}`;
  if (runtime === "deno") {
    command = join(bin, "deno");
    args = [isTest ? "test" : "run", "-N", "--no-config", `./${name}`];
  } else if (runtime === "bun") {
    command = join(bin, "bun");
    args = isTest ? ["test", `./${name}`] : [`./${name}`];
  } else if (runtime === "node20") {
    command = systemNode!;
    code = mapped(block.code, javascriptBuild());
    name = `block_${block.line}_node20.mjs`;
    args = [name];
  } else {
    command = join(bin, "node");
    args = [name];
  }
  writeFileSync(join(dir, name), code);
  const { code: status, output } = await run(command, args, dir);
  assert.equal(status, 0, `${runtime} exited ${status}:\n${output}`);
  return output;
}

const documents = [
  "README.md",
  "CONTRIBUTING.md",
  ...readdirSync(join(root, "docs")).filter((name) => name.endsWith(".md"))
    .sort().map((name) => `docs/${name}`),
];
const dockerReady = (): boolean =>
  spawnSync("docker", ["info"], { stdio: "ignore" }).status === 0;
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

for (const file of documents) {
  const seen = new Map<string, number>();
  for (const block of blocks(file)) {
    const dir = join(
      work,
      file.replace(/\W+/g, "_"),
      block.heading.toLowerCase().replace(/\W+/g, "_"),
    );
    const count = (seen.get(block.heading) ?? 0) + 1;
    seen.set(block.heading, count);
    const target = block.tokens.find((token) => token.startsWith("file="))
      ?.slice("file=".length);
    const runtimes = block.tokens.filter((token) => RUNTIMES.includes(token));
    const what = target ??
      (block.language === "sh" ? "sh" : runtimes.join(", ") || block.language);
    const name =
      `${file} › ${block.heading} › block ${count} (${what}, line ${block.line})`;
    const docker = block.language === "sh" && block.tokens.includes("docker");
    const skip = docker && !dockerReady()
      ? "needs a Docker engine: `docker info` finds none on this machine"
      : false;
    test(name, { skip, timeout: 90_000 }, async (t) => {
      mkdirSync(dir, { recursive: true });
      if (target) {
        mkdirSync(dirname(join(dir, target)), { recursive: true });
        writeFileSync(join(dir, target), mapped(block.code));
        t.diagnostic(`written to ${target}, for the sh block of this heading`);
        return;
      }
      if (block.language === "sh") {
        // Each heading is a project of its own (an ES module one, as the
        // recipes say), so that tools writing next to package.json, such as
        // Playwright's test-results/, write in its directory.
        if (!existsSync(join(dir, "package.json"))) {
          writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
        }
        const code = mapped(block.code);
        if (block.tokens.includes("server")) {
          t.diagnostic(await serve(code, dir));
          return;
        }
        const { code: status, output } = await run(
          "bash",
          ["-e", "-c", code],
          dir,
        );
        assert.equal(status, 0, `bash exited ${status}:\n${output}`);
        t.diagnostic(output.trim());
        return;
      }
      assert.ok(
        ["ts", "js"].includes(block.language) && runtimes.length > 0,
        `${file}:${block.line}: \`\`\`${block.language} ${
          block.tokens.join(" ")
        }` +
          " names neither a runtime (deno, bun, node), nor file=NAME, nor sh",
      );
      for (const runtime of runtimes) {
        const output = await runCode(block, runtime, dir);
        t.diagnostic(`${runtime}: ${output.trim()}`);
      }
      if (runtimes.includes("node") && block.language === "js") {
        if (!systemNode || !existsSync(systemNode)) {
          t.diagnostic("node20: skipped, npm_node_execpath names no Node");
        } else {
          const output = await runCode(block, "node20", dir);
          t.diagnostic(`node20 (${systemNode}): ${output.trim()}`);
        }
      }
    });
  }
}
