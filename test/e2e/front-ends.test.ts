/**
 * The distributed setup end to end, against a real PostgreSQL and a real radosgw with Object
 * Lock: `vellum serve --store postgres://… --bucket s3://… --retention …` twice, one the writer,
 * one standing by as a front end. The writer publishes the log's tiles into the bucket; the
 * front end serves full hash tiles from the bucket itself (even while no writer answers, after
 * the writer is killed and before the lease runs out), forwards everything else, and takes over
 * as the writer; `vellum fsck` then checks the database and the bucket together.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { runVellum } from "../helpers/cli.js";
import { spawnVellum } from "../helpers/processes.js";
import { needService, S3_KEYS } from "../helpers/services.js";
import { until } from "../helpers/until.js";

const pgEnv = needService("postgres", ["VELLUM_PG_URL"]);
const s3Env = needService("s3", S3_KEYS);
if (s3Env !== undefined) Object.assign(process.env, s3Env);
const dir = mkdtempSync(join(tmpdir(), "vellum-front-ends-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

describe.skipIf(pgEnv === undefined || s3Env === undefined)(
  "front ends on one database and bucket",
  () => {
    it("a standing-by server serves full tiles from the bucket, even with no writer, then takes over", {
      timeout: 120_000,
    }, async () => {
      const origin = `fe-${randomBytes(4).toString("hex")}.e2e.test/log`;
      const bucket = `s3://${s3Env!.VELLUM_BUCKET}/front-ends/${randomUUID()}`;
      const serve = (data: string) =>
        spawnVellum([
          ...["serve", "--data", data, "--port", "0", "--origin", origin],
          ...["--store", pgEnv!.VELLUM_PG_URL!, "--bucket", bucket, "--retention", "1h"],
        ]);
      const first = join(dir, "first");
      const a = serve(first);
      const aUrl = await until("the writer ready", async () => {
        const url = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(a.stdout())?.[1];
        return url !== undefined && (await fetch(`${url}/readyz`)).status === 200 ? url : undefined;
      });
      const token = readFileSync(join(first, "admin.token"), "utf8").trim();
      const lines = join(dir, "lines.jsonl");
      writeFileSync(lines, Array.from({ length: 600 }, (_, i) => `{"n":${i}}\n`).join(""));
      const sub = runVellum(["submit", "--lines", lines, "--url", aUrl, "--token", token]);
      expect(sub.code, sub.stderr).toBe(0);
      await until("the bucket caught up", async () => {
        const metrics = await (await fetch(`${aUrl}/metrics`)).text();
        return /^vellum_archive_lag_entries 0$/m.test(metrics) ? true : undefined;
      });

      const second = join(dir, "second");
      mkdirSync(second, { mode: 0o700 });
      copyFileSync(join(first, "log.key"), join(second, "log.key"));
      const b = serve(second);
      const front = await until(
        "b standing by",
        async () => /forwarding requests on (http:\/\/127\.0\.0\.1:\d+)/.exec(b.output())?.[1],
      );

      // Full tiles from the bucket, equal to the writer's; partial tiles and the rest forwarded.
      for (const path of ["/tile/0/000", "/tile/0/001"]) {
        const viaFront = await fetch(`${front}${path}`);
        expect(viaFront.status).toBe(200);
        expect(viaFront.headers.get("x-vellum-source")).toBe("bucket");
        expect(viaFront.headers.get("cache-control")).toMatch(/immutable/);
        expect(await bytesOf(viaFront)).toEqual(await bytesOf(await fetch(`${aUrl}${path}`)));
      }
      const partial = await fetch(`${front}/tile/0/002.p/88`);
      expect(partial.status).toBe(200);
      expect(partial.headers.get("x-vellum-source")).toBeNull();
      expect(await bytesOf(partial)).toEqual(await bytesOf(await fetch(`${aUrl}/tile/0/002.p/88`)));
      // A full tile not yet in the bucket is the writer's to answer (here: beyond the tree).
      expect((await fetch(`${front}/tile/0/003`)).status).toBe(404);
      // Entry bundles are entry contents: forwarded, so the writer authorizes (and records) them.
      expect((await fetch(`${front}/tile/entries/000`)).status).toBe(401);
      const bundle = await fetch(`${front}/tile/entries/000`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(bundle.status).toBe(200);
      expect(bundle.headers.get("x-vellum-source")).toBeNull();

      // The writer killed: until the lease runs out nobody writes, yet full tiles are still served.
      await a.kill();
      const during = await fetch(`${front}/tile/0/001`);
      expect(during.status).toBe(200);
      expect(during.headers.get("x-vellum-source")).toBe("bucket");
      const cp = await fetch(`${front}/checkpoint`);
      if (cp.status !== 200) expect(cp.status).toBe(503); // the takeover may already be done

      // b takes over on the same address; the log goes on; fsck checks database and bucket.
      await until("b the writer", async () => {
        const r = (await (await fetch(`${front}/readyz`)).json()) as { role?: string };
        return r.role === undefined && /took over as the writer/.test(b.output())
          ? true
          : undefined;
      });
      const more = runVellum(["submit", "--url", front, "--token", token], { input: "after" });
      expect(more.code, more.stderr).toBe(0);
      const verifier = verifierFromKey(readFileSync(join(second, "log.vkey"), "utf8").trim());
      const head = openCheckpoint(await (await fetch(`${front}/checkpoint`)).text(), verifier);
      expect(head.checkpoint.size).toBe(601);
      await until("the bucket caught up again", async () => {
        const metrics = await (await fetch(`${front}/metrics`)).text();
        return /^vellum_archive_lag_entries 0$/m.test(metrics) ? true : undefined;
      });
      const fsck = runVellum([
        ...["fsck", "--data", second, "--store", pgEnv!.VELLUM_PG_URL!],
        ...["--archive", bucket, "--retention", "1h"],
      ]);
      expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
      expect(fsck.stdout).toMatch(/tree size 601\b/);
      expect(fsck.stdout).toMatch(/^archive clean/m);
      expect((await b.stop()).code).toBe(0);
    });
  },
);
