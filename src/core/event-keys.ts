/**
 * @module
 * What an event is about, for queries (spec/audit.md, "Event keys"): who acted, what they did,
 * and what they did it to, read from an OCSF event's attributes. Deterministic and published, so
 * anyone can recompute which events match a question: a time window filtered on the client, or
 * the verifiable index (src/core/index-answer.ts), whose lists the monitor rebuilds from this
 * function alone.
 *
 *   actor     actor.user.uid, actor.user.name; for Authentication also user.uid, user.name
 *   action    api.operation (API Activity); the activity's name (Authentication: Logon, Logoff,
 *             Authentication Ticket, …), and activity_name when the event carries one
 *   resource  each resources[i].uid and resources[i].name
 *   tenant    metadata.tenant_uid
 *
 * Values are compared exactly (case and spaces matter): an audit question names what was logged.
 */

const AUTHENTICATION_ACTIVITIES: Record<number, string> = {
  0: "Unknown",
  1: "Logon",
  2: "Logoff",
  3: "Authentication Ticket",
  4: "Service Ticket Request",
  5: "Service Ticket Renew",
  6: "Preauth",
  7: "Account Switch",
  99: "Other",
};

export interface EventKeys {
  readonly actors: readonly string[];
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly tenants: readonly string[];
}

/** The kinds of key, in the order an event's keys are listed. */
export const KEY_KINDS = ["actor", "action", "resource", "tenant"] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

export interface IndexKey {
  readonly kind: KeyKind;
  readonly value: string;
}

export interface EventFilter {
  readonly actor?: string;
  readonly action?: string;
  readonly resource?: string;
  readonly tenant?: string;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;

/** Appends `v` when it is a string not yet in `out` (first occurrence kept, as a Set would). */
function addString(out: string[], v: unknown): void {
  if (typeof v === "string" && !out.includes(v)) out.push(v);
}

/**
 * The keys of an event (empty lists for a value that is not an OCSF event). Written as plain
 * loops over small arrays: the index calls it for every entry, and the spread-filter-Set form
 * of the same rules allocated several short-lived arrays and Sets per event.
 */
export function eventKeys(value: unknown): EventKeys {
  const actors: string[] = [];
  const actions: string[] = [];
  const resources: string[] = [];
  const tenants: string[] = [];
  const e = obj(value);
  if (e === undefined) return { actors, actions, resources, tenants };
  const actorUser = obj(obj(e.actor)?.user);
  addString(actors, actorUser?.uid);
  addString(actors, actorUser?.name);
  if (e.class_uid === 3002) {
    const user = obj(e.user);
    addString(actors, user?.uid);
    addString(actors, user?.name);
  }
  addString(actions, obj(e.api)?.operation);
  if (e.class_uid === 3002) addString(actions, AUTHENTICATION_ACTIVITIES[e.activity_id as number]);
  addString(actions, e.activity_name);
  if (Array.isArray(e.resources)) {
    for (const r of e.resources) {
      const o = obj(r);
      addString(resources, o?.uid);
      addString(resources, o?.name);
    }
  }
  const tenant = obj(e.metadata)?.tenant_uid;
  if (typeof tenant === "string") tenants.push(tenant);
  return { actors, actions, resources, tenants };
}

const KIND_FIELD = {
  actor: "actors",
  action: "actions",
  resource: "resources",
  tenant: "tenants",
} as const satisfies Record<KeyKind, keyof EventKeys>;

/**
 * The properties eventKeys reads a key from (or, for user and activity_id, with class_uid 3002),
 * each in quotes, as JSON writes a name without escapes.
 */
const KEY_NAMES = [
  "actor",
  "user",
  "api",
  "activity_id",
  "activity_name",
  "resources",
  "metadata",
].map((name) => new TextEncoder().encode(`"${name}"`));

/**
 * False when the payload cannot have an event key, decided without parsing it: it holds no
 * backslash (so every string in it is written as its own bytes) and none of KEY_NAMES. Then no
 * object in it has a property eventKeys reads, and indexKeysOfPayload's answer is [] as parsing
 * would find. Most entries of a log that is not kept for events look like that, and parsing each
 * was most of what the index did per entry for them. A backslash anywhere (an escaped name such
 * as "\u0061ctor" parses to "actor") means: parse.
 */
function mayHoldKeys(payload: Uint8Array): boolean {
  for (let i = 0; i < payload.length; i++) {
    const b = payload[i]!;
    if (b === 0x5c) return true;
    if (b !== 0x22) continue;
    for (const name of KEY_NAMES) {
      if (payload[i + 1] !== name[1] || i + name.length > payload.length) continue;
      let k = 2;
      while (k < name.length && payload[i + k] === name[k]) k++;
      if (k === name.length) return true;
    }
  }
  return false;
}

/** Refuses bytes that are not UTF-8 (a payload that is not text is not an event). */
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The index keys of an entry's payload: its event keys, kind by kind, when the payload is JSON
 * (an event's canonical bytes); none otherwise. This is the published function the verifiable
 * index applies to every entry, in this order.
 */
export function indexKeysOfPayload(payload: Uint8Array): IndexKey[] {
  // An event's canonical bytes start with "{" (0x7b); anything else is not an event.
  if (payload.length === 0 || payload[0] !== 0x7b) return [];
  if (!mayHoldKeys(payload)) return [];
  let value: unknown;
  try {
    value = JSON.parse(STRICT_UTF8.decode(payload));
  } catch {
    return [];
  }
  const keys = eventKeys(value);
  const out: IndexKey[] = [];
  for (const kind of KEY_KINDS)
    for (const v of keys[KIND_FIELD[kind]]) out.push({ kind, value: v });
  return out;
}

/** Whether an event has the key. */
export function hasKey(value: unknown, key: IndexKey): boolean {
  return eventKeys(value)[KIND_FIELD[key.kind]].includes(key.value);
}

/** Whether the event has every key the filter names. */
export function matchesFilter(value: unknown, filter: EventFilter): boolean {
  const keys = eventKeys(value);
  return (
    (filter.actor === undefined || keys.actors.includes(filter.actor)) &&
    (filter.action === undefined || keys.actions.includes(filter.action)) &&
    (filter.resource === undefined || keys.resources.includes(filter.resource)) &&
    (filter.tenant === undefined || keys.tenants.includes(filter.tenant))
  );
}
