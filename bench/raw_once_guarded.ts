// Copyright 2026 the @x/port-reserve authors. MIT license.
// raw_once.ts with the guarantees at their cheapest (bench/raw.ts `guarded`:
// the permission query, the deadline, the abortable connect, the peer
// check): what they alone add to the floor, for bench/startup.sh.
import { rawReserve } from "./raw.ts";

// deno-lint-ignore no-console
console.log(await (await rawReserve("guarded"))());
