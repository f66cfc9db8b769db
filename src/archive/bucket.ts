/**
 * @module
 * A WORM bucket: an S3 bucket with Object Lock, written create-only with COMPLIANCE retention
 * (spec/storage.md, "The archive"). Measured on Ceph radosgw (../shared/SERVICES.md): a PUT's
 * `If-None-Match: *` is ignored (a second PUT adds a version over the first), so create-only is
 * enforced here by reading before writing: an object already there with the same bytes is
 * success (a retry), with other bytes an error (INTEGRITY_FAILURE) that the caller raises as an
 * alarm. Locking protects every version from deletion and from shortened retention; it does not
 * stop a holder of write credentials from adding a newer version that hides a locked one, so
 * readers (`checkArchive`) take each key's oldest version and report any key with more than one.
 *
 * Credentials and endpoint come the way AWS tools take them (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, profiles): the SDK's default chain.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { bytesEqual } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";

export interface BucketLocation {
  readonly bucket: string;
  /** Key prefix, "" or ending in "/". */
  readonly prefix: string;
}

/** Parses `s3://BUCKET[/PREFIX]`. */
export function parseBucketUrl(url: string): BucketLocation {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/.exec(url);
  if (m === null) {
    throw new VellumError(
      "MALFORMED",
      `"${url}" is not a bucket URL: expected s3://BUCKET or s3://BUCKET/PREFIX`,
    );
  }
  const path = (m[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (path.split("/").some((part) => part === "." || part === "..")) {
    throw new VellumError("MALFORMED", `"${url}": the prefix may not hold . or .. segments`);
  }
  return { bucket: m[1] as string, prefix: path === "" ? "" : `${path}/` };
}

/** One stored version of an object: what a checker needs to judge it. */
export interface ObjectVersion {
  readonly key: string;
  readonly versionId: string;
  readonly lastModified: Date;
  readonly size: number;
}

export interface Retention {
  readonly mode: string | undefined;
  readonly retainUntil: Date | undefined;
}

export type PutOutcome = "written" | "present";

export class WormBucket {
  readonly location: BucketLocation;
  readonly #s3: S3Client;

  private constructor(location: BucketLocation, s3: S3Client) {
    this.location = location;
    this.#s3 = s3;
  }

  /**
   * Opens `s3://BUCKET/PREFIX` and checks that the bucket has Object Lock enabled: a bucket
   * without it cannot hold WORM data, and writing there would only look safe.
   */
  static async open(url: string, config: S3ClientConfig = {}): Promise<WormBucket> {
    const location = parseBucketUrl(url);
    // The SDK warns once per process that its releases after January 2027 need Node 22; the
    // version pinned in package-lock.json runs on Node 20, so that line would only alarm
    // operators reading the server's log. Set the variable to "false" to see it.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    // Bounded waits: a store cut off by a partition fails a call (the archive says it is behind
    // and retries) instead of hanging it, and with it the server's shutdown.
    const s3 = new S3Client({
      forcePathStyle: true,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
      ...config,
    });
    const bucket = new WormBucket(location, s3);
    let enabled: string | undefined;
    try {
      const res = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: location.bucket }));
      enabled = res.ObjectLockConfiguration?.ObjectLockEnabled;
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === "ObjectLockConfigurationNotFoundError") enabled = undefined;
      else throw bucket.#failure(e, `reading the Object Lock settings of ${url}`);
    }
    if (enabled !== "Enabled") {
      s3.destroy();
      throw new VellumError(
        "STATE_MISMATCH",
        `bucket "${location.bucket}" does not have Object Lock enabled; create it with Object Lock (aws s3api create-bucket --object-lock-enabled-for-bucket)`,
      );
    }
    return bucket;
  }

  close(): void {
    this.#s3.destroy();
  }

  #key(name: string): string {
    return this.location.prefix + name;
  }

  #failure(e: unknown, doing: string): VellumError {
    if (e instanceof VellumError) return e;
    const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    return new VellumError(
      "STORAGE_FAILURE",
      `${doing}: ${err.name ?? "error"}${status === undefined ? "" : ` (HTTP ${status})`}: ${err.message ?? String(e)}`,
      { cause: e },
    );
  }

  /**
   * Writes `bytes` under `name`, locked in COMPLIANCE mode until `retainUntil`, unless an object
   * is already there: then its oldest version must hold the same bytes ("present"), else
   * INTEGRITY_FAILURE. Only one writer per prefix may run (the data directory's lock, or the
   * writer lease).
   */
  async putLocked(
    name: string,
    bytes: Uint8Array,
    retainUntil: Date,
    options: { readonly known?: "new" } = {},
  ): Promise<PutOutcome> {
    // A HEAD first: nearly always the object is new, and one HEAD costs radosgw far less than
    // listing versions. (A name hidden by a delete marker reads as absent: writing it again
    // adds a version beside the original, which `vellum archive check` reports.) A caller that
    // knows the name is new (`known: "new"`) saves the HEAD; were it wrong, the write adds a
    // version beside the original and the check compares them.
    const existing =
      options.known !== "new" && (await this.#exists(name))
        ? await this.getOldest(name)
        : undefined;
    if (existing !== undefined) {
      if (bytesEqual(existing, bytes)) return "present";
      throw new VellumError(
        "INTEGRITY_FAILURE",
        `${this.describe(name)} already holds other bytes (${existing.length}, not ${bytes.length}): the archive and the log disagree`,
      );
    }
    try {
      await this.#s3.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: this.#key(name),
          Body: bytes,
          ContentLength: bytes.length,
          ContentType: "application/octet-stream",
          ObjectLockMode: "COMPLIANCE",
          ObjectLockRetainUntilDate: retainUntil,
        }),
      );
    } catch (e) {
      throw this.#failure(e, `writing ${this.describe(name)}`);
    }
    return "written";
  }

  async #exists(name: string): Promise<boolean> {
    try {
      await this.#s3.send(
        new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.#key(name) }),
      );
      return true;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return false;
      throw this.#failure(e, `looking for ${this.describe(name)}`);
    }
  }

  /**
   * Writes `bytes` under `name` without a lock (the head of the log: its latest checkpoint and
   * partial tiles, replaced as it grows). Earlier versions of `name` are deleted: they are
   * unlocked, and a versioned bucket would otherwise keep every one.
   */
  async putHead(
    name: string,
    bytes: Uint8Array,
    contentType = "application/octet-stream",
  ): Promise<void> {
    try {
      const put = await this.#s3.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: this.#key(name),
          Body: bytes,
          ContentLength: bytes.length,
          ContentType: contentType,
        }),
      );
      const keep = put.VersionId;
      for (const v of (await this.versions(name)).get(name) ?? []) {
        if (v.versionId !== keep) await this.#deleteVersion(name, v.versionId);
      }
    } catch (e) {
      throw this.#failure(e, `writing ${this.describe(name)}`);
    }
  }

  /** Deletes every version of an unlocked head object (a superseded partial tile). */
  async deleteHead(name: string): Promise<void> {
    for (const v of (await this.versions(name)).get(name) ?? []) {
      await this.#deleteVersion(name, v.versionId);
    }
  }

  async #deleteVersion(name: string, versionId: string): Promise<void> {
    const id = versionId.replace(/^delete-marker:/, "");
    try {
      await this.#s3.send(
        new DeleteObjectCommand({
          Bucket: this.location.bucket,
          Key: this.#key(name),
          ...(id === "null" ? {} : { VersionId: id }),
        }),
      );
    } catch (e) {
      throw this.#failure(e, `deleting an old version of ${this.describe(name)}`);
    }
  }

  /** The bytes of `name`'s latest version (a head object), or undefined. */
  getLatest(name: string): Promise<Uint8Array | undefined> {
    return this.#read(name, undefined);
  }

  /** `s3://bucket/prefix/name`, for messages. */
  describe(name: string): string {
    return `s3://${this.location.bucket}/${this.#key(name)}`;
  }

  /** Every version of every object under `prefix` (relative to the bucket's prefix), by key. */
  async versions(prefix = ""): Promise<Map<string, ObjectVersion[]>> {
    const out = new Map<string, ObjectVersion[]>();
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    try {
      do {
        const res = await this.#s3.send(
          new ListObjectVersionsCommand({
            Bucket: this.location.bucket,
            Prefix: this.#key(prefix),
            KeyMarker: keyMarker,
            VersionIdMarker: versionMarker,
          }),
        );
        const all = [
          ...(res.Versions ?? []).map((v) => ({ ...v, deleteMarker: false })),
          ...(res.DeleteMarkers ?? []).map((v) => ({ ...v, Size: 0, deleteMarker: true })),
        ];
        for (const v of all) {
          const key = (v.Key ?? "").slice(this.location.prefix.length);
          const list = out.get(key) ?? [];
          list.push({
            key,
            versionId: `${v.deleteMarker ? "delete-marker:" : ""}${v.VersionId ?? "null"}`,
            lastModified: v.LastModified ?? new Date(0),
            size: v.Size ?? 0,
          });
          out.set(key, list);
        }
        keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
        versionMarker = res.IsTruncated ? res.NextVersionIdMarker : undefined;
      } while (keyMarker !== undefined);
    } catch (e) {
      throw this.#failure(e, `listing ${this.describe(prefix)}`);
    }
    for (const list of out.values()) {
      list.sort((a, b) => a.lastModified.getTime() - b.lastModified.getTime());
    }
    return out;
  }

  /** The bytes of `name`'s oldest version (the one written first), or undefined. */
  async getOldest(name: string): Promise<Uint8Array | undefined> {
    const list = (await this.versions(name)).get(name);
    const first = list?.find((v) => !v.versionId.startsWith("delete-marker:"));
    if (first === undefined) return undefined;
    return this.get(name, first.versionId);
  }

  /** The bytes of one version of `name`. */
  async get(name: string, versionId: string): Promise<Uint8Array> {
    return (await this.#read(name, versionId)) as Uint8Array;
  }

  /** One version's bytes, or the latest's (undefined only when there is no such object). */
  async #read(name: string, versionId: string | undefined): Promise<Uint8Array | undefined> {
    try {
      const res = await this.#s3.send(
        new GetObjectCommand({
          Bucket: this.location.bucket,
          Key: this.#key(name),
          ...(versionId === undefined || versionId === "null" ? {} : { VersionId: versionId }),
        }),
      );
      return await (
        res.Body as { transformToByteArray(): Promise<Uint8Array> }
      ).transformToByteArray();
    } catch (e) {
      if (versionId === undefined && (e as { name?: string }).name === "NoSuchKey")
        return undefined;
      throw this.#failure(e, `reading ${this.describe(name)}`);
    }
  }

  /** The lock on one version of `name`. */
  async retention(name: string, versionId: string): Promise<Retention> {
    try {
      const res = await this.#s3.send(
        new HeadObjectCommand({
          Bucket: this.location.bucket,
          Key: this.#key(name),
          ...(versionId === "null" ? {} : { VersionId: versionId }),
        }),
      );
      return { mode: res.ObjectLockMode, retainUntil: res.ObjectLockRetainUntilDate };
    } catch (e) {
      throw this.#failure(e, `reading the lock of ${this.describe(name)}`);
    }
  }
}
