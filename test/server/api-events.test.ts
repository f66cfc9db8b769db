/**
 * Structured events over HTTP (POST /v1/events, POST /v1/events/batch), in process: a valid OCSF
 * event is logged as its RFC 8785 canonical bytes with a receipt that verifies offline for those
 * bytes; the same event (by metadata.uid, in any property order) is one entry; another event with
 * that uid is a CONFLICT; an invalid event is 400 INVALID_EVENT naming the field and changes
 * nothing; a batch answers each event in order.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { canonicalBytes } from "../../src/audit/canonical.js";
import { base64Decode } from "../../src/core/bytes.js";
import { leafFromFields } from "../../src/core/entry.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { verifyTlogProof } from "../../src/core/tlog-proof.js";
import { apiActivity, authentication } from "../audit/events.js";
import {
  expectJson,
  expectProblem,
  get,
  type Harness,
  hashLeaf,
  openHarness,
  post,
  postJson,
  type ReceiptJson,
} from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await openHarness();
});

const send = (event: unknown, headers: Record<string, string> = {}) =>
  postJson(h.app, "/v1/events", event, { token: h.tokens.append, headers });

describe("POST /v1/events", () => {
  it("logs the event's canonical bytes, with a receipt that proves exactly them", async () => {
    const event = apiActivity({
      metadata: { product: { name: "billing" }, version: "1.8.0", uid: "e-1" },
    });
    const r = await expectJson<ReceiptJson>(await send(event), 201);
    const entry = await expectJson<{ payload: string }>(
      await get(h.app, `/v1/entries/${r.index}`, { token: h.tokens.read }),
      200,
    );
    expect(base64Decode(entry.payload)).toEqual(canonicalBytes(event));
    const { verifierKey } = await expectJson<{ verifierKey: string }>(
      await get(h.app, "/v1/log"),
      200,
    );
    const verified = verifyTlogProof(
      r.receipt,
      base64Decode(r.leafHash),
      verifierFromKey(verifierKey),
    );
    const leaf = leafFromFields(verified.extra!, canonicalBytes(event));
    expect(Buffer.from(hashLeaf(leaf))).toEqual(Buffer.from(base64Decode(r.leafHash)));
  });

  it("is one entry per event: the same uid in any property order is the original; another event with it is 409", async () => {
    const event = authentication({
      metadata: { version: "1.8.0", product: { name: "sso" }, uid: "login-7" },
    });
    const first = await expectJson<ReceiptJson>(await send(event), 201);
    const reordered = Object.fromEntries(Object.entries(event).reverse());
    const again = await expectJson<ReceiptJson & { duplicate: boolean }>(
      await send(reordered),
      200,
    );
    expect(again).toMatchObject({ index: first.index, duplicate: true });
    await expectProblem(await send({ ...event, status_id: 1, status: "Success" }), 409, "CONFLICT");
  });

  it("refuses an invalid event with INVALID_EVENT naming the field, and logs nothing", async () => {
    const before = (await expectJson<{ treeSize: number }>(await get(h.app, "/v1/log"), 200))
      .treeSize;
    const bad = apiActivity({ actor: { user: { uid: 7 } } });
    const p = await expectProblem(await send(bad), 400, "INVALID_EVENT");
    expect(p.detail).toBe("/actor/user/uid: must be a string");
    await expectProblem(
      await post(h.app, "/v1/events", {
        token: h.tokens.append,
        body: JSON.stringify(apiActivity()),
      }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    await expectProblem(await postJson(h.app, "/v1/events", apiActivity()), 401, "UNAUTHENTICATED");
    await expectProblem(
      await postJson(h.app, "/v1/events", apiActivity(), { token: h.tokens.read }),
      403,
      "FORBIDDEN",
    );
    const after = (await expectJson<{ treeSize: number }>(await get(h.app, "/v1/log"), 200))
      .treeSize;
    expect(after).toBe(before);
  });
});

describe("POST /v1/events/batch", () => {
  it("answers each event in order with its receipt", async () => {
    const events = [1, 2, 3].map((n) =>
      apiActivity({ metadata: { product: { name: "billing" }, version: "1.8.0", uid: `b-${n}` } }),
    );
    const res = await postJson(h.app, "/v1/events/batch", { events }, { token: h.tokens.append });
    const { results } = await expectJson<{ results: (ReceiptJson & { status: number })[] }>(
      res,
      200,
    );
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(results[1]!.index).toBe(results[0]!.index + 1);
  });

  it("refuses the whole batch when one event is invalid, naming it", async () => {
    const events = [
      apiActivity({ metadata: { product: { name: "x" }, version: "1.8.0", uid: "ok-1" } }),
      { ...apiActivity(), severity_id: 12 },
    ];
    const res = await postJson(h.app, "/v1/events/batch", { events }, { token: h.tokens.append });
    const p = await expectProblem(res, 400, "INVALID_EVENT");
    expect(p.detail).toBe("/events/1/severity_id: 12 is not one of 0, 1, 2, 3, 4, 5, 6, 99");
    await expectProblem(
      await postJson(h.app, "/v1/events/batch", { events: [] }, { token: h.tokens.append }),
      400,
      "BAD_REQUEST",
    );
  });
});
