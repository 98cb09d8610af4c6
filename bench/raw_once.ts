// Copyright 2026 the @x/port-reserve authors. MIT license.
// One proven reservation straight in the runtime's API (bench/raw.ts), its
// port printed: bench/startup.sh's floor for the command line's start-up.
import { rawReserve } from "./raw.ts";

// deno-lint-ignore no-console
console.log(await (await rawReserve("proof"))());
