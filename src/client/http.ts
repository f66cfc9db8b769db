/**
 * @module
 * The Vellum HTTP client: submissions (single and batched) with idempotency keys, retries with
 * backoff on 429/503 (honouring Retry-After) and on network errors, per-request timeouts; and the
 * read endpoints. Uses only `fetch` (injectable) and the verifier core, so it runs in browsers.
 * Every failure is a VellumError whose code is the server's problem code where there is one
 * (src/core/problem-codes.ts: the list shared with the server); NETWORK only when the server could
 * not be reached or did not answer in the protocol. Only 429, 502, 503, 504 and unreachable
 * servers are retried: an answer that refuses the request (400, 404, 409, 413, ...) would be the
 * same again. Arguments are checked before anything is sent (URL, entry shape, size limit).
 *
 * Over 400 lines: one client class whose methods are one per route, over one retrying request
 * function; splitting by route would scatter the retry and error rules they all share.
 */
import { nextBackoff, retryAfterMs } from "../core/backoff.js";
import { base64Decode, base64Encode, bytesEqual } from "../core/bytes.js";
import { openCheckpoint, parseCheckpoint } from "../core/checkpoint.js";
import { encodeLeafFields, MAX_PAYLOAD_SIZE, parseUuid } from "../core/entry.js";
import { check, VellumError } from "../core/errors.js";
import { type EventFilter, type IndexKey, KEY_KINDS, matchesFilter } from "../core/event-keys.js";
import { type IndexPin, indexLogVerifierKey, verifyIndexPage } from "../core/index-answer.js";
import { verifierFromKey } from "../core/keys.js";
import { expandMultiproof } from "../core/multiproof.js";
import { parseNote } from "../core/note.js";
import { clientErrorCode } from "../core/problem-codes.js";
import { formatTlogProof } from "../core/tlog-proof.js";
import { verifyWindowPage, type WindowEntry } from "../core/window.js";
import { decodeIndexAnswer, hashes, leaves } from "./index-query.js";

export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:6962`. */
  readonly url: string;
  /** A bearer token (scope `append` to submit, `read` to read entries). */
  readonly token?: string;
  readonly fetch?: typeof fetch;
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
  /** Retries after 429/503/network errors (default 5), with exponential backoff from 100 ms. */
  readonly retries?: number;
}

/** What the log answers for a submission: where the entry is, and its offline receipt. */
export interface SubmitResult {
  readonly index: number;
  readonly id: string;
  readonly timestamp: number;
  /**
   * Who submitted the entry: the id of the token that did (committed to in the leaf, and in the
   * receipt's extra). Undefined for entries logged without one (version-1 leaves).
   */
  readonly submitter: string | undefined;
  readonly leafHash: Uint8Array;
  readonly treeSize: number;
  /** The signed checkpoint (note text) the receipt proves inclusion in. */
  readonly checkpoint: string;
  /** The C2SP tlog-proof text: keep it; it verifies offline with the log's key. */
  readonly receipt: string;
  readonly duplicate: boolean;
  /**
   * True only when `checkpoint` met the log's witness policy (it is cosigned by a quorum of its
   * witnesses). False for a log without a witness policy, and when no witnessed checkpoint
   * covered the entry in time: `receipt(index)` later gives a witnessed one.
   */
  readonly witnessed: boolean;
}

/** One entry of `submitBatch`: `{ payload: "text" or bytes, idempotencyKey?: "..." }`. */
export interface SubmitItem {
  readonly payload: Uint8Array | string;
  readonly idempotencyKey?: string;
}

export interface EntryRecord {
  readonly index: number;
  readonly id: string;
  readonly timestamp: number;
  /** Who submitted it (the token id), undefined for version-1 leaves. */
  readonly submitter: string | undefined;
  readonly leafHash: Uint8Array;
  readonly payload: Uint8Array;
}

const RETRYABLE = new Set([429, 502, 503, 504]);
/** Most entries sent in one batch request (the server's default limit is 10,000). */
export const BATCH_CHUNK = 1000;

const bytesOf = (p: Uint8Array | string) =>
  typeof p === "string" ? new TextEncoder().encode(p) : p;

const describe = (v: unknown) =>
  v === null
    ? "null"
    : Array.isArray(v)
      ? "an array"
      : typeof v === "string"
        ? "a string"
        : typeof v;

/** An entry's bytes, checked: text or bytes, within the size limit. `what` names it in errors. */
function payloadBytes(payload: unknown, what: string): Uint8Array {
  if (typeof payload !== "string" && !(payload instanceof Uint8Array)) {
    throw new VellumError(
      "MALFORMED",
      `${what} must be a string or a Uint8Array, not ${describe(payload)}`,
    );
  }
  const bytes = bytesOf(payload);
  if (bytes.length === 0) throw new VellumError("MALFORMED", `${what} is empty`);
  if (bytes.length > MAX_PAYLOAD_SIZE) {
    throw new VellumError(
      "TOO_LARGE",
      `${what} is ${bytes.length} bytes; an entry holds at most ${MAX_PAYLOAD_SIZE} (nothing was sent)`,
    );
  }
  return bytes;
}

/** The items of `submitBatch`, checked at the boundary, with their bytes. */
function batchItems(items: unknown): { bytes: Uint8Array; idempotencyKey?: string }[] {
  if (!Array.isArray(items)) {
    throw new VellumError(
      "MALFORMED",
      `submitBatch takes an array of { payload, idempotencyKey? }, not ${describe(items)}`,
    );
  }
  return items.map((item: unknown, i) => {
    if (typeof item !== "object" || item === null || item instanceof Uint8Array) {
      throw new VellumError(
        "MALFORMED",
        `submitBatch: items[${i}] is ${describe(item)}; each item is an object { payload, idempotencyKey? }, e.g. [{ payload: "..." }]`,
      );
    }
    const { payload, idempotencyKey } = item as { payload?: unknown; idempotencyKey?: unknown };
    const bytes = payloadBytes(payload, `submitBatch: items[${i}].payload`);
    if (idempotencyKey !== undefined && typeof idempotencyKey !== "string") {
      throw new VellumError(
        "MALFORMED",
        `submitBatch: items[${i}].idempotencyKey must be a string, not ${describe(idempotencyKey)}`,
      );
    }
    return idempotencyKey === undefined ? { bytes } : { bytes, idempotencyKey };
  });
}

/**
 * A server's base URL, checked: an http(s) URL, returned without trailing slashes. Throws
 * MALFORMED at once (a URL that cannot work is not retried).
 */
export function checkServerUrl(url: unknown): string {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === "string" ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw new VellumError(
      "MALFORMED",
      `${JSON.stringify(url)} is not a server URL: give one such as http://127.0.0.1:6962`,
    );
  }
  if (parsed.search !== "" || parsed.hash !== "") {
    throw new VellumError("MALFORMED", `the server URL ${url} must not have a query or fragment`);
  }
  return (url as string).replace(/\/+$/, "");
}

/** The `submitter` member of an answer (a string, or null for a version-1 entry). */
const submitterOf = (j: Record<string, unknown>) =>
  typeof j.submitter === "string" ? j.submitter : undefined;

function toResult(j: Record<string, unknown>): SubmitResult {
  return {
    index: j.index as number,
    id: j.id as string,
    timestamp: j.timestamp as number,
    submitter: submitterOf(j),
    leafHash: base64Decode(j.leafHash as string, "leafHash"),
    treeSize: j.treeSize as number,
    checkpoint: j.checkpoint as string,
    receipt: j.receipt as string,
    duplicate: j.duplicate as boolean,
    // Only an explicit true: an older server that does not say is not taken to have witnesses.
    witnessed: j.witnessed === true,
  };
}

/**
 * Each entry's SubmitResult from a `?proof=multi` batch answer: checks that the multiproof and
 * the entries' leaf hashes rebuild the checkpoint's root (PROOF_MISMATCH otherwise), then writes
 * each receipt. A full answer (receipts included, from a server without multiproofs) is read
 * as it is. The checkpoint's signatures are checked where receipts are verified
 * (verifyReceipt, VerifyingClient), as for the full answer.
 */
export function resultsFromMultiproof(
  answer: Record<string, unknown>,
  firstEntry = 0,
): SubmitResult[] {
  const rows = answer.results as Record<string, unknown>[];
  rows.forEach((r, k) => {
    if (r.error !== undefined) {
      const e = r.error as { code: string; detail: string };
      throw new VellumError(
        clientErrorCode(e.code, (r.status as number | undefined) ?? 0),
        `entry ${firstEntry + k}: ${e.detail}`,
      );
    }
  });
  if (rows.length === 0) return [];
  // A server that predates multiproofs ignores ?proof=multi and sends full receipts.
  if (!Array.isArray(answer.multiproof)) return rows.map(toResult);
  const checkpoint = answer.checkpoint as string;
  const treeSize = answer.treeSize as number;
  const leafHash = new Map<number, Uint8Array>();
  for (const r of rows)
    leafHash.set(r.index as number, base64Decode(r.leafHash as string, "leafHash"));
  const indices = [...leafHash.keys()].sort((a, b) => a - b);
  const hashes = (answer.multiproof as string[]).map((h) => base64Decode(h, "multiproof hash"));
  const { root, proofs } = expandMultiproof(
    indices,
    indices.map((i) => leafHash.get(i)!),
    treeSize,
    hashes,
  );
  const body = parseCheckpoint(parseNote(checkpoint).text);
  if (body.size !== treeSize || !bytesEqual(body.rootHash, root)) {
    throw new VellumError(
      "PROOF_MISMATCH",
      `the batch's multiproof computes root ${base64Encode(root)} for size ${treeSize}; its checkpoint says ${base64Encode(body.rootHash)} for size ${body.size}`,
    );
  }
  const proofOf = new Map(indices.map((index, k) => [index, proofs[k]!]));
  return rows.map((r) => {
    const index = r.index as number;
    const id = r.id as string;
    const timestamp = r.timestamp as number;
    const submitter = submitterOf(r);
    const hash = leafHash.get(index)!;
    return {
      index,
      id,
      timestamp,
      submitter,
      leafHash: hash,
      treeSize,
      checkpoint,
      receipt: formatTlogProof({
        index,
        proof: proofOf.get(index)!,
        checkpoint,
        extra: encodeLeafFields({ id: parseUuid(id), timestamp, submitter, leafHash: hash }),
      }),
      duplicate: r.duplicate as boolean,
      witnessed: answer.witnessed === true,
    };
  });
}

export class VellumClient {
  readonly url: string;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #retries: number;

  constructor(options: ClientOptions) {
    this.url = checkServerUrl(options?.url);
    this.#token = options.token;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retries = options.retries ?? 5;
  }

  /** One HTTP exchange with retries; resolves to a 2xx Response. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    let delay = 100;
    for (let attempt = 0; ; attempt++) {
      let res: Response | undefined;
      let failure: unknown;
      try {
        res = await this.#fetch(`${this.url}${path}`, {
          ...init,
          headers: {
            ...(this.#token === undefined ? {} : { Authorization: `Bearer ${this.#token}` }),
            ...(init.headers as Record<string, string> | undefined),
          },
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (e) {
        failure = e;
      }
      if (res?.ok) return res;
      const retryable = res === undefined || RETRYABLE.has(res.status);
      if (!retryable || attempt >= this.#retries) {
        if (res === undefined) {
          throw new VellumError(
            "NETWORK",
            `cannot reach ${this.url}: ${(failure as Error)?.message}`,
            { cause: failure },
          );
        }
        throw await problemError(res);
      }
      const wait = retryAfterMs(res?.headers.get("Retry-After"), 10_000) ?? delay;
      await res?.body?.cancel();
      await new Promise((r) => setTimeout(r, Math.min(wait, 10_000) * (0.75 + Math.random() / 2)));
      delay = nextBackoff(delay, 5000);
    }
  }

  async #json(path: string, init?: RequestInit): Promise<Record<string, unknown>> {
    const res = await this.request(path, init);
    return (await res.json()) as Record<string, unknown>;
  }

  /** Submits one entry; resolves once it is durably in the log, with its receipt. */
  async submit(
    payload: Uint8Array | string,
    options: { idempotencyKey?: string } = {},
  ): Promise<SubmitResult> {
    const headers: Record<string, string> = { "Content-Type": "application/octet-stream" };
    if (options.idempotencyKey !== undefined) headers["Idempotency-Key"] = options.idempotencyKey;
    const body = payloadBytes(payload, "the payload");
    if (options.idempotencyKey !== undefined && typeof options.idempotencyKey !== "string") {
      throw new VellumError("MALFORMED", "idempotencyKey must be a string");
    }
    return toResult(
      await this.#json("/v1/entries", {
        method: "POST",
        body: body as Uint8Array<ArrayBuffer>,
        headers,
      }),
    );
  }

  /**
   * Logs one structured audit event (OCSF, spec/audit.md): the server checks it against its
   * class (INVALID_EVENT naming the field) and logs its RFC 8785 canonical bytes. Its
   * `metadata.uid` is its idempotency key unless `idempotencyKey` is given, so sending it again
   * (after a timeout, from any client) returns the original.
   */
  async event(
    event: Record<string, unknown>,
    options: { idempotencyKey?: string } = {},
  ): Promise<SubmitResult> {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (options.idempotencyKey !== undefined) headers["Idempotency-Key"] = options.idempotencyKey;
    return toResult(
      await this.#json("/v1/events", { method: "POST", body: JSON.stringify(event), headers }),
    );
  }

  /**
   * Logs many events in batch requests (BATCH_CHUNK at a time, in order); the results come back
   * in order. One invalid event refuses its whole chunk (INVALID_EVENT naming `/events/N/…`);
   * chunks before it are logged, and resending them is safe (their uids make them duplicates).
   */
  async eventBatch(events: readonly Record<string, unknown>[]): Promise<SubmitResult[]> {
    const out: SubmitResult[] = [];
    for (let i = 0; i < events.length; i += BATCH_CHUNK) {
      const answer = await this.#json("/v1/events/batch?proof=multi", {
        method: "POST",
        body: JSON.stringify({ events: events.slice(i, i + BATCH_CHUNK) }),
        headers: { "Content-Type": "application/json" },
      });
      out.push(...resultsFromMultiproof(answer, i));
    }
    return out;
  }

  /**
   * Every entry logged in the time window [from, to) (milliseconds since the epoch), proven
   * complete (spec/audit.md, "Time windows"): each page's checkpoint is verified with `logKey`,
   * each page with verifyWindowPage, and the pages must tile the window's index range exactly,
   * all against one tree. Throws (INCONSISTENT, PROOF_MISMATCH, BAD_SIGNATURE, …) otherwise, so
   * what it returns is `complete`. Filter the entries (by actor, action, resource) as you like.
   */
  async window(
    from: number,
    to: number,
    options: { logKey: string; limit?: number },
  ): Promise<{ treeSize: number; checkpoint: string; entries: WindowEntry[]; complete: true }> {
    const logVerifier = verifierFromKey(options.logKey);
    const entries: WindowEntry[] = [];
    let cursor: string | null = null;
    let first: { treeSize: number; checkpoint: string; start: number; end: number } | undefined;
    let at = 0;
    do {
      const query = `from=${from}&to=${to}${options.limit === undefined ? "" : `&limit=${options.limit}`}`;
      const a = await this.#json(
        `/v1/events?${query}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`,
      );
      const proof = a.proof as Record<string, unknown>;
      check(proof?.kind === "window", "MALFORMED", "the answer is not a window proof");
      const page = {
        treeSize: a.treeSize as number,
        from: a.from as number,
        to: a.to as number,
        start: proof.start as number,
        end: proof.end as number,
        pageStart: proof.pageStart as number,
        pageEnd: proof.pageEnd as number,
        leaves: leaves(proof.leaves),
        multiproof: hashes(proof.multiproof, "multiproof hash"),
      };
      check(
        page.from === from && page.to === to,
        "INCONSISTENT",
        "the answer is for another window",
      );
      const cp = openCheckpoint(a.checkpoint as string, logVerifier).checkpoint;
      entries.push(...verifyWindowPage(page, cp.size, cp.rootHash));
      if (first === undefined) {
        first = {
          treeSize: page.treeSize,
          checkpoint: a.checkpoint as string,
          start: page.start,
          end: page.end,
        };
        at = page.start;
      }
      // Every page of one window: the same tree and range, each starting where the last ended.
      check(
        page.treeSize === first.treeSize && page.start === first.start && page.end === first.end,
        "INCONSISTENT",
        "the window's pages are not of one tree and range",
      );
      check(page.pageStart === at, "INCONSISTENT", `a page starts at ${page.pageStart}, not ${at}`);
      at = page.pageEnd;
      cursor = (a.next as string | null) ?? null;
      check(
        cursor === null || page.pageEnd > page.pageStart,
        "INCONSISTENT",
        "an empty page that goes on",
      );
    } while (cursor !== null);
    check(at === first!.end, "INCONSISTENT", `the pages end at ${at}, the window at ${first!.end}`);
    return { treeSize: first!.treeSize, checkpoint: first!.checkpoint, entries, complete: true };
  }

  /**
   * The events that have every key of `filter` (actor, action, resource, tenant) in the window
   * [from, to), from the verifiable index (spec/audit.md, "Index answers"), proven complete: the
   * first page's checkpoint is verified with `logKey`, its index-log checkpoint with the same key
   * under `<origin>/index`, each page with verifyIndexPage, and the pages must tile the key's run
   * exactly. The server proves one key's list (the shortest); the other keys filter here. Throws
   * (INCONSISTENT, PROOF_MISMATCH, BAD_SIGNATURE, …) otherwise, so what it returns is complete.
   */
  async query(
    filter: EventFilter,
    options: {
      /**
       * The queried log's verifier key: the log's (DATA/log.vkey), or with `log: "access"` the
       * access log's own (DATA/access.vkey). The index log's is derived from it.
       */
      logKey: string;
      from?: number;
      to?: number;
      order?: "asc" | "desc";
      limit?: number;
      /** `access`: ask the access log (who read what; needs the audit scope). */
      log?: "events" | "access";
    },
  ): Promise<{
    treeSize: number;
    checkpoint: string;
    key: IndexKey;
    entries: WindowEntry[];
    complete: true;
  }> {
    const access = options.log === "access";
    const logVerifier = verifierFromKey(options.logKey);
    const indexVerifier = verifierFromKey(indexLogVerifierKey(options.logKey));
    const order = options.order ?? "asc";
    const params = new URLSearchParams();
    for (const kind of KEY_KINDS) {
      const value = filter[kind];
      if (value !== undefined) params.set(kind, value);
    }
    check(
      [...params.keys()].length > 0,
      "MALFORMED",
      "a query names an actor, action, resource or tenant",
    );
    if (options.from !== undefined) params.set("from", String(options.from));
    if (options.to !== undefined) params.set("to", String(options.to));
    if (options.limit !== undefined) params.set("limit", String(options.limit));
    params.set("order", order);
    const entries: WindowEntry[] = [];
    let cursor: string | null = null;
    let pin: IndexPin | undefined;
    let first: { checkpoint: string; start: number; end: number } | undefined;
    let at = 0;
    do {
      const route = access ? "/v1/access" : "/v1/events";
      const url = `${route}?${params}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
      const answer = decodeIndexAnswer(await this.#json(url));
      const { page } = answer;
      let main: { size: number; root: Uint8Array } | undefined;
      let index: { size: number; root: Uint8Array } | undefined;
      if (pin === undefined) {
        check(
          answer.checkpoint !== null && answer.indexCheckpoint !== null,
          "MALFORMED",
          "a first page carries both checkpoints",
        );
        const cp = openCheckpoint(answer.checkpoint, logVerifier).checkpoint;
        const icp = openCheckpoint(answer.indexCheckpoint, indexVerifier).checkpoint;
        main = { size: cp.size, root: cp.rootHash };
        index = { size: icp.size, root: icp.rootHash };
      }
      const verified = verifyIndexPage(page, main, index, pin);
      pin = verified.pin;
      check(
        page.window.from === (options.from ?? 0) &&
          page.window.to === (options.to ?? Number.MAX_SAFE_INTEGER),
        "INCONSISTENT",
        "the answer is for another window",
      );
      if (first === undefined) {
        first = { checkpoint: answer.checkpoint!, start: page.run.start, end: page.run.end };
        at = order === "asc" ? first.start : first.end;
      }
      check(
        page.run.start === first.start && page.run.end === first.end,
        "INCONSISTENT",
        "the answer's pages are not of one run",
      );
      if (order === "asc") {
        check(
          page.run.pageStart === at,
          "INCONSISTENT",
          `a page starts at ${page.run.pageStart}, not ${at}`,
        );
        at = page.run.pageEnd;
        entries.push(...verified.events);
      } else {
        check(
          page.run.pageEnd === at,
          "INCONSISTENT",
          `a page ends at ${page.run.pageEnd}, not ${at}`,
        );
        at = page.run.pageStart;
        entries.push(...verified.events.reverse());
      }
      cursor = answer.next;
      check(
        cursor === null || page.run.pageEnd > page.run.pageStart,
        "INCONSISTENT",
        "an empty page that goes on",
      );
    } while (cursor !== null);
    const end = order === "asc" ? first!.end : first!.start;
    check(at === end, "INCONSISTENT", `the pages stop at list position ${at}, the run at ${end}`);
    const matching = entries.filter((e) => {
      try {
        return matchesFilter(JSON.parse(new TextDecoder().decode(e.payload)), filter);
      } catch {
        return false;
      }
    });
    return {
      treeSize: pin!.treeSize,
      checkpoint: first!.checkpoint,
      key: pin!.key,
      entries: matching,
      complete: true,
    };
  }

  /**
   * Submits many entries in batch requests (BATCH_CHUNK at a time, in parallel); results come back
   * in order. An entry the log refused rejects the whole call with its error; entries before it
   * may be stored: resubmitting is safe for entries with idempotency keys (the log returns the
   * originals); without keys (and without payload dedup) a resubmitted entry is logged again.
   */
  async submitBatch(
    items: readonly SubmitItem[],
    options: { parallel?: number } = {},
  ): Promise<SubmitResult[]> {
    // Every item checked before any is sent: a bad one changes nothing.
    const checked = batchItems(items);
    const chunks: ReturnType<typeof batchItems>[] = [];
    for (let i = 0; i < checked.length; i += BATCH_CHUNK)
      chunks.push(checked.slice(i, i + BATCH_CHUNK));
    const out: SubmitResult[][] = new Array(chunks.length);
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const i = next++;
        const entries = chunks[i]!.map((it) => ({
          payload: base64Encode(it.bytes),
          ...(it.idempotencyKey === undefined ? {} : { idempotencyKey: it.idempotencyKey }),
        }));
        // The compact answer: one checkpoint and one multiproof for the chunk, from which each
        // entry's receipt is rebuilt here, byte for byte the one the full answer would carry.
        const answer = await this.#json("/v1/entries/batch?proof=multi", {
          method: "POST",
          body: JSON.stringify({ entries }),
          headers: { "Content-Type": "application/json" },
        });
        out[i] = resultsFromMultiproof(answer, i * BATCH_CHUNK);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(options.parallel ?? 4, chunks.length) }, worker),
    );
    return out.flat();
  }

  async checkpoint(): Promise<string> {
    return (await this.request("/checkpoint")).text();
  }

  async logInfo(): Promise<Record<string, unknown>> {
    return this.#json("/v1/log");
  }

  async entry(index: number): Promise<EntryRecord> {
    const j = await this.#json(`/v1/entries/${index}`);
    return {
      index: j.index as number,
      id: j.id as string,
      timestamp: j.timestamp as number,
      submitter: submitterOf(j),
      leafHash: base64Decode(j.leafHash as string, "leafHash"),
      payload: base64Decode(j.payload as string, "payload"),
    };
  }

  /** The entry's receipt against the log's current (witnessed, if it has witnesses) checkpoint. */
  async receipt(index: number): Promise<SubmitResult> {
    return toResult(await this.#json(`/v1/entries/${index}/receipt`));
  }

  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    const j = await this.#json(`/v1/proofs/inclusion?index=${index}&size=${size}`);
    return (j.proof as string[]).map((h) => base64Decode(h, "proof hash"));
  }

  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    const j = await this.#json(`/v1/proofs/consistency?from=${from}&to=${to}`);
    return (j.proof as string[]).map((h) => base64Decode(h, "proof hash"));
  }
}

async function problemError(res: Response): Promise<VellumError> {
  let detail = res.statusText;
  let sent: unknown;
  try {
    const p = (await res.json()) as { code?: unknown; detail?: unknown };
    if (typeof p.detail === "string") detail = p.detail;
    sent = p.code;
  } catch {
    // not problem+json: keep the status text
  }
  const code = clientErrorCode(sent, res.status);
  // The server's own code is kept in the message where the client's differs (PAYLOAD_TOO_LARGE
  // becomes TOO_LARGE, ...), so nothing it said is lost.
  const said = typeof sent === "string" && sent !== code ? ` ${sent.slice(0, 40)}` : "";
  const retryAfter = Number(res.headers.get("Retry-After"));
  return new VellumError(code, `HTTP ${res.status}${said}: ${detail}`, {
    ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
  });
}
