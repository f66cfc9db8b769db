/**
 * The layer check (scripts/check-layers.mjs, run by `npm run lint`): a fixture tree with one
 * import of each kind — allowed, refused, type-only — gets exactly the expected messages, naming
 * file, line and the rule broken; and the repository itself passes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without type declarations
import { checkLayers } from "../../scripts/check-layers.mjs";

const fixture = mkdtempSync(join(tmpdir(), "vellum-layers-"));
const write = (path: string, text: string) => {
  mkdirSync(dirname(join(fixture, path)), { recursive: true });
  writeFileSync(join(fixture, path), text);
};
afterAll(() => rmSync(fixture, { recursive: true, force: true }));

describe("layer check", () => {
  it("names each wrong import with its file, line and rule, and lets the right ones through", () => {
    write(
      "src/core/pure.ts",
      'import { x } from "./other.js";\nimport { readFileSync } from "node:fs";\n',
    );
    write("src/core/clock.ts", "export const now = () => Date.now();\n");
    write(
      "src/witness/w.ts",
      '// a witness must not reach into the log\nimport {\n  Log,\n} from "../log/log.js";\nimport { x } from "../core/bytes.js";\n',
    );
    write(
      "src/server/routes/r.ts",
      'import type { KeyValueStore } from "../../storage/types.js";\nimport { openLevelDatabase } from "../../storage/level.js";\nimport { Log } from "../../log/log.js";\n',
    );
    write("src/client/c.ts", 'export { Server } from "../server/app.js";\n');
    write(
      "src/cli/main.ts",
      'import { a } from "../server/app.js";\nimport { b } from "../storage/level.js";\n',
    );
    write(
      "web/main.ts",
      'import { c } from "../src/client/index.js";\nimport { d } from "../src/log/log.js";\n',
    );
    const problems: string[] = checkLayers(fixture);
    expect(problems.sort()).toEqual(
      [
        'src/core/pure.ts:2: imports "node:fs" — core is the pure verifier library: it imports nothing of ours (only ./ and @noble/*)',
        "src/core/clock.ts:1: uses Date.now — core is the pure verifier library: it imports nothing of ours, no I/O or clock",
        'src/witness/w.ts:2: witness imports log ("../log/log.js") — the witness never imports the log or the server',
        'src/server/routes/r.ts:2: server imports storage ("../../storage/level.js") — routes reach storage only through the log (type-only imports of the contract allowed)',
        'src/client/c.ts:1: client imports server ("../server/app.js") — the client never imports server, log or storage',
        'web/main.ts:2: web imports log ("../src/log/log.js") — the browser code speaks HTTP through the client only',
      ].sort(),
    );
  });

  it("passes on the repository itself", () => {
    expect(checkLayers(fileURLToPath(new URL("../../", import.meta.url)))).toEqual([]);
  });
});
