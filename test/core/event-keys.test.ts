/** Event keys (src/core/event-keys.ts): who, what and on what, read from OCSF attributes, exactly. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  eventKeys,
  type IndexKey,
  indexKeysOfPayload,
  KEY_KINDS,
  matchesFilter,
} from "../../src/core/event-keys.js";
import { apiActivity, authentication } from "../audit/events.js";

/**
 * eventKeys as first written (spread, filter, Set): the rules in their plainest form, the
 * reference for the loop form the index runs for every entry.
 */
function referenceEventKeys(value: unknown) {
  type Json = Record<string, unknown>;
  const obj = (v: unknown): Json | undefined =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
  const strings = (...vs: unknown[]) => vs.filter((v): v is string => typeof v === "string");
  const activities: Record<number, string> = {
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
  const e = obj(value);
  if (e === undefined) return { actors: [], actions: [], resources: [], tenants: [] };
  const actorUser = obj(obj(e.actor)?.user);
  const user = e.class_uid === 3002 ? obj(e.user) : undefined;
  const actors = strings(actorUser?.uid, actorUser?.name, user?.uid, user?.name);
  const actions = strings(
    obj(e.api)?.operation,
    e.class_uid === 3002 ? activities[e.activity_id as number] : undefined,
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

describe("event keys", () => {
  it("reads actor, action and resources from an API Activity", () => {
    expect(eventKeys(apiActivity())).toEqual({
      actors: ["alice", "Alice"],
      actions: ["UpdateInvoice"],
      resources: ["invoice-42"],
      tenants: [],
    });
  });

  it("reads the user and the activity's name from an Authentication", () => {
    expect(eventKeys(authentication())).toEqual({
      actors: ["bob"],
      actions: ["Logon"],
      resources: [],
      tenants: [],
    });
  });

  it("follows the rules as first written, on events of every shape", () => {
    const text = fc.oneof(
      fc.constantFrom("alice", "Alice", "bob", "Logon", "r1", "r2", ""),
      fc.string({ maxLength: 4 }),
    );
    const value = fc.oneof(text, fc.integer({ min: 0, max: 8 }), fc.constant(null), fc.boolean());
    const named = (names: string[]) =>
      fc.dictionary(fc.constantFrom(...names), fc.oneof(value, fc.array(value, { maxLength: 2 })), {
        maxKeys: 3,
      });
    const user = named(["uid", "name", "x"]);
    const event = fc.record(
      {
        class_uid: fc.constantFrom(3002, 6003, "3002", 1),
        activity_id: fc.oneof(fc.integer({ min: -1, max: 100 }), fc.constantFrom("1", "toString")),
        activity_name: value,
        actor: fc.oneof(fc.record({ user }, { requiredKeys: [] }), value, fc.array(user)),
        user: fc.oneof(user, value),
        api: fc.oneof(named(["operation", "x"]), value),
        resources: fc.oneof(
          fc.array(fc.oneof(named(["uid", "name"]), value), { maxLength: 4 }),
          value,
        ),
        metadata: fc.oneof(named(["tenant_uid", "uid"]), value),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(event, value, fc.array(event, { maxLength: 1 })), (e) => {
        expect(eventKeys(e)).toEqual(referenceEventKeys(e));
      }),
      { numRuns: 3000 },
    );
  });

  it("matches a filter only when every named key is there, exactly", () => {
    const e = apiActivity();
    expect(matchesFilter(e, { actor: "alice", resource: "invoice-42" })).toBe(true);
    expect(matchesFilter(e, { actor: "alice", action: "DeleteInvoice" })).toBe(false);
    expect(matchesFilter(e, { actor: "ALICE" })).toBe(false);
    expect(matchesFilter(e, {})).toBe(true);
    expect(matchesFilter("not an event", { actor: "alice" })).toBe(false);
  });
});

/** indexKeysOfPayload as its definition reads, always parsing: the reference for the shortcut. */
function parsedKeys(payload: Uint8Array): IndexKey[] {
  if (payload.length === 0 || payload[0] !== 0x7b) return [];
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    return [];
  }
  const keys = eventKeys(value);
  const field = { actor: "actors", action: "actions", resource: "resources", tenant: "tenants" };
  return KEY_KINDS.flatMap((kind) =>
    keys[field[kind] as keyof typeof keys].map((v) => ({ kind, value: v })),
  );
}

describe("the index's key function without parsing", () => {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  const names = ["actor", "user", "api", "activity_id", "activity_name", "resources", "metadata"];

  it("finds keys behind escaped names, and none in JSON that never names a key's field", () => {
    const escaped = utf8('{"\\u0061ctor":{"user":{"uid":"mallory"}},"x":1}');
    expect(indexKeysOfPayload(escaped)).toEqual([{ kind: "actor", value: "mallory" }]);
    const escapedValue = utf8('{"actor":{"user":{"uid":"a\\"b"}}}');
    expect(indexKeysOfPayload(escapedValue)).toEqual([{ kind: "actor", value: 'a"b' }]);
    expect(indexKeysOfPayload(utf8('{"v":1,"seq":"0001","target":"documents/x"}'))).toEqual([]);
    // A name as a value, or inside a longer name, is not a property: parsed, and still no keys.
    expect(indexKeysOfPayload(utf8('{"note":"actor","actors":{"user":{"uid":"x"}}}'))).toEqual([]);
    // Each field alone, unescaped, is found.
    const one: Record<string, string> = {
      actor: '{"actor":{"user":{"uid":"u"}}}',
      user: '{"class_uid":3002,"user":{"uid":"u"}}',
      api: '{"api":{"operation":"Op"}}',
      activity_id: '{"class_uid":3002,"activity_id":1}',
      activity_name: '{"activity_name":"Act"}',
      resources: '{"resources":[{"uid":"r"}]}',
      metadata: '{"metadata":{"tenant_uid":"t"}}',
    };
    for (const name of names) expect(indexKeysOfPayload(utf8(one[name]!)), name).not.toEqual([]);
  });

  it("answers as parsing every payload would (random JSON, escaped and plain names)", () => {
    const key = fc.oneof(
      fc.constantFrom(...names, "uid", "name", "operation", "tenant_uid", "class_uid", "x"),
      fc.string({ maxLength: 6 }),
    );
    const leaf = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.constantFrom(...names, "Logon", '"', "\\"),
      fc.integer({ min: 0, max: 3003 }),
      fc.constant(3002),
      fc.boolean(),
      fc.constant(null),
    );
    const { json } = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: "small" },
        leaf,
        fc.array(tie("json"), { maxLength: 3 }),
        fc.dictionary(key, tie("json"), { maxKeys: 5 }),
      ),
    }));
    // In half the cases, every such name written with its first letter escaped (\u0061 for "a",
    // …), as a writer may.
    const escapeSome = (text: string, on: boolean) =>
      on
        ? text.replace(
            /"(actor|user|api|activity_id|activity_name|resources|metadata)"/g,
            (_m, n: string) => `"\\u${n.charCodeAt(0).toString(16).padStart(4, "0")}${n.slice(1)}"`,
          )
        : text;
    fc.assert(
      fc.property(fc.dictionary(key, json, { maxKeys: 6 }), fc.boolean(), (event, escaping) => {
        const payload = utf8(escapeSome(JSON.stringify(event), escaping));
        expect(indexKeysOfPayload(payload)).toEqual(parsedKeys(payload));
      }),
      { numRuns: 2000 },
    );
  });
});
