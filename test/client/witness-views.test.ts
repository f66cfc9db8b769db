/**
 * Comparing the log with what its witnesses cosigned: consistent views pass; a witness holding a
 * log-signed checkpoint of another history (a split view) is INCONSISTENT, with evidence that
 * verifyEvidence confirms from the signed checkpoints and the log's own tiles. A witness that is
 * ahead, has cosigned nothing, cannot be reached or serves another log's checkpoint is reported.
 */
import { afterAll, describe, expect, it } from "vitest";
import { Monitor } from "../../src/client/monitor.js";
import { verifyEvidence } from "../../src/client/monitor-evidence.js";
import { TileReader } from "../../src/client/tiles.js";
import { compareWitnessViews } from "../../src/client/witness-views.js";
import { base64Encode } from "../../src/core/bytes.js";
import { formatPolicy, parsePolicy } from "../../src/core/policy.js";
import { serveWitness } from "../helpers/witness.js";
import { openMemoryLog, payloadOf } from "../log/helpers.js";
import { closeAll, fillTo, startVellum } from "./tlog-fixtures.js";

afterAll(async () => {
  await closeAll();
});

describe("witness views", () => {
  it("agrees with honest witnesses and catches one that was shown another history", async () => {
    const log = await startVellum({ publicReads: true });
    await fillTo(log.log, 300);
    const honest = await serveWitness(1, log.vkey, "views");
    const misled = await serveWitness(2, log.vkey, "views");
    // The honest witness cosigns the real log's checkpoint.
    const real = log.log.checkpoint.note;
    expect((await honest.witness.addCheckpoint(`old 0\n\n${real}`)).status).toBe(200);
    // The other is shown a fork: same key, different entries, size 200.
    const { log: fork } = await openMemoryLog();
    for (let i = 0; i < 200; i++) await fork.submit(payloadOf(i, "fork"));
    expect((await misled.witness.addCheckpoint(`old 0\n\n${fork.checkpoint.note}`)).status).toBe(
      200,
    );

    const policyOf = (ws: { name: string; vkey: string; url: string }[]) =>
      parsePolicy(
        formatPolicy({ logs: [{ vkey: log.vkey }], witnesses: ws, groups: [], quorum: "none" }),
      );
    const reader = new TileReader({ url: log.url });
    const monitor = new Monitor({ reader, logKey: log.vkey });
    const r = await monitor.update();
    const args = {
      reader,
      logKey: log.vkey,
      checkpoint: r.checkpoint,
      size: r.size,
      rootHash: r.rootHash,
    };

    const views = await compareWitnessViews({
      ...args,
      policy: policyOf([{ name: "honest", vkey: honest.witness.verifierKey, url: honest.url }]),
    });
    expect(views).toEqual([
      expect.objectContaining({ witness: "honest", status: "consistent", size: 300 }),
    ]);

    const err = await compareWitnessViews({
      ...args,
      policy: policyOf([{ name: "misled", vkey: misled.witness.verifierKey, url: misled.url }]),
    }).catch((e) => e);
    expect(err.code).toBe("INCONSISTENT");
    const check = verifyEvidence(err.evidence, log.vkey);
    expect(check.summary).toMatch(/signed/);
    expect(err.evidence.actual).toBe(base64Encode(fork.checkpoint.checkpoint.rootHash));

    // The other states a witness can be in, each reported and none an error.
    const fresh = await serveWitness(3, log.vkey, "views"); // has cosigned nothing
    const gone = await serveWitness(4, log.vkey, "views");
    await gone.stop(); // connections refused
    const liar = await serveWitness(5, log.vkey, "views");
    const other = await startVellum({ log: { origin: "other.example/log" } });
    const views2 = await compareWitnessViews({
      ...args,
      size: 200, // below what the honest witness cosigned (300)
      policy: policyOf([
        { name: "honest", vkey: honest.witness.verifierKey, url: honest.url },
        { name: "fresh", vkey: fresh.witness.verifierKey, url: fresh.url },
        { name: "gone", vkey: gone.vkey, url: gone.url },
        { name: "liar", vkey: liar.vkey, url: "http://liar.example" },
      ]),
      // "liar" answers with a checkpoint some other log signed.
      fetch: async (url, init) =>
        String(url).startsWith("http://liar.example")
          ? new Response(other.log.checkpoint.note)
          : fetch(url, init),
    });
    expect(views2.map((v) => [v.witness, v.status])).toEqual([
      ["honest", "ahead"],
      ["fresh", "no-checkpoint"],
      ["gone", "unreachable"],
      ["liar", "unreachable"],
    ]);
    expect(views2[3]!.detail).toMatch(/^not a checkpoint signed by the log/);
    await fork.close();
  });
});
