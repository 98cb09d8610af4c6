// Copyright 2026 the @x/port-reserve authors. MIT license.
// A Deno test that holds a port and never releases it: mod_test.ts checks
// that Deno's sanitizer reports it as a leak, as the README says.
import { hold } from "../mod.ts";

Deno.test("a held port, never released", async () => {
  await hold();
});
