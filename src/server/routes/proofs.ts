/**
 * @module
 * Proofs, checkpoints by size and the log's metadata: public, since they reveal only hashes.
 */
import { Hono } from "hono";
import { parseDecimal } from "../../core/bytes.js";
import { VellumError } from "../../core/errors.js";
import { base64 as base64Encode, base64JsonArray } from "../../platform/base64.js";
import {
  decimal,
  type Env,
  JSON_HEADERS,
  json,
  LIMITS,
  optionalDecimal,
  parseHash,
  type RouteContext,
} from "../http.js";

export function proofRoutes(ctx: RouteContext): Hono<Env> {
  const { log, publicReads, maxBatchEntries } = ctx;
  const app = new Hono<Env>();

  app.get("/v1/proofs/inclusion", async (c) => {
    const size = optionalDecimal(c.req.query("size"), "size") ?? log.size;
    const hashText = c.req.query("leafHash");
    const index =
      hashText !== undefined
        ? await log.indexOfLeafHash(parseHash(hashText, "leafHash"))
        : decimal(c.req.query("index"), "index");
    if (index >= size) {
      throw new VellumError("OUT_OF_RANGE", `entry ${index} is not in the tree of size ${size}`);
    }
    const proof = await log.inclusionProof(index, size);
    return c.body(
      `{"index":${index},"treeSize":${size},"proof":${base64JsonArray(proof)}}`,
      200,
      JSON_HEADERS,
    );
  });

  app.get("/v1/proofs/consistency", async (c) => {
    const from = decimal(c.req.query("from"), "from");
    const to = optionalDecimal(c.req.query("to"), "to") ?? log.size;
    const proof = await log.consistencyProof(from, to);
    return json(c, { from, to, proof: proof.map(base64Encode) });
  });

  app.get("/v1/checkpoints", async (c) => {
    const raw = c.req.query("limit");
    const limit = raw === undefined ? 100 : Math.min(1000, parseDecimal(raw, "limit"));
    return json(c, { checkpoints: await log.recentCheckpoints(limit) });
  });

  app.get("/v1/checkpoints/:size", async (c) => {
    const note = await log.checkpointAt(parseDecimal(c.req.param("size"), "size"));
    return c.body(note, 200, { "Content-Type": "text/plain; charset=utf-8" });
  });

  app.get("/v1/log", (c) =>
    json(c, {
      origin: log.origin,
      verifierKey: log.signer.verifierKey,
      timestampVerifierKey: log.signer.timestampVerifierKey,
      treeSize: log.size,
      checkpoint: log.checkpoint.note,
      checkpointTime: log.checkpoint.time,
      status: log.status,
      publicReads,
      dedup: log.dedup,
      batch: { maxEntries: log.settings.batchMaxEntries, maxAgeMs: log.settings.batchMaxAgeMs },
      limits: { ...LIMITS, maxBatchEntries },
      publishedSize: log.published?.checkpoint.size ?? null,
      witnesses: log.witnessStatus(),
      // Where reads are recorded: the access log's own key (DATA/access.vkey), else null.
      accessVerifierKey: ctx.access?.log.signer.verifierKey ?? null,
    }),
  );

  return app;
}
