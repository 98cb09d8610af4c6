// Copyright 2026 the @x/port-reserve authors. MIT license.
// deno-lint-ignore-file explicit-function-return-type -- plain JavaScript for Node 20, which runs npm test
// The JSR package page gate: runs `deno publish --dry-run`, takes the list of
// files it would publish, and fails when a relative link or image in
// README.md, CONTRIBUTING.md or docs/*.md points at a file outside that list
// (JSR resolves them against the package, so such a link is broken on the
// package page), when one of those documents is not published itself, when
// an #anchor names no heading of the Markdown file it points into, or when
// the README's first screen shows no command that runs the package. Exits 0
// when all is well.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { posix } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const deno = `${root}node_modules/.bin/deno`;

const dryRun = spawnSync(deno, ["publish", "--dry-run", "--allow-dirty"], {
  cwd: root,
  encoding: "utf8",
  env: { ...process.env, NO_COLOR: "1" },
});
process.stdout.write(dryRun.stdout ?? "");
process.stderr.write(dryRun.stderr ?? "");
if (dryRun.status !== 0) {
  fail(`deno publish --dry-run exited ${dryRun.status ?? dryRun.error}`);
}

const published = publishedFiles(`${dryRun.stdout}\n${dryRun.stderr}`);
if (!published.has("README.md")) {
  fail(`README.md is not in the package: ${[...published].join(", ")}`);
}
const readme = readFileSync(`${root}README.md`, "utf8");
// The first screen of the package page says how to use it in one command.
const { name } = JSON.parse(readFileSync(`${root}deno.json`, "utf8"));
const firstScreen = readme.split("\n").slice(0, 20).join("\n");
const shellBlocks = firstScreen.split("```sh\n").slice(1);
if (
  !shellBlocks.some((block) => block.split("```")[0].includes(`jsr:${name}`))
) {
  fail(`The first 20 lines of README.md show no command running jsr:${name}`);
}
// The documents whose links are checked: every one must be published.
const documents = [
  "README.md",
  "CONTRIBUTING.md",
  ...(existsSync(`${root}docs`) ? readdirSync(`${root}docs`) : [])
    .filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`),
].filter((file) => existsSync(`${root}${file}`));
const problems = [];
for (const file of documents) {
  if (!published.has(file)) {
    problems.push(`${file} is not in the published package`);
  }
}
const slugs = new Map();
const anchorsOf = (file) => {
  if (!slugs.has(file)) {
    slugs.set(file, headingSlugs(readFileSync(`${root}${file}`, "utf8")));
  }
  return slugs.get(file);
};
let checked = 0;
for (const document of documents) {
  const text = readFileSync(`${root}${document}`, "utf8");
  for (const { line, target } of links(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) {
      continue;
    }
    checked++;
    const [path, fragment] = splitTarget(target);
    const file = path === "" ? document : posix.normalize(
      posix.join(posix.dirname(document), decodeURIComponent(path)),
    ).replace(/^\.\//, "");
    if (path !== "" && !published.has(file)) {
      problems.push(
        `${document}:${line}: ${target} is not in the published package ` +
          "(add it to publish.include in deno.json)",
      );
      continue;
    }
    if (
      fragment !== "" && file.endsWith(".md") && !anchorsOf(file).has(fragment)
    ) {
      problems.push(
        `${document}:${line}: #${fragment} names no heading of ${file}`,
      );
    }
  }
}
if (problems.length > 0) {
  fail(
    `${problems.length} link(s) broken on the package page:\n${
      problems.join("\n")
    }`,
  );
}
process.stdout.write(
  `Links: all ${checked} relative links of ${documents.join(", ")} resolve ` +
    `in the package (${published.size} files: ${
      [...published].sort().join(", ")
    })\n`,
);

/** The files of the dry run's list, relative to the package root. */
function publishedFiles(output) {
  const files = new Set();
  for (const match of output.matchAll(/^\s+(file:\/\/\S+) \([^)]*\)$/gm)) {
    files.add(fileURLToPath(match[1]).slice(root.length));
  }
  if (files.size === 0) fail("The dry run listed no files");
  return files;
}

/**
 * Link and image targets, with their line numbers: inline `[text](target)`,
 * reference definitions `[id]: target`, and HTML `src`/`href` attributes.
 * Fenced code blocks and inline code spans are not links.
 */
function links(markdown) {
  const found = [];
  let fenced = false;
  markdown.split("\n").forEach((text, index) => {
    if (/^\s*(```|~~~)/.test(text)) fenced = !fenced;
    if (fenced) return;
    const prose = text.replace(/`[^`]*`/g, "");
    const patterns = [
      /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
      /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g,
      /\s(?:src|href)=["']([^"']+)["']/g,
    ];
    for (const pattern of patterns) {
      for (const match of prose.matchAll(pattern)) {
        found.push({ line: index + 1, target: match[1] });
      }
    }
  });
  return found;
}

function splitTarget(target) {
  const hash = target.indexOf("#");
  const path = hash === -1 ? target : target.slice(0, hash);
  const fragment = hash === -1 ? "" : target.slice(hash + 1);
  return [path.replace(/\?.*$/, ""), decodeURIComponent(fragment)];
}

/** The anchors of the README's headings, slugged as GitHub and JSR do. */
function headingSlugs(markdown) {
  const slugs = new Set();
  const seen = new Map();
  let fenced = false;
  for (const text of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(text)) fenced = !fenced;
    const heading = !fenced && text.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
    if (!heading) continue;
    // HTML tags are dropped, but not the text of code spans.
    const base = heading[1].split("`")
      .map((part, i) => i % 2 === 0 ? part.replace(/<[^>]+>/g, "") : part)
      .join("")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    slugs.add(count === 0 ? base : `${base}-${count}`);
  }
  return slugs;
}

function fail(message) {
  process.stderr.write(`check_package: ${message}\n`);
  process.exit(1);
}
