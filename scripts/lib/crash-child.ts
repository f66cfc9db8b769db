/**
 * The crash test's victim (scripts/crash-test.ts starts it; not meant to be run by hand).
 *
 *   node --import tsx scripts/lib/crash-child.ts <db dir> <run> [http]
 *
 * Opens the log on LevelDB with the default batching, prints "ready", then keeps CONCURRENCY
 * submissions in flight until it is killed: fresh payloads, some with idempotency keys, some
 * deliberate duplicates (of entries this run may still have in flight, and of earlier runs'
 * entries, which may or may not have landed before their kill). For every receipt it prints one
 * JSON line (crash-workload.ts, AckLine) with one write: stdout to a pipe is synchronous on Linux,
 * so a line the parent reads was written after the submitter was answered.
 *
 * With `http` it submits nothing itself: it serves the log through the real HTTP API
 * (src/server/app.ts) on 127.0.0.1, prints "ready <port> <token>" (a fresh append token), and the
 * parent submits over HTTP: acknowledged then means a complete HTTP answer the parent received.
 *
 * Any rejection is a failure (the workload never provokes one): it exits 1 with the error on
 * stderr. It exits by itself if its stdout goes away (the parent died) or after LIFETIME_MS.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { TokenStore } from "../../src/auth/tokens.js";
import { databasePaths, openEmbeddedDatabases } from "../../src/cli/embedded-db.js";
import { Log } from "../../src/log/log.js";
import { installNodeCrypto } from "../../src/platform/node-crypto.js";
import { createApp } from "../../src/server/app.js";
import {
  type AckLine,
  keyFor,
  NAMESPACE,
  ORIGIN,
  payloadFor,
  READY,
  SEED,
  seedPicker,
} from "./crash-workload.js";

const CONCURRENCY = 256;
const LIFETIME_MS = 60_000;

function fail(why: string): never {
  process.stderr.write(`crash-child: ${why}\n`);
  process.exit(1);
}

async function main(dir: string, run: number, http: boolean): Promise<void> {
  installNodeCrypto();
  // The embedded store as the server opens it: DATA/db and DATA/entries (layout 3).
  const dbs = await openEmbeddedDatabases(databasePaths(dir));
  const db = dbs.db;
  // Payload dedup: the checks of scripts/crash-test.ts hold every payload to one index, keyed
  // or not (under key dedup an unkeyed resubmission is rightly a new entry).
  const log = await Log.open({
    origin: ORIGIN,
    seed: SEED,
    ...dbs.place(NAMESPACE),
    dedup: "payload",
  });
  if (http) {
    const tokens = await TokenStore.open(db.namespace("tokens"));
    const { token } = await tokens.create(`crash run ${run}`, ["append"]);
    const app = createApp({ log, tokens });
    serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
      process.stdout.write(`${READY} ${(info as AddressInfo).port} ${token}\n`);
    });
    return;
  }
  process.stdout.write(`${READY}\n`);

  const pick = seedPicker(run);

  const worker = async (): Promise<void> => {
    for (;;) {
      const s = pick();
      const key = keyFor(s);
      const r = await log.submit(payloadFor(s), key === undefined ? {} : { idempotencyKey: key });
      const line: AckLine = {
        s,
        index: r.index,
        id: r.idText,
        timestamp: r.timestamp,
        leafHash: Buffer.from(r.leafHash).toString("base64"),
        duplicate: r.duplicate,
        proof: await r.tlogProof(),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

const [dir, run, mode] = process.argv.slice(2);
if (dir === undefined || run === undefined || !/^\d+$/.test(run) || (mode ?? "http") !== "http") {
  fail("usage: crash-child.ts <db dir> <run> [http]");
}
process.stdout.on("error", () => process.exit(2));
setTimeout(() => fail(`not killed within ${LIFETIME_MS} ms`), LIFETIME_MS);
main(dir, Number(run), mode === "http").catch((e) =>
  fail(e instanceof Error ? (e.stack ?? e.message) : String(e)),
);
