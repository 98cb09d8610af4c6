// Copyright 2026 the @x/port-reserve authors. MIT license.
// Plain JavaScript, run by the pinned Bun for its YAML parser.
// The GitHub workflows cannot run here. This checks what can be checked: each
// file parses as YAML (with Bun's YAML 1.2 parser, which the pinned Bun
// brings: no dependency), and each says what CONTRIBUTING.md says it does.
// Run as `bun _tools/check_workflows.mjs`.
import { readFileSync } from "node:fs";

const root = new URL("..", import.meta.url);
const problems = [];
const load = (name) => {
  const path = `.github/workflows/${name}`;
  try {
    return Bun.YAML.parse(readFileSync(new URL(path, root), "utf8"));
  } catch (error) {
    problems.push(`${path} does not parse: ${error.message}`);
    return {};
  }
};
const expect = (ok, message) => ok || problems.push(message);
const runs = (job) => (job?.steps ?? []).map((step) => step.run ?? "");
const runsTests = (line) => /\.ci\/run|npm install-test/.test(line);

const ci = load("ci.yml");
expect(
  ci.on?.push && "pull_request" in (ci.on ?? {}),
  "ci.yml: not on push and pull_request",
);
const linux = ci.jobs?.linux;
expect(/^ubuntu-/.test(linux?.["runs-on"] ?? ""), "ci.yml: no Linux job");
expect(
  runs(linux).some(runsTests),
  "ci.yml: the Linux job does not run npm install-test",
);
expect(
  linux?.["continue-on-error"] !== true,
  "ci.yml: the Linux job may not fail quietly",
);

const publish = load("publish.yml");
const tags = publish.on?.push?.tags ?? [];
expect(
  tags.includes("v*") && Object.keys(publish.on ?? {}).length === 1,
  "publish.yml: not on v* tags only",
);
const permissions = publish.permissions ?? {};
expect(
  permissions["id-token"] === "write" && permissions.contents === "read" &&
    Object.keys(permissions).length === 2,
  "publish.yml: permissions are not exactly id-token: write, contents: read",
);
const steps = runs(Object.values(publish.jobs ?? {})[0]);
const tested = steps.findIndex(runsTests);
const published = steps.findIndex((line) => /(deno|jsr) publish/.test(line));
const checked = steps.findIndex((line) =>
  line.includes("node _tools/check_release.mjs")
);
expect(
  tested !== -1 && published > tested,
  "publish.yml: does not publish after npm install-test",
);
expect(
  checked !== -1 && checked < published,
  "publish.yml: does not check the tag (node _tools/check_release.mjs) " +
    "before publishing",
);
expect(
  !/--allow-dirty|--dry-run/.test(steps[published] ?? ""),
  "publish.yml: the publish step is a dry run or allows a dirty tree",
);

for (const workflow of [ci, publish]) {
  for (const job of Object.values(workflow.jobs ?? {})) {
    expect(
      job["timeout-minutes"] <= 90,
      `a job has no timeout of 90 minutes or less: ${
        JSON.stringify(job["runs-on"])
      }`,
    );
    for (const step of job.steps ?? []) {
      if (step.uses) {
        expect(
          /@v\d+$/.test(step.uses),
          `${step.uses} is not pinned to a major version`,
        );
      }
    }
  }
}

if (problems.length > 0) {
  process.stderr.write(
    `check_workflows: ${problems.join("\ncheck_workflows: ")}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  "Workflows: ci.yml and publish.yml parse and say what CONTRIBUTING.md says\n",
);
