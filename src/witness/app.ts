/**
 * @module
 * The witness's HTTP interface (C2SP tlog-witness): `POST /add-checkpoint` with the spec's status
 * codes and bodies (200 cosignature lines; 409 `text/x.tlog.size`; other refusals a one-line
 * plain-text reason), `GET /<hex SHA-256(origin)>/checkpoint` for the latest cosigned checkpoint,
 * and operator endpoints: `/v1/witness`, `/v1/evidence`, `/healthz`, `/readyz`, `/metrics`.
 * While the witness's storage is failing, everything that reads it answers 503 with one line
 * naming the failure's class, and `/readyz` answers 503.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { routePath } from "hono/route";
import { hexEncode } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { StorageUnavailable } from "./fail-stop.js";
import { WITNESS_METRICS_CONTENT_TYPE, WitnessMetrics } from "./metrics.js";
import { MAX_REQUEST_SIZE, type Witness } from "./witness.js";

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

export interface WitnessAppOptions {
  readonly metrics?: WitnessMetrics;
  /** Each request's line, and internal errors (default: nowhere). */
  readonly logger?: Logger;
}

export function createWitnessApp(witness: Witness, options: WitnessAppOptions = {}): Hono {
  const app = new Hono();
  const metrics = options.metrics ?? new WitnessMetrics(witness);
  const logger = options.logger ?? silentLogger;
  const logRequest = logger.request ?? logger.info;
  const refusals = metrics.refusals;

  // One line per request: route pattern, status, latency (a witness has no tokens).
  app.use(async (c, next) => {
    const start = performance.now();
    await next();
    const status = c.res.status;
    metrics.requests.inc({ class: `${Math.floor(status / 100)}xx` });
    const matched = routePath(c);
    logRequest(
      {
        method: c.req.method,
        route: matched === "/*" || matched === "" ? "unmatched" : matched,
        status,
        ms: Math.round((performance.now() - start) * 100) / 100,
      },
      "request",
    );
  });
  app.onError((err, c) => {
    if (err instanceof StorageUnavailable) {
      refusals.inc({ status: "503" });
      return c.body(`${err.message}\n`, 503, { ...TEXT, "Retry-After": "1" });
    }
    logger.error({ err }, `internal error answering ${c.req.method} ${c.req.path}: ${err.message}`);
    return c.body("internal error\n", 500, TEXT);
  });
  app.notFound((c) => c.body(`no route ${c.req.method} ${c.req.path}\n`, 404, TEXT));

  app.post(
    "/add-checkpoint",
    bodyLimit({
      maxSize: MAX_REQUEST_SIZE,
      onError: (c) => c.body(`the body exceeds ${MAX_REQUEST_SIZE} bytes\n`, 400, TEXT),
    }),
    async (c) => {
      const result = await witness.addCheckpoint(new Uint8Array(await c.req.arrayBuffer()));
      if (result.status === 200) {
        metrics.cosigned.inc();
        return c.body(result.body, 200, TEXT);
      }
      refusals.inc({ status: String(result.status) });
      if (result.status === 409) {
        return c.body(`${result.size}\n`, 409, { "Content-Type": "text/x.tlog.size" });
      }
      if (result.status === 503) {
        return c.body(`${result.reason}\n`, 503, { ...TEXT, "Retry-After": "1" });
      }
      return c.body(`${result.reason.replace(/\n/g, " ")}\n`, result.status, TEXT);
    },
  );

  app.get("/:hash/checkpoint", async (c) => {
    const hash = c.req.param("hash");
    const origin = witness.trustedOrigins.find(
      (o) => hexEncode(sha256(new TextEncoder().encode(o))) === hash,
    );
    const state = origin === undefined ? undefined : await witness.latest(origin);
    if (state === undefined) return c.body("no cosigned checkpoint for this log\n", 404, TEXT);
    return c.body(state.note, 200, { ...TEXT, "Cache-Control": "no-cache" });
  });

  app.get("/v1/witness", async (c) => {
    const logs = await Promise.all(
      witness.trustedOrigins.map(async (origin) => {
        const s = await witness.latest(origin);
        return {
          origin,
          path: `/${hexEncode(sha256(new TextEncoder().encode(origin)))}/checkpoint`,
          size: s?.size ?? null,
          time: s?.time ?? null,
        };
      }),
    );
    return c.json({ name: witness.name, verifierKey: witness.verifierKey, logs });
  });
  app.get("/v1/evidence", async (c) =>
    c.json({ evidence: await witness.evidence(100, c.req.query("origin")) }),
  );
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    const failure = witness.storageFailure;
    if (failure === undefined) return c.json({ status: "ready" });
    return c.json(
      {
        status: "failed",
        storage: failure.description,
        since: new Date(failure.since).toISOString(),
      },
      503,
    );
  });
  app.get("/metrics", async (c) =>
    c.body(await metrics.render(), 200, { "Content-Type": WITNESS_METRICS_CONTENT_TYPE }),
  );
  return app;
}
