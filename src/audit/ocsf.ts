/**
 * @module
 * Audit events in the Open Cybersecurity Schema Framework, pinned to **OCSF 1.8.0**
 * (github.com/ocsf/ocsf-schema, tag 1.8.0, Apache-2.0): the classes API Activity (6003) and
 * Authentication (3002), checked as the schema defines them — the base event's required
 * attributes (`class_uid`, `category_uid`, `activity_id`, `type_uid` = class_uid·100 +
 * activity_id, `time`, `severity_id`, `metadata` with `product` and `version`), each class's own
 * (API Activity: `actor`, `api.operation`, `src_endpoint`; Authentication: `user`), the enums
 * (severity_id, status_id, activity_id) and the types of the attributes Vellum reads
 * (`resources[]`, `status`, `metadata.uid`, entity `name`/`uid`). Unknown attributes are kept as
 * they are: the schema is open, and profiles and extensions add their own.
 *
 * Hand-written rather than generated from the schema: the two classes need a few dozen checks,
 * and each failure names the field's JSON pointer (INVALID_EVENT, "/actor/user/uid: …").
 */
import { VellumError } from "../core/errors.js";

export const OCSF_VERSION = "1.8.0";

/** The classes Vellum validates: class_uid → its name, category and activities. */
export const OCSF_CLASSES = {
  6003: { name: "API Activity", category: 6, activities: [0, 1, 2, 3, 4, 99] },
  3002: { name: "Authentication", category: 3, activities: [0, 1, 2, 3, 4, 5, 6, 7, 99] },
} as const;

export type OcsfClassUid = keyof typeof OCSF_CLASSES;

/** base_event severity_id: Unknown, Informational, Low, Medium, High, Critical, Fatal, Other. */
const SEVERITY_IDS = [0, 1, 2, 3, 4, 5, 6, 99];
/** base_event status_id: Unknown, Success, Failure, Other. */
const STATUS_IDS = [0, 1, 2, 99];

/** An OCSF event as JSON: the attributes Vellum reads are typed, the rest kept as they are. */
export interface OcsfEvent {
  readonly class_uid: OcsfClassUid;
  readonly category_uid: number;
  readonly activity_id: number;
  readonly type_uid: number;
  readonly time: number;
  readonly severity_id: number;
  readonly metadata: {
    readonly product: Record<string, unknown>;
    readonly version: string;
    readonly uid?: string;
  };
  readonly [attribute: string]: unknown;
}

type Json = Record<string, unknown>;

const fail = (path: string, message: string): never => {
  throw new VellumError("INVALID_EVENT", `${path}: ${message}`);
};

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function object(parent: Json, key: string, path: string, required: boolean): Json | undefined {
  const v = parent[key];
  if (v === undefined) return required ? fail(`${path}/${key}`, "is required") : undefined;
  return isObject(v) ? v : fail(`${path}/${key}`, "must be an object");
}

function string(parent: Json, key: string, path: string, required: boolean): string | undefined {
  const v = parent[key];
  if (v === undefined) return required ? fail(`${path}/${key}`, "is required") : undefined;
  return typeof v === "string" ? v : fail(`${path}/${key}`, "must be a string");
}

function integer(parent: Json, key: string, path: string, allowed?: readonly number[]): number {
  const v = parent[key];
  if (v === undefined) return fail(`${path}/${key}`, "is required");
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    return fail(`${path}/${key}`, "must be an integer");
  }
  if (allowed !== undefined && !allowed.includes(v)) {
    return fail(`${path}/${key}`, `${v} is not one of ${allowed.join(", ")}`);
  }
  return v;
}

/** An OCSF entity (_entity): `name` and `uid` strings, at least one of them. */
function entity(v: Json, path: string): void {
  const name = string(v, "name", path, false);
  const uid = string(v, "uid", path, false);
  if (name === undefined && uid === undefined) fail(path, "needs a name or a uid");
}

/** actor: at least a user, process, session or app (OCSF's at_least_one), a user an entity. */
function actor(e: Json, path: string): void {
  const a = object(e, "actor", path, true)!;
  const user = object(a, "user", `${path}/actor`, false);
  if (user !== undefined) entity(user, `${path}/actor/user`);
  if (!["user", "process", "session", "app_name", "app_uid", "invoked_by"].some((k) => k in a)) {
    fail(`${path}/actor`, "needs at least one of user, process, session, app_name, app_uid");
  }
}

/** src_endpoint (network_endpoint): at least one of ip, hostname, name, uid, as strings. */
function endpoint(e: Json, key: string, path: string, required: boolean): void {
  const ep = object(e, key, path, required);
  if (ep === undefined) return;
  const at = `${path}/${key}`;
  const present = ["ip", "hostname", "name", "uid", "domain", "instance_uid"].filter(
    (k) => string(ep, k, at, false) !== undefined,
  );
  if (present.length === 0) fail(at, "needs at least one of ip, hostname, name, uid");
}

function resources(e: Json, path: string): void {
  const v = e.resources;
  if (v === undefined) return;
  if (!Array.isArray(v)) fail(`${path}/resources`, "must be an array");
  (v as unknown[]).forEach((r, i) => {
    const at = `${path}/resources/${i}`;
    if (!isObject(r)) fail(at, "must be an object");
    else {
      entity(r, at);
      string(r, "type", at, false);
    }
  });
}

function metadata(e: Json, path: string): void {
  const m = object(e, "metadata", path, true)!;
  const at = `${path}/metadata`;
  const product = object(m, "product", at, true)!;
  string(product, "name", `${at}/product`, false);
  string(product, "vendor_name", `${at}/product`, false);
  string(product, "version", `${at}/product`, false);
  string(m, "version", at, true);
  string(m, "uid", at, false);
}

/**
 * Checks `value` (parsed JSON) as an OCSF event of a supported class; returns it unchanged (with
 * its unknown attributes). Throws INVALID_EVENT naming the first field that is wrong.
 */
export function validateOcsfEvent(value: unknown, path = ""): OcsfEvent {
  if (!isObject(value)) return fail(path || "/", "an event must be a JSON object");
  const e = value;
  const classUid = integer(e, "class_uid", path);
  const cls = OCSF_CLASSES[classUid as OcsfClassUid];
  if (cls === undefined) {
    fail(
      `${path}/class_uid`,
      `class ${classUid} is not supported (OCSF ${OCSF_VERSION}: ${Object.entries(OCSF_CLASSES)
        .map(([uid, c]) => `${uid} ${c.name}`)
        .join(", ")})`,
    );
  }
  integer(e, "category_uid", path, [cls.category]);
  const activity = integer(e, "activity_id", path, cls.activities);
  const typeUid = integer(e, "type_uid", path);
  if (typeUid !== classUid * 100 + activity) {
    fail(
      `${path}/type_uid`,
      `must be class_uid × 100 + activity_id = ${classUid * 100 + activity}`,
    );
  }
  const time = integer(e, "time", path);
  if (time < 0) fail(`${path}/time`, "must be milliseconds since the Unix epoch");
  integer(e, "severity_id", path, SEVERITY_IDS);
  if (e.status_id !== undefined) integer(e, "status_id", path, STATUS_IDS);
  string(e, "status", path, false);
  string(e, "message", path, false);
  metadata(e, path);
  resources(e, path);
  if (classUid === 6003) {
    actor(e, path);
    const api = object(e, "api", path, true)!;
    string(api, "operation", `${path}/api`, true);
    endpoint(e, "src_endpoint", path, true);
  } else {
    const user = object(e, "user", path, true)!;
    entity(user, `${path}/user`);
    if (e.actor !== undefined) actor(e, path);
    endpoint(e, "src_endpoint", path, false);
    endpoint(e, "dst_endpoint", path, false);
  }
  return e as OcsfEvent;
}
