/**
 * @module
 * The witness's Prometheus metrics, in a registry of its own: what a witness does (requests,
 * refusals by status, cosignatures, evidence, storage failures), nothing of a log's. Counts the
 * witness keeps itself (evidence, storage failures) are exported as counters read at scrape time;
 * `_total` only on counters, `vellum_witness_storage_failing` a gauge (0/1).
 */

import { Counter, Registry } from "prom-client";
import { readCounter, readGauge, registerStandardMetrics } from "../platform/metrics.js";
import type { Witness } from "./witness.js";

export { METRICS_CONTENT_TYPE as WITNESS_METRICS_CONTENT_TYPE } from "../platform/metrics.js";

export interface WitnessMetricsOptions {
  /** Also export process_* and nodejs_* metrics (the CLI does). */
  readonly processMetrics?: boolean;
  readonly version?: string;
}

export class WitnessMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "vellum_witness_http_requests_total",
    help: "HTTP requests answered, by status class.",
    labelNames: ["class"],
    registers: [this.registry],
  });
  readonly refusals = new Counter({
    name: "vellum_witness_refusals_total",
    help: "add-checkpoint requests refused, and reads refused while storage fails, by HTTP status.",
    labelNames: ["status"],
    registers: [this.registry],
  });
  readonly cosigned = new Counter({
    name: "vellum_witness_cosigned_total",
    help: "Checkpoints cosigned since start.",
    registers: [this.registry],
  });

  constructor(witness: Witness, options: WitnessMetricsOptions = {}) {
    const _registers = [this.registry];
    /** A counter whose value the witness keeps: set from it at each scrape. */
    const counted = (name: string, help: string, read: () => number) =>
      readCounter(this.registry, name, help, read);
    const stats = witness.evidenceStats;
    counted(
      "vellum_witness_evidence_total",
      "Provable conflicts kept as evidence, since start.",
      () => stats.kept,
    );
    counted(
      "vellum_witness_evidence_duplicate_total",
      "Provable conflicts already kept (not stored again), since start.",
      () => stats.duplicate,
    );
    counted(
      "vellum_witness_evidence_over_limit_total",
      "Provable conflicts not kept: the log's evidence bound is reached. Since start.",
      () => stats.limit,
    );
    counted(
      "vellum_witness_evidence_too_large_total",
      "Provable conflicts not kept: the record exceeds its size bound. Since start.",
      () => stats.tooLarge,
    );
    counted(
      "vellum_witness_unprovable_conflicts_total",
      "422 refusals of signed checkpoints that prove nothing (nothing kept), since start.",
      () => stats.unprovable,
    );
    counted(
      "vellum_witness_storage_write_failures_total",
      "Failed storage writes since start.",
      () => witness.storageFailures.writes,
    );
    counted(
      "vellum_witness_storage_read_failures_total",
      "Failed storage reads since start.",
      () => witness.storageFailures.reads,
    );
    readGauge(
      this.registry,
      "vellum_witness_storage_failing",
      "1 while a failed storage write stops the witness (until the store is reopened), else 0.",
      () => (witness.storageFailure === undefined ? 0 : 1),
    );
    readGauge(
      this.registry,
      "vellum_witness_trusted_logs",
      "Logs this witness cosigns for.",
      () => witness.trustedOrigins.length,
    );
    registerStandardMetrics(this.registry, options);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
