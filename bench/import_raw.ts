// Copyright 2026 the @x/port-reserve authors. MIT license.
// Loads bench/raw.ts and reserves nothing: with bench/import_mod.ts, what
// loading mod.ts costs over the module the raw reservations load, for
// bench/startup.sh.
import { rawReserve } from "./raw.ts";

// deno-lint-ignore no-console
console.log(typeof rawReserve);
