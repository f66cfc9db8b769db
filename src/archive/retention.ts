/**
 * @module
 * Retention periods for WORM objects (`--retention 7y`): whole years (calendar years, so that
 * "7y" from 29 February still ends on or after the same date seven years on), days or hours.
 */
import { VellumError } from "../core/errors.js";

export interface RetentionPeriod {
  /** As written, e.g. "7y". */
  readonly text: string;
  readonly years: number;
  readonly ms: number;
}

const UNIT_MS = { d: 86_400_000, h: 3_600_000 } as const;

export function parseRetention(text: string): RetentionPeriod {
  const m = /^([1-9]\d{0,4})(y|d|h)$/.exec(text.trim());
  if (m === null) {
    throw new VellumError(
      "MALFORMED",
      `retention "${text}" is not a period: write a whole number of years, days or hours, e.g. 7y, 90d, 12h`,
    );
  }
  const n = Number(m[1]);
  const unit = m[2] as "y" | "d" | "h";
  if (unit === "y" && n > 100) {
    throw new VellumError("OUT_OF_RANGE", `retention "${text}": at most 100 years`);
  }
  return unit === "y"
    ? { text: m[0], years: n, ms: 0 }
    : { text: m[0], years: 0, ms: n * UNIT_MS[unit] };
}

/** When an object written at `from` may be deleted at the earliest. */
export function retainUntil(period: RetentionPeriod, from: Date): Date {
  const until = new Date(from.getTime() + period.ms);
  if (period.years > 0) until.setUTCFullYear(until.getUTCFullYear() + period.years);
  return until;
}
