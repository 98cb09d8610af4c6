// Copyright 2026 the @x/port-reserve authors. MIT license.
// Plain JavaScript for Node 20, which runs it before anything is installed.
// The version is deno.json's. `node _tools/check_release.mjs` checks that
// CHANGELOG.md has an Unreleased section and one for that version;
// `node _tools/check_release.mjs vX.Y.Z` (the publish workflow, with the tag
// it runs for) also checks that the tag names that version.
import { readFileSync } from "node:fs";

const root = new URL("..", import.meta.url);
const { version } = JSON.parse(
  readFileSync(new URL("deno.json", root), "utf8"),
);
const changelog = readFileSync(new URL("CHANGELOG.md", root), "utf8");
const tag = process.argv[2];
const problems = [];
if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version ?? "")) {
  problems.push(`deno.json's version is not semver: ${version}`);
}
const headings = [...changelog.matchAll(/^## \[([^\]]+)\]/gm)].map((m) => m[1]);
if (headings[0] !== "Unreleased") {
  problems.push("CHANGELOG.md does not start with an [Unreleased] section");
}
if (!headings.includes(version)) {
  problems.push(
    `CHANGELOG.md has no section for ${version}, deno.json's version`,
  );
}
if (tag !== undefined && tag !== `v${version}`) {
  problems.push(
    `The tag ${tag} does not name deno.json's version, v${version}`,
  );
}
if (problems.length > 0) {
  process.stderr.write(
    `check_release: ${problems.join("\ncheck_release: ")}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `Release: version ${version}${
    tag ? `, tag ${tag}` : ""
  }, CHANGELOG.md has its section\n`,
);
