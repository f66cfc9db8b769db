/**
 * `vellum verify --policy`: a receipt from a witnessed log verifies with the witnesses' quorum,
 * and a tampered or missing cosignature is refused with the reason.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { base64Decode, base64Encode } from "../../src/core/bytes.js";
import { formatPolicy, parsePolicy } from "../../src/core/policy.js";
import { WitnessCollector } from "../../src/log/witnessing.js";
import { runVellum } from "../helpers/cli.js";
import { serveWitness } from "../helpers/witness.js";
import { openMemoryLog, payloadOf } from "../log/helpers.js";

describe("vellum verify --policy", () => {
  it("checks the witness quorum and refuses a tampered or missing cosignature", async () => {
    const probe = await openMemoryLog();
    const logVkey = probe.log.signer.verifierKey;
    await probe.log.close();
    const members = await Promise.all([1, 2].map((n) => serveWitness(n, logVkey, "cli.test")));
    const policyText = formatPolicy({
      logs: [{ vkey: logVkey }],
      witnesses: members,
      groups: [{ name: "both", threshold: "all", members: ["w1", "w2"] }],
      quorum: "both",
    });
    const { log } = await openMemoryLog(undefined, {
      witnesses: new WitnessCollector(parsePolicy(policyText)),
    });
    const r = await log.submit(payloadOf(1));
    expect(r.witnessed).toBe(true);
    const text = await r.tlogProof();
    await log.close();

    const dir = mkdtempSync(join(tmpdir(), "vellum-verify-policy-"));
    const policy = join(dir, "policy.txt");
    writeFileSync(policy, policyText);
    const verify = (receipt: string) => {
      const file = join(dir, `r${Math.random()}.tlog-proof`);
      writeFileSync(file, receipt);
      return runVellum(["verify", file, "--key", logVkey, "--policy", policy]);
    };
    const ok = verify(text);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/cosigned by w1, w2/);

    const lines = text.split("\n");
    const w1 = lines.findIndex((l) => l.startsWith("— w1.cli.test/witness "));
    const flipped = lines.map((l, i) => {
      if (i !== w1) return l;
      const [dash, name, sig] = l.split(" ");
      const bytes = base64Decode(sig!);
      bytes[20]! ^= 1;
      return `${dash} ${name} ${base64Encode(bytes)}`;
    });
    const bad = verify(flipped.join("\n"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/BAD_SIGNATURE/);
    const missing = verify(lines.filter((_, i) => i !== w1).join("\n"));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/QUORUM_NOT_MET: .*w1/);
  });
});
