/**
 * @module
 * The log server's Prometheus metrics, kept by prom-client in a registry of their own (one per
 * server, so two apps in one process never share a series). Names follow Prometheus conventions:
 * `_total` only on counters, base units in the name (`_seconds`), one `_info` gauge at 1 carrying
 * the build. What every request touches (LabeledCounter, RouteHistogram) is counted in plain
 * numbers and handed to prom-client when /metrics is scraped: prom-client's own inc/observe hash
 * the label set on every call, which cost ~2 µs of every request (measured in-process).
 */

import { type Gauge, Histogram, Registry } from "prom-client";
import { type Logger, silentLogger } from "../core/logger.js";
import type { Log, LogConfig } from "../log/log.js";
import { LabeledCounter, readGauge, registerStandardMetrics } from "../platform/metrics.js";

/** The text format's content type (prom-client's, the 0.0.4 exposition format). */
export { METRICS_CONTENT_TYPE } from "../platform/metrics.js";

interface RouteSeries {
  readonly route: string;
  readonly method: string;
  readonly buckets: number[];
  sum: number;
  count: number;
}

/**
 * A histogram by route and method, counted in plain arrays and exported in prom-client's metric
 * shape (registered as a custom metric: `get()` returns the samples).
 */
class RouteHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #series = new Map<string, RouteSeries>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly upperBounds: readonly number[],
  ) {}

  observe(method: string, route: string, seconds: number): void {
    const key = `${method} ${route}`;
    let s = this.#series.get(key);
    if (s === undefined) {
      s = { route, method, buckets: this.upperBounds.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    s.sum += seconds;
    s.count++;
    const bounds = this.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]!) {
        s.buckets[i]!++;
        break;
      }
    }
  }

  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] =
      [];
    for (const s of this.#series.values()) {
      const labels = { route: s.route, method: s.method };
      let cumulative = 0;
      this.upperBounds.forEach((le, i) => {
        cumulative += s.buckets[i]!;
        values.push({
          labels: { ...labels, le },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        labels: { ...labels, le: "+Inf" },
        value: s.count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.name}_count` });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    };
  }
}

/** Request latency buckets, seconds: from a cached proof (~0.1 ms) to a slow batch (seconds). */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export interface MetricsOptions {
  /** Also export process_* and nodejs_* metrics (prom-client's defaults): the CLI does. */
  readonly processMetrics?: boolean;
  /** The running version, for vellum_build_info. */
  readonly version?: string;
}

export class Metrics {
  readonly registry = new Registry();
  readonly submissions = new LabeledCounter(
    this.registry,
    "vellum_submissions_total",
    "Entries submitted, by result (created, duplicate, error).",
    "result",
  );
  readonly errors = new LabeledCounter(
    this.registry,
    "vellum_errors_total",
    "Error answers, by error code.",
    "code",
  );
  readonly requests = new LabeledCounter(
    this.registry,
    "vellum_http_requests_total",
    "HTTP requests, by status class.",
    "class",
  );
  readonly batchSize = new Histogram({
    name: "vellum_batch_entries",
    help: "New entries per sequenced batch.",
    buckets: [1, 4, 16, 64, 256, 1024, 4096],
    registers: [this.registry],
  });
  readonly sequencing = new Histogram({
    name: "vellum_sequencing_seconds",
    help: "Time from a batch leaving the queue to its signed checkpoint being stored.",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly storageFailures = new LabeledCounter(
    this.registry,
    "vellum_storage_failures_total",
    "Storage failures (failed writes, failed recovery attempts), by class (ENOSPC, EIO, EROFS, EDQUOT, CORRUPTION, OTHER).",
    "class",
  );
  readonly integrityFailures = new LabeledCounter(
    this.registry,
    "vellum_integrity_failures_total",
    "Reads refused because stored data did not verify against the tree, by what failed (leaf, missing, lookup).",
    "kind",
  );
  /** By route pattern (e.g. /v1/entries/:index) and method; unmatched paths are "unmatched". */
  readonly #requestDuration = new RouteHistogram(
    "vellum_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by route pattern and method.",
    LATENCY_BUCKETS,
  );
  readonly witnessRound = new Histogram({
    name: "vellum_witness_round_seconds",
    help: "Time to collect cosignatures for one checkpoint from the policy's witnesses, by whether the quorum was met.",
    labelNames: ["quorum"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    // Present at 0 from the start, so an alert can watch for any increase.
    for (const kind of ["leaf", "missing", "lookup"]) this.integrityFailures.inc(kind, 0);
    for (const cls of ["ENOSPC", "EDQUOT", "EIO", "EROFS", "CORRUPTION", "OTHER"]) {
      this.storageFailures.inc(cls, 0);
    }
    registerStandardMetrics(this.registry, options);
    // A custom collector in prom-client's metric shape (Registry.registerMetric takes any).
    this.registry.registerMetric(this.#requestDuration as unknown as Gauge);
  }

  /** Records one answered request's latency (seconds) under its route pattern. */
  observeRequest(method: string, route: string, seconds: number): void {
    this.#requestDuration.observe(method, route, seconds);
  }

  /** A gauge read when /metrics is scraped. */
  gauge(name: string, help: string, read: () => number): void {
    readGauge(this.registry, name, help, read);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * The log's hooks that feed these metrics (LogConfig's onBatch and onIntegrityFailure), and say
 * each integrity failure in the server's log: how `vellum serve` wires a log to its metrics, in
 * one place that tests use too.
 */
export function logMetricHooks(
  metrics: Metrics,
  logger: Logger = silentLogger,
): Required<Pick<LogConfig, "onBatch" | "onIntegrityFailure" | "onFailure">> {
  return {
    onBatch: (b) => {
      metrics.batchSize.observe(b.entries);
      metrics.sequencing.observe(b.ms / 1000);
    },
    onIntegrityFailure: (f) => {
      metrics.integrityFailures.inc(f.kind);
      logger.error({ kind: f.kind, index: f.index }, `integrity failure: ${f.detail}`);
    },
    onFailure: (_error, event) => metrics.storageFailures.inc(event.class),
  };
}

/** The log's state as gauges: failed or not, published size, queue, checkpoint age. */
export function logGauges(metrics: Metrics, log: Log): void {
  metrics.gauge(
    "vellum_storage_failed",
    "1 while the log acknowledges nothing after a storage failure, else 0.",
    () => (log.status === "failed" ? 1 : 0),
  );
  metrics.gauge("vellum_tree_size", "Entries in the latest published checkpoint.", () => log.size);
  metrics.gauge("vellum_queue_entries", "Entries waiting to be sequenced.", () => log.queueLength);
  metrics.gauge(
    "vellum_checkpoint_age_seconds",
    "Seconds since the latest published checkpoint was signed (its timestamp).",
    () => Math.max(0, Date.now() / 1000 - log.checkpoint.time),
  );
}
