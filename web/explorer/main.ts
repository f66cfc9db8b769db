/**
 * The explorer (served by `vellum serve` at /): shows the log and proves in the page what it
 * shows, with the SDK (src/client) — never trusting the server's word:
 *
 *  - the log's verifier key is pinned in local storage on first use, per origin; a server that
 *    later presents another key is refused loudly;
 *  - every checkpoint is opened with the pinned key and must be consistent with the last one this
 *    browser trusted (kept in local storage, keyed by the log's key); a contradiction is shown as
 *    INCONSISTENT with the evidence to download;
 *  - an entry's leaf hash is recomputed here from its fields, and its inclusion proof verified
 *    against the trusted checkpoint, then drawn from leaf to root.
 *
 * Payloads are only ever put into the page as text (textContent), never as HTML. The bearer
 * token lives in session storage (this tab only) and is sent only to this origin.
 */
import { VellumClient } from "../../src/client/http.js";
import { verifyReceipt } from "../../src/client/receipts.js";
import { type TrustedStore, VerifyingClient } from "../../src/client/verifying.js";
import { base64Decode, base64Encode, bytesEqual } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { cosignatureVerifier } from "../../src/core/cosignature.js";
import { encodeLeafAndHash, parseUuid } from "../../src/core/entry.js";
import { isVellumError, VellumError } from "../../src/core/errors.js";
import type { EventFilter } from "../../src/core/event-keys.js";
import { parseVerifierKey, verifierFromKey } from "../../src/core/keys.js";
import { verifyKnownSignatures } from "../../src/core/note.js";
import { parsePolicy, verifyQuorum } from "../../src/core/policy.js";
import { hashChildren } from "../../src/core/rfc6962.js";

const TOKEN_KEY = "vellum.token";
const PIN_KEY = `vellum.pinned-key ${location.origin}`;

/** The last trusted checkpoint per log key, in local storage (survives reloads). */
const localTrust: TrustedStore = {
  async load(logKey) {
    return localStorage.getItem(`vellum.trusted ${logKey}`) ?? undefined;
  },
  async save(logKey, checkpoint) {
    localStorage.setItem(`vellum.trusted ${logKey}`, checkpoint);
  },
};

const token = () => sessionStorage.getItem(TOKEN_KEY) ?? undefined;
const client = () => {
  const t = token();
  return new VellumClient({
    url: location.origin,
    ...(t === undefined ? {} : { token: t }),
    retries: 1,
    // Always the server's current answer: a cached checkpoint (max-age=2) would hide a change.
    fetch: (input, init) => fetch(input, { ...init, cache: "no-store" }),
  });
};

// ---- DOM helpers: text only -------------------------------------------------------------------

type Child = Node | string | undefined | false;
function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) {
    if (c === undefined || c === false) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}
const main = () => document.getElementById("main") as HTMLElement;
/**
 * Which navigation is current: a page started for an earlier one (still awaiting the server)
 * must not replace what a later one shows.
 */
let generation = 0;

/** Shows `children` if navigation `gen` is still the current one. */
function showFor(gen: number, ...children: Child[]): void {
  if (gen === generation) show(...children);
}

function show(...children: Child[]): void {
  const m = main();
  m.replaceChildren(...children.filter((c): c is Node | string => c !== undefined && c !== false));
  m.focus();
}
function status(kind: "ok" | "bad" | "info", text: string, id?: string): HTMLElement {
  return el(
    "div",
    { class: `status ${kind}`, role: kind === "bad" ? "alert" : "status", ...(id ? { id } : {}) },
    text,
  );
}
function dl(rows: [string, Child][]): HTMLElement {
  const d = el("dl");
  for (const [k, v] of rows) d.append(el("dt", {}, k), el("dd", {}, v));
  return d;
}
const ago = (seconds: number) => {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  return s < 120
    ? `${s} s ago`
    : s < 7200
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 3600)} h ago`;
};

// ---- trust ------------------------------------------------------------------------------------

/** The log's key: pinned on first use; a different one later is refused. */
async function logKey(): Promise<{ key: string; firstUse: boolean }> {
  const info = await client().logInfo();
  const served = String(info.verifierKey);
  const pinned = localStorage.getItem(PIN_KEY);
  if (pinned === null) {
    localStorage.setItem(PIN_KEY, served);
    return { key: served, firstUse: true };
  }
  if (pinned !== served) {
    throw new Error(
      `the server now presents the key ${served}, but this browser pinned ${pinned} for this log: refusing to show anything it signs`,
    );
  }
  return { key: pinned, firstUse: false };
}

/** The witness policy (C2SP tlog-policy) this browser requires of the log, if one was set. */
function policyFor(key: string): string | undefined {
  return localStorage.getItem(`vellum.policy ${key}`) ?? undefined;
}

async function verifier(): Promise<{ v: VerifyingClient; key: string; firstUse: boolean }> {
  const { key, firstUse } = await logKey();
  const policy = policyFor(key);
  return {
    v: new VerifyingClient(client(), {
      logKey: key,
      store: localTrust,
      ...(policy === undefined ? {} : { policy }),
    }),
    key,
    firstUse,
  };
}

/** A refusal to show: INCONSISTENT (with evidence to download) or another error. */
function refusal(e: unknown): HTMLElement {
  const box = el("div");
  if (isVellumError(e, "INCONSISTENT")) {
    box.append(status("bad", `INCONSISTENT: ${(e as Error).message}`, "verdict"));
    const evidence = JSON.stringify((e as { evidence?: unknown }).evidence ?? {}, null, 2);
    const a = el("a", { download: "vellum-inconsistency.json" }, "Download the evidence");
    a.setAttribute("href", URL.createObjectURL(new Blob([evidence], { type: "application/json" })));
    box.append(el("p", {}, a));
  } else if (isVellumError(e, "UNAUTHENTICATED") || isVellumError(e, "FORBIDDEN")) {
    box.append(
      status("info", `${(e as Error).message}`),
      el("p", {}, el("a", { href: "#/signin" }, "Sign in with a token"), " to see entries."),
    );
  } else {
    box.append(status("bad", `Not verified: ${(e as Error).message}`, "verdict"));
  }
  return box;
}

// ---- pages ------------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/**
 * The log's growth from the checkpoints it keeps (GET /v1/checkpoints): each note opened with
 * the pinned key, its time from the log's timestamp signature; a line of tree size over time and
 * bars of entries per minute. Notes that do not verify are left out and counted.
 */
async function growthChart(key: string): Promise<HTMLElement | undefined> {
  const res = await client().request("/v1/checkpoints?limit=1000");
  const notes = ((await res.json()) as { checkpoints: string[] }).checkpoints;
  const k = parseVerifierKey(key);
  const stamp = cosignatureVerifier(k.name, k.publicKey);
  const logVerifier = verifierFromKey(key);
  const points: { t: number; size: number }[] = [];
  let refused = 0;
  for (const note of notes) {
    try {
      const { checkpoint } = openCheckpoint(note, logVerifier);
      const t = verifyKnownSignatures(note, [stamp]).signatures[0]?.timestamp;
      if (t !== undefined) points.push({ t, size: checkpoint.size });
    } catch {
      refused++;
    }
  }
  if (points.length < 2) return undefined;
  // A size's note carries its latest signature (re-signed while idle): by size, each point's
  // time is at most that of any larger size, so the line only rises.
  points.sort((a, b) => a.size - b.size);
  for (let i = points.length - 2; i >= 0; i--) {
    points[i]!.t = Math.min(points[i]!.t, points[i + 1]!.t);
  }
  const t0 = points[0]!.t;
  const t1 = Math.max(points[points.length - 1]!.t, t0 + 10);
  const maxSize = Math.max(...points.map((p) => p.size), 1);
  // Entries per minute in ~40 buckets over the span: each step's growth, in the bucket it ended.
  const bucket = Math.max(1, Math.ceil((t1 - t0) / 40));
  const counts = new Map<number, number>();
  for (let i = 1; i < points.length; i++) {
    const b = Math.floor((points[i]!.t - t0) / bucket);
    counts.set(b, (counts.get(b) ?? 0) + Math.max(0, points[i]!.size - points[i - 1]!.size));
  }
  const perMinute = (n: number) => (n * 60) / bucket;
  const maxRate = Math.max(...[...counts.values()].map(perMinute), 1);
  const W = 600;
  const H = 160;
  const x = (t: number) => ((t - t0) / (t1 - t0)) * (W - 10) + 5;
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": `Tree size from ${points[0]!.size} to ${points[points.length - 1]!.size} between ${new Date(t0 * 1000).toISOString()} and ${new Date(t1 * 1000).toISOString()}; at most ${Math.round(maxRate)} entries per minute`,
  });
  const barWidth = Math.max(1, (bucket / (t1 - t0)) * (W - 10) - 1);
  for (const [b, n] of counts) {
    const h = (perMinute(n) / maxRate) * (H - 20);
    chart.append(
      svg("rect", {
        class: "bar",
        x: x(t0 + b * bucket),
        y: H - 5 - h,
        width: barWidth,
        height: h,
      }),
    );
  }
  const line = points.map(
    (p) => `${x(p.t).toFixed(1)},${(H - 5 - (p.size / maxSize) * (H - 20)).toFixed(1)}`,
  );
  chart.append(svg("polyline", { class: "line", points: line.join(" ") }));
  return el(
    "figure",
    { id: "growth" },
    chart,
    el(
      "figcaption",
      {},
      `Tree size (line) and entries per minute (bars, peak ${Math.round(maxRate)}), from ${points.length} signed checkpoints${refused > 0 ? `; ${refused} that did not verify left out` : ""}.`,
    ),
  );
}

async function overview(): Promise<void> {
  const gen = generation;
  const { v, key, firstUse } = await verifier();
  const info = await client().logInfo();
  const trusted = await v.update();
  const cp = trusted.checkpoint;
  const chart = await growthChart(key).catch(() => undefined);
  const witnesses =
    (info.witnesses as { name: string; cosignedSize: number | null }[] | undefined) ?? [];
  showFor(
    gen,
    el("h1", {}, String(info.origin)),
    status(
      "ok",
      `Checkpoint verified: size ${cp.size}, signed by the pinned key${policyFor(key) === undefined ? "" : `, cosigned by ${[...verifyQuorum(parsePolicy(policyFor(key)!), trusted.note).witnesses].sort().join(", ")} (the witness policy's quorum)`}, consistent with the last one this browser trusted.`,
      "verdict",
    ),
    firstUse
      ? status(
          "info",
          "First visit: this browser pinned the key below. Compare it with the one you were given (DATA/log.vkey).",
        )
      : undefined,
    dl([
      ["Verifier key", el("code", {}, key)],
      ["Tree size", String(cp.size)],
      ["Root hash", el("code", {}, base64Encode(cp.rootHash))],
      ["Checkpoint signed", ago(Number(info.checkpointTime))],
      ["Dedup", String(info.dedup)],
      [
        "Witnesses",
        witnesses.length === 0
          ? "none"
          : witnesses
              .map((w) => `${w.name} (cosigned size ${w.cosignedSize ?? "none yet"})`)
              .join(", "),
      ],
    ]),
    chart && el("h2", {}, "Growth"),
    chart,
    el("h2", {}, "Checkpoint"),
    el("pre", {}, trusted.note),
    el("p", {}, el("a", { href: "#/entries" }, "Browse entries, newest first")),
  );
}

function preview(payload: Uint8Array): string {
  const text = decodeText(payload);
  if (text === undefined) return `${payload.length} bytes (binary)`;
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

function decodeText(payload: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    return undefined;
  }
}

async function entries(before: number | undefined): Promise<void> {
  const gen = generation;
  const { v } = await verifier();
  const size = (await v.update()).checkpoint.size;
  const end = Math.min(before ?? size, size);
  const start = Math.max(0, end - 20);
  const res = await client().request(`/v1/entries?start=${start}&limit=${end - start}`);
  const page = (await res.json()) as {
    entries: { index: number; id: string; timestamp: number; payload: string }[];
  };
  const rows = page.entries
    .slice()
    .reverse()
    .map((e) =>
      el(
        "tr",
        {},
        el("td", {}, el("a", { href: `#/entry/${e.index}` }, String(e.index))),
        el("td", {}, new Date(e.timestamp).toISOString()),
        el("td", { class: "preview" }, preview(base64Decode(e.payload))),
      ),
    );
  showFor(
    gen,
    el("h1", {}, "Entries"),
    el("p", { class: "muted" }, `Newest first, of ${size} in the trusted checkpoint.`),
    size === 0
      ? el("p", {}, "The log is empty.")
      : el(
          "table",
          {},
          el(
            "thead",
            {},
            el("tr", {}, el("th", {}, "Index"), el("th", {}, "Time"), el("th", {}, "Payload")),
          ),
          el("tbody", {}, ...rows),
        ),
    start > 0 ? el("p", {}, el("a", { href: `#/entries/${start}` }, "Older entries")) : undefined,
  );
}

/** A structured (OCSF) event's main fields, when the payload is one. */
function eventFields(payload: Uint8Array): HTMLElement | undefined {
  const text = decodeText(payload);
  if (text === undefined) return undefined;
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof e !== "object" || e === null || typeof e.class_uid !== "number") return undefined;
  const at = (path: string): string | undefined => {
    let v: unknown = e;
    for (const k of path.split(".")) v = (v as Record<string, unknown> | undefined)?.[k];
    return v === undefined || v === null
      ? undefined
      : typeof v === "object"
        ? JSON.stringify(v)
        : String(v);
  };
  const resources = Array.isArray(e.resources)
    ? (e.resources as { uid?: unknown; name?: unknown }[])
        .map((r) => String(r.uid ?? r.name ?? "?"))
        .join(", ")
    : undefined;
  const rows: [string, string | undefined][] = [
    ["Class", `${at("class_name") ?? ""} (${at("class_uid")})`],
    ["Activity", at("activity_name") ?? at("activity_id")],
    ["Time", at("time") === undefined ? undefined : new Date(Number(at("time"))).toISOString()],
    ["Actor", at("actor.user.uid") ?? at("actor.user.name")],
    ["Action", at("api.operation")],
    ["Resources", resources],
    ["Status", at("status") ?? at("status_id")],
    ["From", at("src_endpoint.ip")],
    ["Tenant", at("metadata.tenant_uid")],
    ["Product", at("metadata.product.name")],
  ];
  return dl(rows.filter((r): r is [string, string] => r[1] !== undefined));
}

/** The payload as a person reads it: fields of JSON, text, or hex. Always as text. */
function payloadView(payload: Uint8Array): HTMLElement {
  const text = decodeText(payload);
  if (text !== undefined) {
    try {
      const json = JSON.parse(text) as unknown;
      return el("pre", { id: "payload", "data-kind": "json" }, JSON.stringify(json, null, 2));
    } catch {
      return el("pre", { id: "payload", "data-kind": "text" }, text);
    }
  }
  const hex = Array.from(payload, (b) => b.toString(16).padStart(2, "0")).join(" ");
  return el("pre", { id: "payload", "data-kind": "hex" }, hex);
}

/** The audit path from the leaf to the root, as boxes (RFC 6962: which side each sibling is). */
function pathDrawing(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
) {
  const list = el("ol", {
    class: "path",
    "aria-label": "Inclusion proof, from the leaf to the root",
  });
  list.append(el("li", { class: "leaf" }, `leaf ${index}: ${base64Encode(leafHash)}`));
  // Walk as RFC 9162 §2.1.3.2 does, showing each step's sibling and side.
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) break;
    const right = (fn & 1) === 1 || fn === sn;
    if (right) {
      r = hashChildren(p, r);
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    list.append(el("li", { class: "arrow", "aria-hidden": "true" }, "↓"));
    list.append(
      el("li", {}, `${right ? "left" : "right"} sibling ${base64Encode(p)} → ${base64Encode(r)}`),
    );
    fn >>= 1;
    sn >>= 1;
  }
  list.append(el("li", { class: "arrow", "aria-hidden": "true" }, "↓"));
  list.append(el("li", { class: "root" }, `root of ${size}: ${base64Encode(root)}`));
  return list;
}

async function entry(index: number): Promise<void> {
  const gen = generation;
  const { v } = await verifier();
  const e = await client().entry(index);
  // The leaf hash, recomputed here from what is shown: never the server's claim.
  const { leafHash } = encodeLeafAndHash({
    id: parseUuid(e.id),
    timestamp: e.timestamp,
    submitter: e.submitter,
    payload: e.payload,
  });
  const fields = dl([
    ["Index", String(e.index)],
    ["Id", el("code", {}, e.id)],
    ["Timestamp", `${new Date(e.timestamp).toISOString()} (${e.timestamp})`],
    ["Submitter", e.submitter ?? "—"],
    ["Leaf hash", el("code", {}, base64Encode(leafHash))],
  ]);
  let verdict: HTMLElement;
  let drawing: HTMLElement | undefined;
  if (!bytesEqual(leafHash, e.leafHash)) {
    verdict = status(
      "bad",
      "Not verified: the server's leaf hash is not the hash of the fields it sent.",
      "verdict",
    );
  } else {
    try {
      const trusted = await v.verifyInclusion(index, leafHash);
      const { size, rootHash } = trusted.checkpoint;
      const proof = await client().inclusionProof(index, size);
      verdict = status(
        "ok",
        `Verified: entry ${index} is in the log's tree of size ${size}, whose checkpoint is signed by the pinned key.`,
        "verdict",
      );
      drawing = pathDrawing(index, size, leafHash, proof, rootHash);
    } catch (err) {
      verdict = refusal(err);
    }
  }
  const event = eventFields(e.payload);
  showFor(
    gen,
    el("h1", {}, `Entry ${index}`),
    verdict,
    fields,
    event && el("h2", {}, "Event"),
    event,
    el("h2", {}, "Payload"),
    payloadView(e.payload),
    drawing && el("h2", {}, "Proof"),
    drawing,
  );
}

/** Reads a dropped or chosen file. */
function fileBytes(f: File): Promise<Uint8Array> {
  return f.arrayBuffer().then((b) => new Uint8Array(b));
}

/**
 * Verifies a receipt (.tlog-proof) offline in the page, with the pinned key — the same checks,
 * answers and error codes as `vellum verify` — and, given the entry's file, that it is for
 * exactly those bytes. Drop the files on the page, or choose them.
 */
async function verifyPage(): Promise<void> {
  const gen = generation;
  const { key } = await logKey();
  const receiptInput = el("input", {
    type: "file",
    id: "receipt-file",
    "aria-label": "Receipt (.tlog-proof)",
  }) as HTMLInputElement;
  const entryInput = el("input", {
    type: "file",
    id: "entry-file",
    "aria-label": "The entry (optional)",
  }) as HTMLInputElement;
  const out = el("div", { id: "receipt-result", "aria-live": "polite" });
  let receipt: Uint8Array | undefined;
  let entryBytes: Uint8Array | undefined;
  const run = () => {
    if (receipt === undefined) return;
    try {
      const policy = localStorage.getItem(`vellum.policy ${key}`) ?? undefined;
      const v = verifyReceipt(receipt, {
        logKey: key,
        ...(policy === undefined ? {} : { policy }),
        ...(entryBytes === undefined ? {} : { payload: entryBytes }),
      });
      out.replaceChildren(
        status(
          "ok",
          `Verified: index ${v.index} in the tree of size ${v.treeSize} of ${v.origin}${v.witnesses.length > 0 ? `, cosigned by ${v.witnesses.join(", ")}` : ""}${v.payloadChecked ? ", for exactly this entry" : ""}.`,
          "verdict",
        ),
        dl([
          ["Id", v.id],
          ["Logged", new Date(v.timestamp).toISOString()],
          ["Leaf hash", base64Encode(v.leafHash)],
          ["Root", v.rootHash],
        ]),
      );
    } catch (e) {
      const code = e instanceof VellumError ? e.code : "MALFORMED";
      out.replaceChildren(
        status("bad", `Not verified: ${code}: ${(e as Error).message}`, "verdict"),
      );
    }
  };
  receiptInput.addEventListener("change", async () => {
    const f = receiptInput.files?.[0];
    receipt = f === undefined ? undefined : await fileBytes(f);
    run();
  });
  entryInput.addEventListener("change", async () => {
    const f = entryInput.files?.[0];
    entryBytes = f === undefined ? undefined : await fileBytes(f);
    run();
  });
  const zone = el(
    "div",
    { class: "drop", id: "drop" },
    "Drop a receipt (.tlog-proof), and optionally the entry's file, here.",
  );
  zone.addEventListener("dragover", (ev) => ev.preventDefault());
  zone.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    const files = [...(ev.dataTransfer?.files ?? [])];
    for (const f of files) {
      const bytes = await fileBytes(f);
      const head = new TextDecoder().decode(bytes.subarray(0, 32));
      if (head.startsWith("c2sp.org/tlog-proof")) receipt = bytes;
      else entryBytes = bytes;
    }
    run();
  });
  showFor(
    gen,
    el("h1", {}, "Verify a receipt"),
    el("p", {}, "Checked here, offline, with the log's pinned key: nothing is sent to the server."),
    zone,
    el("p", {}, el("label", {}, "Receipt ", receiptInput)),
    el("p", {}, el("label", {}, "Entry (optional) ", entryInput)),
    out,
  );
}

interface TokenRow {
  id: string;
  name: string;
  scopes: string[];
  created: number;
  revoked: number | null;
  lastUsed: number | null;
  tenants: string[] | null;
}

/** Tokens (admin scope): list, create (its secret shown once), revoke. */
async function tokensPage(): Promise<void> {
  const gen = generation;
  const c = client();
  const list = ((await (await c.request("/v1/tokens")).json()) as { tokens: TokenRow[] }).tokens;
  const rows = list.map((t) => {
    const revoke = el("button", { type: "button", "data-revoke": t.id }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke "${t.name}"? It stops working at once.`)) return;
      await c.request(`/v1/tokens/${encodeURIComponent(t.id)}/revoke`, { method: "POST" });
      await tokensPage();
    });
    return el(
      "tr",
      {},
      el("td", {}, t.name),
      el("td", {}, t.scopes.join(", ")),
      el("td", {}, t.tenants === null ? "all" : t.tenants.join(", ")),
      el("td", {}, t.lastUsed === null ? "never" : new Date(t.lastUsed).toISOString()),
      el("td", {}, t.revoked === null ? revoke : `revoked ${new Date(t.revoked).toISOString()}`),
    );
  });
  const name = el("input", {
    type: "text",
    id: "token-name",
    "aria-label": "Name",
    placeholder: "name",
  }) as HTMLInputElement;
  const scopes = ["append", "read", "audit", "admin"].map(
    (sc) =>
      el("input", {
        type: "checkbox",
        value: sc,
        id: `scope-${sc}`,
        ...(sc === "read" ? { checked: "" } : {}),
      }) as HTMLInputElement,
  );
  const created = el("div", { id: "created", "aria-live": "polite" });
  const form = el(
    "form",
    { id: "create-token" },
    name,
    ...scopes.map((box) => el("label", {}, box, ` ${box.value}`)),
    el("button", { type: "submit" }, "Create"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const res = await c.request("/v1/tokens", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          name: name.value,
          scopes: scopes.filter((b) => b.checked).map((b) => b.value),
        }),
      });
      const t = (await res.json()) as { token: string; name: string };
      await tokensPage();
      document
        .getElementById("created")
        ?.replaceChildren(
          status("ok", `Created "${t.name}". Its secret, shown this once:`),
          el("pre", { id: "new-secret" }, t.token),
        );
    } catch (e) {
      created.replaceChildren(status("bad", (e as Error).message));
    }
  });
  showFor(
    gen,
    el("h1", {}, "Tokens"),
    created,
    el(
      "table",
      {},
      el(
        "thead",
        {},
        el("tr", {}, ...["Name", "Scopes", "Tenants", "Last used", ""].map((h) => el("th", {}, h))),
      ),
      el("tbody", { id: "tokens" }, ...rows),
    ),
    el("h2", {}, "New token"),
    form,
  );
}

/** Index queries (the verifiable index): every answer proven complete in the page. */
/**
 * A form asking the index by key (`fields`: the key kind and its hint), with `extra` inputs;
 * submitting puts the query in the URL (`#/<route>?…`, so a search can be shared and reloaded).
 * Returns the form and the filter the current URL asks for.
 */
function keyForm(
  id: string,
  route: string,
  fields: readonly (readonly [keyof EventFilter, string])[],
  params: URLSearchParams,
  extra: { nodes: HTMLElement[]; query: (q: URLSearchParams) => void } = {
    nodes: [],
    query: () => {},
  },
): { form: HTMLElement; filter: EventFilter } {
  const inputs = fields.map(
    ([f, hint]) =>
      el("input", {
        type: "text",
        id: `${id}-${f}`,
        "aria-label": hint,
        placeholder: hint,
        value: params.get(f) ?? "",
      }) as HTMLInputElement,
  );
  const form = el(
    "form",
    { id },
    ...inputs,
    ...extra.nodes,
    el("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    inputs.forEach((input, i) => {
      if (input.value.trim() !== "") q.set(fields[i]![0], input.value.trim());
    });
    extra.query(q);
    location.hash = `#/${route}?${q}`;
  });
  const asked: Partial<Record<keyof EventFilter, string>> = {};
  for (const [f] of fields) {
    const v = params.get(f);
    if (v !== null && v !== "") asked[f] = v;
  }
  return { form, filter: asked };
}

async function searchPage(params: URLSearchParams): Promise<void> {
  const gen = generation;
  // The time window [from, to), in this browser's time zone (the URL carries ms since the epoch).
  const asLocal = (ms: string | null) => {
    if (ms === null || ms === "") return "";
    const d = new Date(Number(ms));
    return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  };
  const from = el("input", {
    type: "datetime-local",
    id: "q-from",
    "aria-label": "from (inclusive)",
    value: asLocal(params.get("from")),
  }) as HTMLInputElement;
  const to = el("input", {
    type: "datetime-local",
    id: "q-to",
    "aria-label": "to (exclusive)",
    value: asLocal(params.get("to")),
  }) as HTMLInputElement;
  const { form, filter } = keyForm(
    "q",
    "search",
    (["actor", "action", "resource", "tenant"] as const).map((f) => [f, f] as const),
    params,
    {
      nodes: [el("label", {}, "from ", from), el("label", {}, "to ", to)],
      query: (q) => {
        if (from.value !== "") q.set("from", String(new Date(from.value).getTime()));
        if (to.value !== "") q.set("to", String(new Date(to.value).getTime()));
      },
    },
  );
  let results: HTMLElement | undefined;
  if (Object.keys(filter).length > 0) {
    const { key } = await logKey();
    const window = {
      ...(params.get("from") ? { from: Number(params.get("from")) } : {}),
      ...(params.get("to") ? { to: Number(params.get("to")) } : {}),
    };
    const answer = await client().query(filter, {
      logKey: key,
      order: "desc",
      limit: 100,
      ...window,
    });
    results = el(
      "div",
      {},
      status(
        "ok",
        `Complete: ${answer.entries.length} entries${window.from !== undefined || window.to !== undefined ? " in the window" : ""}, proven against the checkpoint of size ${answer.treeSize} and the index log.`,
        "verdict",
      ),
      el(
        "table",
        {},
        el(
          "tbody",
          {},
          ...answer.entries.map((e) =>
            el(
              "tr",
              {},
              el("td", {}, el("a", { href: `#/entry/${e.index}` }, String(e.index))),
              el("td", { class: "preview" }, preview(e.payload)),
            ),
          ),
        ),
      ),
    );
  }
  showFor(gen, el("h1", {}, "Search events"), form, results);
}

/** The access log's key, pinned like the log's (a different one later is refused). */
async function accessKey(): Promise<string | undefined> {
  const served = (await client().logInfo()).accessVerifierKey;
  if (typeof served !== "string") return undefined;
  const pin = `vellum.pinned-access-key ${location.origin}`;
  const pinned = localStorage.getItem(pin);
  if (pinned === null) localStorage.setItem(pin, served);
  else if (pinned !== served) {
    throw new Error(
      `the server now presents the access log key ${served}, but this browser pinned ${pinned}: refusing to show its records`,
    );
  }
  return served;
}

/** Who read what (audit scope): the access log's records, proven complete by its index. */
async function accessPage(params: URLSearchParams): Promise<void> {
  const gen = generation;
  const key = await accessKey();
  if (key === undefined) {
    showFor(
      gen,
      el("h1", {}, "Access log"),
      el("p", {}, "This server keeps no access log (vellum serve --access-log)."),
    );
    return;
  }
  const { form, filter } = keyForm(
    "a",
    "access",
    [
      ["resource", "entry:N (who read entry N)"],
      ["actor", "token id or name (what it read)"],
      ["action", 'route, e.g. "GET /v1/entries/:index"'],
    ],
    params,
  );
  let results: HTMLElement | undefined;
  if (Object.keys(filter).length > 0) {
    const answer = await client().query(filter, {
      logKey: key,
      log: "access",
      order: "desc",
      limit: 100,
    });
    const rows = answer.entries.map((e) => {
      const r = JSON.parse(new TextDecoder().decode(e.payload)) as {
        time: number;
        actor: { user: { uid: string; name?: string } };
        api: { operation: string };
        src_endpoint?: { ip?: string };
        resources?: { uid: string }[];
      };
      return el(
        "tr",
        {},
        el("td", {}, new Date(r.time).toISOString()),
        el(
          "td",
          {},
          r.actor.user.name === undefined
            ? r.actor.user.uid
            : `${r.actor.user.name} (${r.actor.user.uid})`,
        ),
        el("td", {}, r.src_endpoint?.ip ?? ""),
        el("td", {}, r.api.operation),
        el("td", { class: "preview" }, (r.resources ?? []).map((x) => x.uid).join(", ")),
      );
    });
    results = el(
      "div",
      {},
      status(
        "ok",
        `Complete: ${answer.entries.length} records, proven against the access log's checkpoint of size ${answer.treeSize}.`,
        "verdict",
      ),
      el("table", {}, el("tbody", {}, ...rows)),
    );
  }
  showFor(gen, el("h1", {}, "Access log: who read what"), form, results);
}

/** Settings: a witness policy every checkpoint must then meet (kept per log key). */
async function settingsPage(): Promise<void> {
  const gen = generation;
  const { key } = await logKey();
  const area = el("textarea", {
    id: "policy",
    rows: "8",
    "aria-label": "Witness policy (C2SP tlog-policy)",
  }) as HTMLTextAreaElement;
  area.value = policyFor(key) ?? "";
  const out = el("div", { "aria-live": "polite" });
  const form = el("form", { id: "settings" }, area, el("button", { type: "submit" }, "Save"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = area.value.trim();
    if (text === "") {
      localStorage.removeItem(`vellum.policy ${key}`);
      out.replaceChildren(
        status("ok", "No witness policy: checkpoints need the log's signature only."),
      );
      return;
    }
    try {
      parsePolicy(`${text}\n`);
      localStorage.setItem(`vellum.policy ${key}`, `${text}\n`);
      out.replaceChildren(
        status("ok", "Saved: every checkpoint must now meet this policy's quorum.", "saved"),
      );
    } catch (e) {
      out.replaceChildren(status("bad", `Not a policy: ${(e as Error).message}`));
    }
  });
  showFor(
    gen,
    el("h1", {}, "Settings"),
    el(
      "p",
      {},
      "A witness policy (C2SP tlog-policy: witness lines with their keys, groups, a quorum): with one, the page accepts only checkpoints its witnesses cosigned.",
    ),
    form,
    out,
  );
}

function signin(): void {
  const input = el("input", {
    type: "password",
    id: "token",
    autocomplete: "off",
    "aria-label": "Bearer token",
  }) as HTMLInputElement;
  const form = el("form", {}, input, el("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (t === "") sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, t);
    input.value = "";
    location.hash = "#/entries";
  });
  const out = el("button", { type: "button", id: "signout" }, "Sign out");
  out.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    route();
  });
  show(
    el("h1", {}, "Sign in"),
    el("p", {}, "Paste a bearer token. It is kept for this tab only and sent only to this server."),
    form,
    token() === undefined
      ? el("p", { class: "muted" }, "Not signed in.")
      : el("p", {}, "Signed in. ", out),
  );
}

async function route(): Promise<void> {
  const gen = ++generation;
  const link = document.getElementById("signin-link");
  if (link) link.textContent = token() === undefined ? "Sign in" : "Token";
  const hash = location.hash.replace(/^#/, "") || "/";
  try {
    const [path, query] = hash.split("?", 2) as [string, string | undefined];
    const list = /^\/entries(?:\/(\d+))?$/.exec(hash);
    const one = /^\/entry\/(\d+)$/.exec(hash);
    if (hash === "/") await overview();
    else if (hash === "/signin") signin();
    else if (hash === "/verify") await verifyPage();
    else if (hash === "/tokens") await tokensPage();
    else if (path === "/search") await searchPage(new URLSearchParams(query ?? ""));
    else if (path === "/access") await accessPage(new URLSearchParams(query ?? ""));
    else if (hash === "/settings") await settingsPage();
    else if (list !== null) await entries(list[1] === undefined ? undefined : Number(list[1]));
    else if (one !== null) await entry(Number(one[1]));
    else show(el("h1", {}, "Not found"), el("p", {}, el("a", { href: "#/" }, "Overview")));
  } catch (e) {
    showFor(gen, refusal(e));
  }
}

window.addEventListener("hashchange", () => void route());
void route();
