/**
 * @module
 * Commands for people: `vellum keygen`, `vellum submit`, `vellum verify`, `vellum inspect`,
 * `vellum query`, `vellum export`, one
 * file each under commands/. Errors are one line saying what to do, with an exit code from
 * src/cli/exit-codes.ts; `--json` prints one JSON document on standard output instead of text;
 * `verify` works offline with the log's key alone.
 */
import type { Command } from "commander";
import { registerAccess } from "./commands/access.js";
import { registerInspect } from "./commands/inspect.js";
import { registerKeygen } from "./commands/keygen.js";
import { registerExport, registerQuery } from "./commands/query.js";
import { registerSubmit } from "./commands/submit.js";
import { registerVerify } from "./commands/verify.js";

export function registerPeopleCommands(program: Command): void {
  registerKeygen(program);
  registerSubmit(program);
  registerVerify(program);
  registerInspect(program);
  registerQuery(program);
  registerExport(program);
  registerAccess(program);
}
