/**
 * The witness's /metrics: its own registry with its own series (no log submission series), and
 * counts as counters (`_total` only on counters).
 */
import { describe, expect, it } from "vitest";
import { verifierFromKey } from "../../src/core/keys.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { createWitnessApp } from "../../src/witness/app.js";
import { WitnessMetrics } from "../../src/witness/metrics.js";
import { Witness } from "../../src/witness/witness.js";
import { ORIGIN, openMemoryLog, payloadOf } from "../log/helpers.js";

describe("witness /metrics", () => {
  it("exports the witness's series, counters as counters, and none of the log's", async () => {
    const { log } = await openMemoryLog();
    for (let i = 0; i < 3; i++) await log.submit(payloadOf(i));
    const witness = new Witness({
      name: "witness.test/w1",
      seed: new Uint8Array(32).fill(77),
      kv: new MemoryDatabase().namespace("witness"),
      trusted: new Map([[ORIGIN, [verifierFromKey(log.signer.verifierKey)]]]),
    });
    const app = createWitnessApp(witness, {
      metrics: new WitnessMetrics(witness, { processMetrics: true, version: "1.2.3" }),
    });
    const ok = await app.request("/add-checkpoint", {
      method: "POST",
      body: `old 0\n\n${log.checkpoint.note}`,
    });
    expect(ok.status).toBe(200);
    const bad = await app.request("/add-checkpoint", { method: "POST", body: "nonsense" });
    expect(bad.status).toBe(400);
    const text = await (await app.request("/metrics")).text();
    expect(text).not.toMatch(/vellum_submissions_total|vellum_batch_entries|vellum_sequencing/);
    expect(text).toMatch(/^# TYPE vellum_witness_cosigned_total counter$/m);
    expect(text).toMatch(/^vellum_witness_cosigned_total 1$/m);
    expect(text).toMatch(/^vellum_witness_refusals_total\{status="400"\} 1$/m);
    expect(text).toMatch(/^vellum_witness_http_requests_total\{class="2xx"\} 1$/m);
    expect(text).toMatch(/^# TYPE vellum_witness_evidence_total counter$/m);
    expect(text).toMatch(/^# TYPE vellum_witness_storage_write_failures_total counter$/m);
    expect(text).toMatch(/^# TYPE vellum_witness_storage_failing gauge$/m);
    expect(text).toMatch(/^vellum_build_info\{version="1\.2\.3",node="[\d.]+"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
    for (const [, name, type] of text.matchAll(/^# TYPE (vellum_\S+) (\S+)$/gm)) {
      expect(`${name} ${type}`).toMatch(
        type === "counter" ? /_total counter$/ : /^(?!.*_total ).*/,
      );
    }
  });
});
