/**
 * The index log witnessed like the main log: with a witness policy, the index log publishes only
 * checkpoints its witness cosigned (the witness trusts `<origin>/index` under the log's key), and
 * an index answer verifies against such a checkpoint, cosignature included.
 */
import { describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { cosignatureVerifierFromKey } from "../../src/core/cosignature.js";
import { indexLogVerifierKey } from "../../src/core/index-answer.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { formatPolicy, parsePolicy } from "../../src/core/policy.js";
import { WitnessCollector } from "../../src/log/witnessing.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { apiActivity } from "../audit/events.js";
import { serveWitness } from "../helpers/witness.js";
import { ORIGIN, openMemoryLog } from "../log/helpers.js";
import { openMemoryIndexer } from "../server/helpers.js";

describe("the witnessed index log", () => {
  it("publishes only revisions its witness cosigned", async () => {
    const probe = await openMemoryLog();
    const logVkey = probe.log.signer.verifierKey;
    await probe.log.close();
    const indexVkey = indexLogVerifierKey(logVkey);
    const w = await serveWitness(1, logVkey, "index", [indexVkey]);
    const policy = (vkey: string) =>
      parsePolicy(
        formatPolicy({
          logs: [{ vkey }],
          witnesses: [{ name: w.name, vkey: w.vkey, url: w.url }],
          groups: [{ name: "one", threshold: 1, members: ["w1"] }],
          quorum: "one",
        }),
      );
    const witnessed = (vkey: string) => ({
      witnesses: new WitnessCollector(policy(vkey), { timeoutMs: 2000 }),
      receiptWaitMs: 2000,
      witnessRetryMs: 100,
    });
    const db = new MemoryDatabase();
    const { log } = await openMemoryLog(db, { batchMaxAgeMs: 0, ...witnessed(logVkey) });
    const indexer = await openMemoryIndexer(db, log, false, witnessed(indexVkey));
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    await log.submitMany([enc(apiActivity()), enc(apiActivity({ actor: { user: { uid: "x" } } }))]);
    await indexer.catchUp();
    const indexLog = indexer.indexLog;
    const published = indexLog.published!;
    expect(published.checkpoint.size).toBe(indexLog.size);
    // The index checkpoint carries the witness's cosignature, for the index origin.
    const opened = openCheckpoint(published.note, verifierFromKey(indexVkey), [
      cosignatureVerifierFromKey(w.vkey),
    ]);
    expect(opened.checkpoint.origin).toBe(`${ORIGIN}/index`);
    expect(opened.signatures.map((sig) => sig.name)).toContain(verifierFromKey(w.vkey).name);
    expect((await w.witness.latest(`${ORIGIN}/index`))?.size).toBe(indexLog.size);
    await indexer.close();
    await indexLog.close();
    await log.close();
  });
});
