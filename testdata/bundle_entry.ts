// Copyright 2026 the @x/port-reserve authors. MIT license.
// An entry for cli_test.ts that a bundler inlines mod.ts and cli.ts into:
// running the bundle must run this module alone, never the command line.
import { reserve } from "../mod.ts";
import { main } from "../cli.ts";

// deno-lint-ignore no-console
console.log(typeof reserve, typeof main);
