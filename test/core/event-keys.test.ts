/** Event keys (src/core/event-keys.ts): who, what and on what, read from OCSF attributes, exactly. */
import { describe, expect, it } from "vitest";
import { eventKeys, matchesFilter } from "../../src/core/event-keys.js";
import { apiActivity, authentication } from "../audit/events.js";

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

  it("matches a filter only when every named key is there, exactly", () => {
    const e = apiActivity();
    expect(matchesFilter(e, { actor: "alice", resource: "invoice-42" })).toBe(true);
    expect(matchesFilter(e, { actor: "alice", action: "DeleteInvoice" })).toBe(false);
    expect(matchesFilter(e, { actor: "ALICE" })).toBe(false);
    expect(matchesFilter(e, {})).toBe(true);
    expect(matchesFilter("not an event", { actor: "alice" })).toBe(false);
  });
});
