// Copyright 2026 the @x/port-reserve authors. MIT license.
// deno-lint-ignore-file explicit-function-return-type -- plain JavaScript for Node 20, which runs npm test
// `deno install -g -N -n port-reserve ./cli.ts` from this checkout, as a new
// user would with Deno on PATH, into a temporary DENO_INSTALL_ROOT: the
// installed command must run and print deno.json's version. The command it
// installs runs `deno` from PATH and this checkout's cli.ts.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const { version } = JSON.parse(readFileSync(`${root}deno.json`, "utf8"));
const installRoot = mkdtempSync(join(tmpdir(), "port-reserve-install-"));
const env = {
  ...process.env,
  NO_COLOR: "1",
  DENO_INSTALL_ROOT: installRoot,
  PATH: `${root}node_modules/.bin${delimiter}${process.env.PATH}`,
};
const run = (command, args) => {
  const result = spawnSync(command, args, {
    cwd: root,
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
  process.stdout.write(result.stdout ?? "");
  process.stderr.write(result.stderr ?? "");
  return result;
};
try {
  const install = run("deno", [
    "install",
    "-g",
    "-N",
    "-n",
    "port-reserve",
    "./cli.ts",
  ]);
  if (install.status !== 0) fail(`deno install exited ${install.status}`);
  const installed = run(join(installRoot, "bin", "port-reserve"), [
    "--version",
  ]);
  if (installed.status !== 0 || installed.stdout !== `${version}\n`) {
    fail(
      `The installed port-reserve --version gave status ${installed.status} ` +
        `and ${JSON.stringify(installed.stdout)}, not ${version}`,
    );
  }
  process.stdout.write(`Installed: port-reserve --version prints ${version}\n`);
} finally {
  rmSync(installRoot, { recursive: true, force: true });
}

function fail(message) {
  rmSync(installRoot, { recursive: true, force: true });
  process.stderr.write(`check_install: ${message}\n`);
  process.exit(1);
}
