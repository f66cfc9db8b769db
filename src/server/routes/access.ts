/**
 * @module
 * Who read what (spec/audit.md, "The access log"): `GET /v1/access?actor=&resource=…` answers
 * from the access log's own verifiable index, with the same proofs as an index answer for
 * events — "who read entry 42" is `resource=entry:42`, "what did token T read" is `actor=T`.
 * Needs the `audit` scope; the answer is itself recorded in the access log.
 */
import { Hono } from "hono";
import type { Env, RouteContext } from "../http.js";
import { HttpProblem } from "../problem.js";
import { answerFromIndex, parseQuery } from "./events.js";

export function accessRoutes(ctx: RouteContext): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/v1/access", ctx.requireScope("audit"), async (c) => {
    const q = parseQuery(c);
    if (q.keys.length === 0) {
      throw new HttpProblem(
        "BAD_REQUEST",
        "name an actor (a token id or name), a resource (entry:N), an action (a route) or a tenant",
      );
    }
    return answerFromIndex(c, ctx, ctx.accessIndex, q, "access");
  });
  return app;
}
