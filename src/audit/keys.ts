/**
 * @module
 * What an event is about, for queries (spec/audit.md, "Event keys"): who acted, what they did,
 * and what they did it to, read from an OCSF event's attributes. Deterministic and published, so
 * anyone can recompute which events match a question (a time window filtered on the client, and
 * later the verifiable index).
 *
 *   actor     actor.user.uid, actor.user.name; for Authentication also user.uid, user.name
 *   action    api.operation (API Activity); the activity's name (Authentication: Logon, Logoff,
 *             Authentication Ticket, …), and activity_name when the event carries one
 *   resource  each resources[i].uid and resources[i].name
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
}

export interface EventFilter {
  readonly actor?: string;
  readonly action?: string;
  readonly resource?: string;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
const strings = (...vs: unknown[]) => vs.filter((v): v is string => typeof v === "string");

/** The keys of an event (empty lists for a value that is not an OCSF event). */
export function eventKeys(value: unknown): EventKeys {
  const e = obj(value);
  if (e === undefined) return { actors: [], actions: [], resources: [] };
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
  };
}

/** Whether the event has every key the filter names. */
export function matchesFilter(value: unknown, filter: EventFilter): boolean {
  const keys = eventKeys(value);
  return (
    (filter.actor === undefined || keys.actors.includes(filter.actor)) &&
    (filter.action === undefined || keys.actions.includes(filter.action)) &&
    (filter.resource === undefined || keys.resources.includes(filter.resource))
  );
}
