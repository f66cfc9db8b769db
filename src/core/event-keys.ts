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
const strings = (...vs: unknown[]) => vs.filter((v): v is string => typeof v === "string");

/** The keys of an event (empty lists for a value that is not an OCSF event). */
export function eventKeys(value: unknown): EventKeys {
  const e = obj(value);
  if (e === undefined) return { actors: [], actions: [], resources: [], tenants: [] };
  const actorUser = obj(obj(e.actor)?.user);
  const user = e.class_uid === 3002 ? obj(e.user) : undefined;
  const actors = strings(actorUser?.uid, actorUser?.name, user?.uid, user?.name);
  const actions = strings(
    obj(e.api)?.operation,
    e.class_uid === 3002 ? AUTHENTICATION_ACTIVITIES[e.activity_id as number] : undefined,
    e.activity_name,
  );
  const resources = (Array.isArray(e.resources) ? e.resources : []).flatMap((r) =>
    strings(obj(r)?.uid, obj(r)?.name),
  );
  return {
    actors: [...new Set(actors)],
    actions: [...new Set(actions)],
    resources: [...new Set(resources)],
    tenants: strings(obj(e.metadata)?.tenant_uid),
  };
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
  return KEY_KINDS.flatMap((kind) => keys[KIND_FIELD[kind]].map((v) => ({ kind, value: v })));
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
