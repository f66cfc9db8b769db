/**
 * @module
 * What the server's and the witness's Prometheus metrics share (prom-client): the exposition
 * content type, the build-info gauge (and, for the CLI, process metrics), and
 * metrics whose values their owner keeps and which are read at scrape time — a gauge, a counter
 * of a running total, a counter with one label counted in a Map. Each process part keeps its own
 * registry (server/metrics.ts, witness/metrics.ts); nothing here knows a log or a witness.
 */
import { Counter, collectDefaultMetrics, Gauge, type Registry } from "prom-client";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface RegistryOptions {
  /** Also export process_* and nodejs_* metrics (the CLI does; tests do not). */
  readonly processMetrics?: boolean;
  readonly version?: string;
}

/** Adds `vellum_build_info` (and process metrics when asked) to a registry. */
export function registerStandardMetrics(registry: Registry, options: RegistryOptions = {}): void {
  new Gauge({
    name: "vellum_build_info",
    help: "1, labelled with the running version of Vellum and Node.js.",
    labelNames: ["version", "node"],
    registers: [registry],
  }).set({ version: options.version ?? "unknown", node: process.versions.node }, 1);
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry });
}

/** A gauge whose value is read when /metrics is scraped. */
export function readGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number,
): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter of a total its owner keeps, read when /metrics is scraped. */
export function readCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number,
): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with one label: counted in a Map, exported at scrape time. */
export class LabeledCounter {
  readonly #values = new Map<string, number>();
  constructor(registry: Registry, name: string, help: string, label: string) {
    const values = this.#values;
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, n] of values) this.inc({ [label]: value }, n);
      },
    });
  }
  inc(value: string, by = 1): void {
    this.#values.set(value, (this.#values.get(value) ?? 0) + by);
  }
}
