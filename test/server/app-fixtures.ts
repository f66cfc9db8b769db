/**
 * What the HTTP API's route tests (test/server/api-*.test.ts) share: their payloads, limits and
 * the receipt check an integrator would make.
 */
import { expect } from "vitest";
import { base64Decode } from "../../src/core/bytes.js";
import { decodeLeafFields, formatUuid, leafFromFields } from "../../src/core/entry.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { verifyTlogProof } from "../../src/core/tlog-proof.js";
import type { ProblemCode } from "../../src/server/problem.js";
import {
  type App,
  type Body,
  enc,
  expectJson,
  get,
  type Harness,
  hashLeaf,
  hex,
  post,
  type ReceiptJson,
} from "./helpers.js";

export const MAX_PAYLOAD = 65438;

export interface BatchResult extends Partial<ReceiptJson> {
  status: number;
  error?: { code: string; detail: string };
}

export interface LogInfo {
  origin: string;
  verifierKey: string;
  timestampVerifierKey: string;
  treeSize: number;
  checkpoint: string;
  checkpointTime: number;
  status: string;
  publicReads: boolean;
  dedup: string;
  limits: { maxPayloadSize: number; maxBatchEntries: number; maxPageSize: number };
}

export const logInfo = async (app: App) => expectJson<LogInfo>(await get(app, "/v1/log"), 200);
export const checkpointText = async (app: App) => (await get(app, "/checkpoint")).text();

/**
 * Verifies a receipt the way an integrator would: the verifier library, the verifier key from
 * GET /v1/log, and the payload; then rebuilds the leaf from `extra` + payload.
 */
export async function verifyReceipt(app: App, r: ReceiptJson, payload: Uint8Array): Promise<void> {
  const logKey = verifierFromKey((await logInfo(app)).verifierKey);
  const leafHash = base64Decode(r.leafHash);
  const verified = verifyTlogProof(r.receipt, leafHash, logKey);
  expect(verified.index).toBe(r.index);
  expect(verified.checkpoint.size).toBe(r.treeSize);
  expect(r.receipt.endsWith(`\n\n${r.checkpoint}`)).toBe(true);
  const fields = decodeLeafFields(verified.extra!);
  expect(formatUuid(fields.id)).toBe(r.id);
  expect(fields.timestamp).toBe(r.timestamp);
  expect(fields.submitter ?? null).toBe(r.submitter);
  const leaf = leafFromFields(verified.extra!, payload);
  expect(hex(hashLeaf(leaf))).toBe(hex(leafHash));
  // The same receipt does not prove any other payload.
  const other = hashLeaf(leafFromFields(verified.extra!, enc("something else")));
  expect(() => verifyTlogProof(r.receipt, other, logKey)).toThrow();
}

export const submit = (h: Harness, payload: Body, headers: Record<string, string> = {}) =>
  post(h.app, "/v1/entries", { token: h.tokens.append, body: payload, headers });

export const payloadOf = (i: number, tag = "entry") =>
  enc(`${tag} ${i}: ${"lorem ipsum ".repeat(3)}`);

/** The non-canonical decimals every numeric parameter must refuse, with their codes. */
export const BAD_DECIMALS: [string, ProblemCode][] = [
  ["01", "MALFORMED"],
  ["-1", "MALFORMED"],
  ["1e3", "MALFORMED"],
  ["1.0", "MALFORMED"],
  ["0x10", "MALFORMED"],
  ["%201", "MALFORMED"],
  ["", "MALFORMED"],
  ["9007199254740993", "OUT_OF_RANGE"],
];
