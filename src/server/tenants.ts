/**
 * @module
 * Tenant-limited read tokens (spec/audit.md, "Tenant-limited reads"): a token created with
 * tenants sees, in JSON reads and index queries, only the OCSF events whose
 * `metadata.tenant_uid` is one of them; raw entry bundles and time windows, which would carry
 * other tenants' entries, are refused (403).
 */
import type { Context } from "hono";
import { eventKeys } from "../core/event-keys.js";
import type { Env } from "./http.js";
import { HttpProblem } from "./problem.js";

/** The tenants the request's token is limited to; undefined when it is not limited. */
export function tenantsOf(c: Context<Env>): readonly string[] | undefined {
  return c.get("token")?.tenants;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Whether an entry's payload is an event of one of `tenants`. */
export function visibleTo(tenants: readonly string[], payload: Uint8Array): boolean {
  if (payload[0] !== 0x7b) return false;
  try {
    return eventKeys(JSON.parse(utf8.decode(payload))).tenants.some((t) => tenants.includes(t));
  } catch {
    return false;
  }
}

export function notYourTenant(tenants: readonly string[], what: string): HttpProblem {
  return new HttpProblem(
    "FORBIDDEN",
    `this token reads only the events of ${tenants.map((t) => JSON.stringify(t)).join(", ")}: ${what}`,
  );
}
