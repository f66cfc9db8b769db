/**
 * @module
 * A minimal Prometheus text-format (0.0.4) registry: counters and histograms with fixed label
 * sets, and gauges read at scrape time. Enough for Vellum's handful of series; no dependency.
 */
import type { LogConfig } from "../log/log.js";

/**
 * A counter with one label. inc() is on every request's path, so it is one Map lookup: the
 * label's text is escaped at render time, not per increment.
 */
class Counter {
  readonly #values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly label: string,
  ) {}
  inc(value: string, by = 1): void {
    this.#values.set(value, (this.#values.get(value) ?? 0) + by);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [value, n] of this.#values) {
      lines.push(`${this.name}{${this.label}="${value.replace(/["\\\n]/g, "_")}"} ${n}`);
    }
    return lines.join("\n");
  }
}

class Histogram {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.#counts[i]!++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => {
      lines.push(`${this.name}_bucket{le="${b}"} ${this.#counts[i]}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
    return lines.join("\n");
  }
}

class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number,
  ) {}
  render(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n${this.name} ${this.read()}`;
  }
}

export class Metrics {
  readonly submissions = new Counter(
    "vellum_submissions_total",
    "Entries submitted, by result (created, duplicate, error).",
    "result",
  );
  readonly errors = new Counter("vellum_errors_total", "Error answers, by error code.", "code");
  readonly requests = new Counter(
    "vellum_http_requests_total",
    "HTTP requests, by status class.",
    "class",
  );
  readonly batchSize = new Histogram(
    "vellum_batch_entries",
    "New entries per sequenced batch.",
    [1, 4, 16, 64, 256, 1024, 4096],
  );
  readonly sequencing = new Histogram(
    "vellum_sequencing_seconds",
    "Time from a batch leaving the queue to its signed checkpoint being stored.",
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly storageFailures = new Counter(
    "vellum_storage_failures_total",
    "Storage failures (failed writes, failed recovery attempts), by class (ENOSPC, EIO, EROFS, EDQUOT, CORRUPTION, OTHER).",
    "class",
  );
  readonly integrityFailures = new Counter(
    "vellum_integrity_failures_total",
    "Reads refused because stored data did not verify against the tree, by what failed (leaf, missing, lookup).",
    "kind",
  );
  readonly #gauges: Gauge[] = [];

  constructor() {
    // Present at 0 from the start, so an alert can watch for any increase.
    for (const kind of ["leaf", "missing", "lookup"]) this.integrityFailures.inc(kind, 0);
  }

  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.push(new Gauge(name, help, read));
  }

  render(): string {
    const parts = [
      this.submissions,
      this.errors,
      this.requests,
      this.integrityFailures,
      this.batchSize,
      this.sequencing,
      this.storageFailures,
    ];
    return `${[...parts, ...this.#gauges].map((m) => m.render()).join("\n")}\n`;
  }
}

/**
 * The log's hooks that feed these metrics (LogConfig's onBatch and onIntegrityFailure): how
 * `vellum serve` wires a log to its metrics, in one place that tests use too.
 */
export function logMetricHooks(
  metrics: Metrics,
): Required<Pick<LogConfig, "onBatch" | "onIntegrityFailure" | "onFailure">> {
  return {
    onBatch: (b) => {
      metrics.batchSize.observe(b.entries);
      metrics.sequencing.observe(b.ms / 1000);
    },
    onIntegrityFailure: (f) => metrics.integrityFailures.inc(f.kind),
    onFailure: (_error, event) => metrics.storageFailures.inc(event.class),
  };
}
