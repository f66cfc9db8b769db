/**
 * The WORM archive against a real S3 server that enforces Object Lock (Ceph radosgw, started by
 * `scripts/services.sh up s3`): a log's full tiles, bundles and checkpoints land locked in
 * COMPLIANCE mode; a locked version cannot be deleted; redoing a step is harmless; a bucket
 * holding other bytes stops the archive; and `checkArchive`, from the bucket alone, passes a
 * whole archive and names what is wrong with a tampered one.
 */

import { createHash, randomUUID } from "node:crypto";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { Archiver, checkpointRun, readCheckpointRun } from "../../src/archive/archiver.js";
import { parseBucketUrl, WormBucket } from "../../src/archive/bucket.js";
import { checkArchive } from "../../src/archive/check.js";
import { parseRetention, retainUntil } from "../../src/archive/retention.js";
import { isVellumError } from "../../src/core/errors.js";
import { signerFromSeed } from "../../src/core/keys.js";
import { signNote } from "../../src/core/note.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { needService, S3_KEYS } from "../helpers/services.js";
import { ORIGIN, openMemoryLog } from "../log/helpers.js";

const env = needService("s3", S3_KEYS);
const HOUR = parseRetention("1h");

function s3Config() {
  const e = env as Record<string, string>;
  return {
    endpoint: e.AWS_ENDPOINT_URL,
    region: e.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: e.AWS_ACCESS_KEY_ID!, secretAccessKey: e.AWS_SECRET_ACCESS_KEY! },
  };
}
const raw = env === undefined ? undefined : new S3Client(s3Config());
const opened: { close(): unknown }[] = [];
afterAll(async () => {
  for (const o of opened) await o.close();
  raw?.destroy();
});

/** A fresh prefix in the test bucket (locked objects cannot be removed: each test its own). */
async function bucketAt(): Promise<WormBucket> {
  const url = `s3://${env!.VELLUM_BUCKET}/archive-test/${randomUUID()}`;
  const b = await WormBucket.open(url, s3Config());
  opened.push(b);
  return b;
}

async function logWith(n: number, tag = "entry") {
  const { log, published } = await openMemoryLog(new MemoryDatabase(), { batchMaxAgeMs: 0 });
  opened.push(log);
  const enc = new TextEncoder();
  for (let i = 0; i < n; i += 5000) {
    const count = Math.min(5000, n - i);
    await log.submitMany(Array.from({ length: count }, (_, j) => enc.encode(`${tag} ${i + j}`)));
  }
  return { log, published };
}

async function archiverFor(log: Awaited<ReturnType<typeof logWith>>["log"], bucket: WormBucket) {
  return Archiver.open({
    log,
    bucket,
    retention: HOUR,
    kv: new MemoryDatabase().namespace("archive"),
    retryMinMs: 20,
  });
}

describe("parsing", () => {
  it("takes s3://BUCKET/PREFIX and retention periods, and refuses others", () => {
    expect(parseBucketUrl("s3://my-bucket/logs/prod/")).toEqual({
      bucket: "my-bucket",
      prefix: "logs/prod/",
    });
    expect(parseBucketUrl("s3://my-bucket")).toEqual({ bucket: "my-bucket", prefix: "" });
    for (const bad of ["my-bucket", "s3://", "s3://B/x", "s3://ok-bucket/../x", "http://b/x"]) {
      expect(() => parseBucketUrl(bad), bad).toThrow(/bucket URL|segments/);
    }
    expect(retainUntil(parseRetention("7y"), new Date("2024-02-29T00:00:00Z")).toISOString()).toBe(
      "2031-03-01T00:00:00.000Z",
    );
    expect(retainUntil(parseRetention("90d"), new Date(0)).getTime()).toBe(90 * 86_400_000);
    for (const bad of ["7", "0y", "7w", "-1d", "101y", "1.5y"]) {
      expect(() => parseRetention(bad), bad).toThrow();
    }
  });
});

describe.skipIf(env === undefined)("the WORM archive on radosgw with Object Lock", () => {
  it("writes tiles on every step, checkpoint runs and the head at most every checkpointsEveryMs", async () => {
    const bucket = await bucketAt();
    const { log, published } = await logWith(300, "paced");
    const archiver = await Archiver.open({
      log,
      bucket,
      retention: HOUR,
      kv: new MemoryDatabase().namespace("archive"),
      checkpointsEveryMs: 60_000,
    });
    for (const cp of published) archiver.notify(cp);
    await archiver.step(false); // the first: tiles, a run and the head
    const enc = new TextEncoder();
    await log.submitMany(Array.from({ length: 300 }, (_, i) => enc.encode(`more ${i}`)));
    await archiver.step(false); // within the minute: tiles only
    const names = () => bucket.versions().then((v) => [...v.keys()]);
    let keys = await names();
    expect(archiver.archived).toBe(600);
    expect(keys).toContain("tile/entries/001");
    expect(keys.filter((k) => k.startsWith("checkpoints/"))).toHaveLength(1);
    expect(new TextDecoder().decode(await bucket.getLatest("checkpoint"))).not.toBe(
      log.published!.note,
    );
    await archiver.step(); // a whole step (as at close): the queued checkpoints and the head
    keys = await names();
    expect(keys.filter((k) => k.startsWith("checkpoints/"))).toHaveLength(2);
    expect(new TextDecoder().decode(await bucket.getLatest("checkpoint"))).toBe(
      log.published!.note,
    );
  });

  it("archives full tiles, bundles and every checkpoint, each locked in COMPLIANCE mode", async () => {
    const bucket = await bucketAt();
    const { log, published } = await logWith(600);
    const archiver = await archiverFor(log, bucket);
    for (const cp of published) archiver.notify(cp);
    await archiver.step();
    expect(archiver.archived).toBe(600);
    expect(archiver.lag).toBe(0);
    const keys = [...(await bucket.versions()).keys()].sort();
    const checkpoints = keys.filter((k) => k.startsWith("checkpoints/"));
    expect(keys.filter((k) => k.startsWith("tile/") && !k.includes(".p/"))).toEqual([
      "tile/0/000",
      "tile/0/001",
      "tile/entries/000",
      "tile/entries/001",
    ]);
    // The head, unlocked: the published checkpoint and the partial tiles of its size, so the
    // bucket alone is a whole tlog-tiles log.
    expect(keys.filter((k) => k === "checkpoint" || k.includes(".p/"))).toEqual([
      "checkpoint",
      "tile/0/002.p/88",
      "tile/1/000.p/2",
      "tile/entries/002.p/88",
    ]);
    expect(new TextDecoder().decode(await bucket.getLatest("checkpoint"))).toBe(
      log.published!.note,
    );
    const head = (await bucket.versions("tile/0/002.p/88")).get("tile/0/002.p/88")![0]!;
    expect((await bucket.retention("tile/0/002.p/88", head.versionId)).mode).toBeUndefined();
    // Every checkpoint the log signed (several batches: several sizes), kept in one run object
    // for the step, named by its sizes and its hash.
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints[0]).toMatch(/^checkpoints\/0{20}-0{17}600\/[0-9a-f]{64}$/);
    const run = (await bucket.versions(checkpoints[0]!)).get(checkpoints[0]!)![0]!;
    const notes = readCheckpointRun(await bucket.get(checkpoints[0]!, run.versionId));
    expect(new Set(notes)).toEqual(new Set(published.map((p) => p.note)));
    expect(notes).toContain(log.checkpoint.note);
    expect(checkpointRun(notes).name).toBe(checkpoints[0]);
    expect((await bucket.retention(checkpoints[0]!, run.versionId)).mode).toBe("COMPLIANCE");
    // The bytes are the log's own tile bytes.
    const versions = await bucket.versions("tile/entries/000");
    const v = versions.get("tile/entries/000")![0]!;
    expect(await bucket.get("tile/entries/000", v.versionId)).toEqual(
      await log.entryBundle(0, 256),
    );
    // Locked: COMPLIANCE, at least the retention; deleting the version is refused by the store.
    const lock = await bucket.retention("tile/entries/000", v.versionId);
    expect(lock.mode).toBe("COMPLIANCE");
    expect(lock.retainUntil!.getTime()).toBeGreaterThan(Date.now() + 59 * 60_000);
    const { bucket: name, prefix } = bucket.location;
    const refusal = await raw!
      .send(
        new DeleteObjectCommand({
          Bucket: name,
          Key: `${prefix}tile/entries/000`,
          VersionId: v.versionId,
        }),
      )
      .then(
        () => "deleted",
        (e: Error) => e.name,
      );
    expect(refusal).toBe("AccessDenied");

    // The check, from the bucket alone: whole and consistent; the size-600 checkpoint is in
    // the tail (past the last full bundle), checked by signature.
    const report = await checkArchive(bucket, {
      verifierKey: log.signer.verifierKey,
      retention: HOUR,
    });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ bundles: 2, tiles: 2, entries: 512, largestCheckpoint: 600 });
    expect(report.tailCheckpoints).toBeGreaterThanOrEqual(1);
    // A longer retention than the objects have is reported for each of them.
    const longer = await checkArchive(bucket, {
      verifierKey: log.signer.verifierKey,
      retention: parseRetention("2h"),
    });
    expect(longer.problems.length).toBe(report.objects);
    expect(longer.problems[0]).toMatch(/retained until .* less than 2h/);
  });

  it("redoes a step harmlessly, and stops with an alarm on a bucket holding other bytes", async () => {
    const bucket = await bucketAt();
    const { log } = await logWith(300);
    await (await archiverFor(log, bucket)).step();
    // Progress lost (a fresh database): every object is found already there, nothing rewritten.
    const again = await archiverFor(log, bucket);
    await again.step();
    expect(again.objectsWritten).toBe(0);
    expect(again.archived).toBe(300);
    const versions = await bucket.versions();
    expect([...versions.values()].every((list) => list.length === 1)).toBe(true);

    // Another log's entries under the same names: refused, nothing written over.
    const { log: other } = await logWith(300, "other");
    const conflicting = await archiverFor(other, bucket);
    const failure = await conflicting.step().catch((e) => e);
    expect(isVellumError(failure, "INTEGRITY_FAILURE")).toBe(true);
    expect(failure.message).toMatch(/tile\/0\/000 already holds other bytes/);
    // Running in the background, it stops in the conflict state (and the server says ALARM).
    const lines: string[] = [];
    const logger = {
      error: (...a: unknown[]) => lines.push(String(a[a.length - 1])),
      warn: () => {},
      info: () => {},
      debug: () => {},
      child: () => logger,
    };
    const background = await Archiver.open({
      log: other,
      bucket,
      retention: HOUR,
      kv: new MemoryDatabase().namespace("archive"),
      logger: logger as never,
    });
    background.start();
    for (let i = 0; i < 100 && background.state !== "conflict"; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(background.state).toBe("conflict");
    expect(lines.join("\n")).toMatch(/ALARM: the archive stopped/);
    await background.close();
    expect((await bucket.versions()).size).toBe(versions.size);
  });

  it("reports a write over a locked object, a gap, an unlocked object and a foreign checkpoint", async () => {
    const bucket = await bucketAt();
    const { log } = await logWith(800);
    await (await archiverFor(log, bucket)).step();
    const { bucket: name, prefix } = bucket.location;
    const put = (key: string, body: Uint8Array | string) =>
      raw!.send(new PutObjectCommand({ Bucket: name, Key: prefix + key, Body: body }));
    // The same bytes again over a locked tile, as a step redone without looking would write.
    await bucket.putLocked(
      "tile/0/001",
      await log.hashTile(0, 1, 256),
      retainUntil(HOUR, new Date()),
      {
        known: "new",
      },
    );
    expect((await bucket.versions("tile/0/001")).get("tile/0/001")).toHaveLength(2);
    // A newer version over a locked tile (the store allows it: versions, not overwrites).
    await put("tile/0/000", new Uint8Array(256 * 32));
    // A bundle past a missing one, unlocked.
    await put("tile/entries/005", await log.entryBundle(0, 256));
    // A checkpoint signed by another key, under a name that looks right.
    const forger = signerFromSeed(ORIGIN, new Uint8Array(32).fill(9));
    const note = `${ORIGIN}\n512\n${Buffer.alloc(32).toString("base64")}\n`;
    const forged = signNote(note, [forger]);
    const forgedRun = checkpointRun([forged]);
    await put(forgedRun.name, forgedRun.bytes);
    // And an old-style single-note object, forged the same way.
    await put(
      `checkpoints/${"512".padStart(20, "0")}/${createHash("sha256").update(forged).digest("hex")}`,
      forged,
    );

    const report = await checkArchive(bucket, {
      verifierKey: log.signer.verifierKey,
      retention: HOUR,
    });
    const text = report.problems.join("\n");
    expect(text).toMatch(/tile\/0\/000 has 2 versions/);
    // A redone write with the same bytes (a version beside the original) is harmless.
    expect(text).not.toMatch(/tile\/0\/001 has/);
    expect(text).toMatch(/tile\/entries\/005 is not locked in COMPLIANCE mode/);
    expect(text).toMatch(/bundle 3 is missing but later ones are there \(5/);
    expect(text).toMatch(/checkpoints\/0+512-0+512\/.*(signature|signed)/i);
    expect(text).toMatch(/checkpoints\/0+512\/[0-9a-f]{64}.*(signature|signed)/i);
    // The oldest version of tile/0/000 is still the right one: not reported as wrong.
    expect(text).not.toMatch(/tile\/0\/000 is not the tile/);
    expect(report.entries).toBe(768);
  });

  it("re-derives a level-1 tile over 65,536 entries", { timeout: 120_000 }, async () => {
    const bucket = await bucketAt();
    const { log } = await logWith(65_536 + 10);
    const archiver = await archiverFor(log, bucket);
    await archiver.step();
    const keys = [...(await bucket.versions("tile/1/")).keys()];
    expect(keys).toEqual(["tile/1/000"]);
    const report = await checkArchive(bucket, {
      verifierKey: log.signer.verifierKey,
      retention: HOUR,
    });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ bundles: 256, tiles: 257, entries: 65_536 });
  });

  it("refuses a bucket without Object Lock", async () => {
    const plain = `vellum-plain-${randomUUID().slice(0, 8)}`;
    await raw!.send(new CreateBucketCommand({ Bucket: plain }));
    const e = await WormBucket.open(`s3://${plain}/x`, s3Config()).catch((err) => err);
    expect(isVellumError(e, "STATE_MISMATCH")).toBe(true);
    expect(e.message).toMatch(/does not have Object Lock enabled/);
    const listed = await raw!.send(new ListObjectVersionsCommand({ Bucket: plain }));
    expect(listed.Versions ?? []).toEqual([]);
  });
});
