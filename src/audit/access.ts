/**
 * @module
 * Who read what (spec/audit.md, "The access log"): every read that returns entry contents is
 * recorded, before it is answered, as an event of a second transparency log the server keeps,
 * the access log (`<origin>/access`). An access event is itself an OCSF 1.8.0 API Activity
 * event (class 6003, activity Read), logged as its RFC 8785 canonical bytes like any event, so
 * the same event keys (src/core/event-keys.ts) — actor = the token, action = the route, resource
 * = each entry read — make "who read entry N" and "what did token T read" ordinary queries.
 *
 * Fail closed: `record` resolves only once the event is durable in the access log; when it
 * cannot be recorded the read is refused (UNAVAILABLE, 503), never served unrecorded.
 */
import { utf8Encode } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";
import type { Log } from "../log/log.js";
import { canonicalBytes, LONE_SURROGATE } from "./canonical.js";

/** What one read returned, to whom. */
export interface AccessRecord {
  /** The token the read was made with; undefined for a public read. */
  readonly token: { readonly id: string; readonly name: string } | undefined;
  /** The client's address as the server saw it (a proxy's, behind one). */
  readonly client: string | undefined;
  readonly method: string;
  /** The route pattern, e.g. `/v1/entries/:index`. */
  readonly route: string;
  /** The query string asked, when it says what was read (queries, pages). */
  readonly query?: string;
  /** The log indices of the entries returned. */
  readonly entries: readonly number[];
  /** Whose entries: the log's (`entry:N`), or the access log's own (`access:N`). */
  readonly of?: "entry" | "access";
  /** The tenants the token is limited to, if it is. */
  readonly tenants?: readonly string[];
  /** The server's request id (X-Request-Id). */
  readonly requestId: string;
  /** Milliseconds since the epoch. */
  readonly time: number;
}

/** The OCSF API Activity event recording one read. */
export function accessEvent(r: AccessRecord): Record<string, unknown> {
  return {
    class_uid: 6003,
    category_uid: 6,
    activity_id: 2, // Read
    type_uid: 600302,
    time: r.time,
    severity_id: 1,
    status_id: 1,
    actor: {
      user:
        r.token === undefined
          ? { uid: "public", name: "public read (no token)" }
          : { uid: r.token.id, name: r.token.name },
    },
    api: {
      operation: `${r.method} ${r.route}`,
      request: { uid: r.requestId },
    },
    resources: r.entries.map((i) =>
      r.of === "access"
        ? { uid: `access:${i}`, type: "access record" }
        : { uid: `entry:${i}`, type: "log entry" },
    ),
    src_endpoint: r.client === undefined ? {} : { ip: r.client },
    metadata: { product: { name: "vellum", vendor_name: "Vellum" }, version: "1.8.0" },
    unmapped: {
      returned: r.entries.length,
      ...(r.query === undefined ? {} : { query: r.query }),
      ...(r.tenants === undefined ? {} : { tenants: r.tenants }),
    },
  };
}

/**
 * The RFC 8785 canonical bytes of accessEvent(r), written directly: its keys in their sorted
 * order, each string by JSON.stringify (JCS's escaping), each number an integer. Every read is
 * recorded, and the generic canonicalisation (a walk over the event object, then a sort of every
 * object's keys) was about a tenth of a recorded read's time on the event loop. The same bytes as
 * canonicalBytes(accessEvent(r)) for every record (a property test holds them equal); a string
 * that JCS refuses (a lone surrogate) goes the generic way, which refuses it.
 */
export function accessEventBytes(r: AccessRecord): Uint8Array {
  const strings = [r.method, r.route, r.requestId, ...(r.tenants ?? [])];
  if (r.token !== undefined) strings.push(r.token.id, r.token.name);
  if (r.client !== undefined) strings.push(r.client);
  if (r.query !== undefined) strings.push(r.query);
  const integers = [r.time, ...r.entries];
  if (
    strings.some((x) => LONE_SURROGATE.test(x)) ||
    !integers.every((n) => Number.isSafeInteger(n))
  ) {
    return canonicalBytes(accessEvent(r));
  }
  const q = JSON.stringify;
  const user =
    r.token === undefined
      ? '{"name":"public read (no token)","uid":"public"}'
      : `{"name":${q(r.token.name)},"uid":${q(r.token.id)}}`;
  const [kind, type] = r.of === "access" ? ["access", "access record"] : ["entry", "log entry"];
  let resources = "";
  for (let k = 0; k < r.entries.length; k++) {
    resources += `${k === 0 ? "" : ","}{"type":"${type}","uid":"${kind}:${r.entries[k]}"}`;
  }
  const unmapped =
    (r.query === undefined ? "" : `"query":${q(r.query)},`) +
    `"returned":${r.entries.length}` +
    (r.tenants === undefined ? "" : `,"tenants":[${r.tenants.map((t) => q(t)).join(",")}]`);
  return utf8Encode(
    `{"activity_id":2,"actor":{"user":${user}},"api":{"operation":${q(`${r.method} ${r.route}`)},"request":{"uid":${q(r.requestId)}}},` +
      `"category_uid":6,"class_uid":6003,"metadata":{"product":{"name":"vellum","vendor_name":"Vellum"},"version":"1.8.0"},` +
      `"resources":[${resources}],"severity_id":1,"src_endpoint":${r.client === undefined ? "{}" : `{"ip":${q(r.client)}}`},` +
      `"status_id":1,"time":${r.time},"type_uid":600302,"unmapped":{${unmapped}}}`,
  );
}

export class AccessRecorder {
  readonly log: Log;

  constructor(log: Log) {
    this.log = log;
  }

  /** Resolves once the read's event is durable in the access log; else refuses the read. */
  async record(r: AccessRecord): Promise<void> {
    try {
      await this.log.submit(accessEventBytes(r));
    } catch (e) {
      throw new VellumError(
        "UNAVAILABLE",
        `the read was not served: it could not be recorded in the access log (${(e as Error).message})`,
        { retryAfterMs: 1000, cause: e },
      );
    }
  }
}
