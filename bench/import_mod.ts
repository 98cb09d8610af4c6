// Copyright 2026 the @x/port-reserve authors. MIT license.
// Loads mod.ts and reserves nothing: what loading the module alone costs,
// for bench/startup.sh.
import { reserve } from "../mod.ts";

// deno-lint-ignore no-console
console.log(typeof reserve);
