/**
 * `vellum witness` reloads its trusted logs from the trust file (--trust-file) without a restart: a log unknown
 * at start (404) is cosigned once its key is added to the file.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EMPTY_ROOT } from "../../src/core/rfc6962.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { startVellum } from "../helpers/processes.js";

describe("vellum witness --trust-file", () => {
  it("picks up a newly trusted log without a restart", { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-wconfig-"));
    const config = join(dir, "trusted.txt");
    writeFileSync(config, "# trusted logs\n");
    const w = await startVellum([
      "witness",
      "--data",
      join(dir, "w"),
      "--port",
      "0",
      "--trust-file",
      config,
    ]);
    try {
      const signer = new CheckpointSigner("reload.test/log", new Uint8Array(32).fill(5));
      const note = signer.sign(0, EMPTY_ROOT, Math.floor(Date.now() / 1000)).note;
      const add = () =>
        fetch(`${w.url}/add-checkpoint`, { method: "POST", body: `old 0\n\n${note}` });
      expect((await add()).status).toBe(404);
      writeFileSync(config, `# trusted logs\nlog ${signer.verifierKey}\n`);
      const deadline = Date.now() + 10_000;
      let status = 404;
      while (status === 404 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await add()).status;
      }
      expect(status).toBe(200);
      expect(w.output()).toMatch(/changed: trusting 1 log/);
    } finally {
      await w.stop();
    }
  });
});
