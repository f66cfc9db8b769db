/**
 * OCSF event validation (src/audit/ocsf.ts, OCSF 1.8.0): valid API Activity and Authentication
 * events pass with their unknown attributes kept; each required attribute missing, each mistyped
 * one and each value outside its enum is refused with INVALID_EVENT naming its JSON pointer.
 */
import { describe, expect, it } from "vitest";
import { OCSF_VERSION, validateOcsfEvent } from "../../src/audit/ocsf.js";
import { apiActivity, authentication } from "./events.js";

/** `event` without the attribute at `path` (a JSON pointer). */
function without(event: Record<string, unknown>, path: string): Record<string, unknown> {
  const copy = structuredClone(event);
  const keys = path.split("/").slice(1);
  let at: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  delete at[keys.at(-1)!];
  return copy;
}

function withValue(event: Record<string, unknown>, path: string, value: unknown) {
  const copy = structuredClone(event);
  const keys = path.split("/").slice(1);
  let at: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[keys.at(-1)!] = value;
  return copy;
}

const refusal = (event: unknown) => {
  try {
    validateOcsfEvent(event);
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  return undefined;
};

describe(`OCSF ${OCSF_VERSION} events`, () => {
  it("accepts valid API Activity and Authentication events, keeping unknown attributes", () => {
    const e = apiActivity({ unmapped: { ticket: "T-1" }, x_vendor: [1, 2] });
    expect(validateOcsfEvent(e)).toBe(e);
    expect(validateOcsfEvent(authentication())).toMatchObject({ class_uid: 3002 });
  });

  it.each([
    ["/class_uid", apiActivity()],
    ["/category_uid", apiActivity()],
    ["/activity_id", apiActivity()],
    ["/type_uid", apiActivity()],
    ["/time", apiActivity()],
    ["/severity_id", apiActivity()],
    ["/metadata", apiActivity()],
    ["/metadata/product", apiActivity()],
    ["/metadata/version", apiActivity()],
    ["/actor", apiActivity()],
    ["/api", apiActivity()],
    ["/api/operation", apiActivity()],
    ["/src_endpoint", apiActivity()],
    ["/user", authentication()],
  ])("a missing %s is refused, naming it", (path, event) => {
    expect(refusal(without(event, path))).toEqual({
      code: "INVALID_EVENT",
      message: `${path}: is required`,
    });
  });

  it.each([
    ["/time", "yesterday", "must be an integer"],
    ["/severity_id", 7, "7 is not one of 0, 1, 2, 3, 4, 5, 6, 99"],
    ["/status_id", 3, "3 is not one of 0, 1, 2, 99"],
    ["/activity_id", 9, "9 is not one of 0, 1, 2, 3, 4, 99"],
    ["/category_uid", 3, "3 is not one of 6"],
    ["/api/operation", 42, "must be a string"],
    ["/actor/user/uid", 7, "must be a string"],
    ["/metadata/uid", false, "must be a string"],
    ["/resources", { uid: "x" }, "must be an array"],
    ["/resources/0", "invoice-42", "must be an object"],
    ["/resources/0/uid", 42, "must be a string"],
    ["/src_endpoint/ip", 192, "must be a string"],
  ])("a mistyped %s is refused: %j", (path, value, why) => {
    expect(refusal(withValue(apiActivity(), path, value))).toEqual({
      code: "INVALID_EVENT",
      message: `${path}: ${why}`,
    });
  });

  it("checks type_uid = class_uid × 100 + activity_id, the class, and what an entity needs", () => {
    expect(refusal(apiActivity({ type_uid: 600301 }))?.message).toBe(
      "/type_uid: must be class_uid × 100 + activity_id = 600303",
    );
    expect(refusal(apiActivity({ class_uid: 1001 }))?.message).toMatch(
      /^\/class_uid: class 1001 is not supported \(OCSF 1\.8\.0: 3002 Authentication, 6003 API Activity\)$/,
    );
    expect(refusal(apiActivity({ resources: [{ type: "invoice" }] }))?.message).toBe(
      "/resources/0: needs a name or a uid",
    );
    expect(refusal(apiActivity({ actor: {} }))?.message).toMatch(/^\/actor: needs at least one of/);
    expect(refusal(apiActivity({ src_endpoint: {} }))?.message).toMatch(
      /^\/src_endpoint: needs at least one of/,
    );
    expect(refusal([apiActivity()])?.message).toBe("/: an event must be a JSON object");
  });
});
