/**
 * @module
 * Index answers as JSON (GET /v1/events with actor, action, resource or tenant; spec/api.md)
 * turned into what src/core/index-answer.ts verifies. Nothing here is trusted: the decoded page
 * only names what the verifier must check.
 */
import { base64Decode } from "../core/bytes.js";
import { check } from "../core/errors.js";
import { type IndexKey, KEY_KINDS } from "../core/event-keys.js";
import type { IndexPage } from "../core/index-answer.js";

type Json = Record<string, unknown>;

/** A JSON list of base64 hashes, decoded. */
export const hashes = (v: unknown, what: string): Uint8Array[] => {
  check(Array.isArray(v), "MALFORMED", `${what} must be an array of base64 hashes`);
  return (v as unknown[]).map((h) => base64Decode(h as string, what));
};

/** A JSON list of `{index, leaf}` with base64 leaves, decoded. */
export const leaves = (v: unknown) => {
  check(Array.isArray(v), "MALFORMED", "leaves must be an array");
  return (v as Json[]).map((l) => ({
    index: l.index as number,
    leaf: base64Decode(l.leaf as string, "leaf"),
  }));
};

export interface DecodedIndexAnswer {
  readonly page: IndexPage;
  /** The main checkpoint (first pages). */
  readonly checkpoint: string | null;
  /** The index-log checkpoint (first pages). */
  readonly indexCheckpoint: string | null;
  readonly next: string | null;
}

export function decodeIndexAnswer(a: Json): DecodedIndexAnswer {
  check(a.mode === "index", "MALFORMED", "the answer is not an index answer");
  const key = a.key as IndexKey;
  check(
    typeof key?.value === "string" && KEY_KINDS.includes(key.kind),
    "MALFORMED",
    "the answer's key must be a kind and a value",
  );
  const w = a.window as Json;
  const r = a.run as Json;
  const rev = a.revision as Json | null;
  const map = rev?.map as Json | undefined;
  const terminal = map?.terminal as Json | null | undefined;
  const page: IndexPage = {
    treeSize: a.treeSize as number,
    key: { kind: key.kind, value: key.value },
    count: a.count as number,
    listRoot: base64Decode(a.listRoot as string, "list root"),
    ...(rev === null || rev === undefined
      ? {}
      : {
          revision: {
            leafIndex: rev.leafIndex as number,
            leaf: base64Decode(rev.leaf as string, "index leaf"),
            inclusion: hashes(rev.inclusion, "index inclusion proof"),
            map: {
              siblings: hashes(map?.siblings, "map proof"),
              terminal:
                terminal === null || terminal === undefined
                  ? null
                  : {
                      key: base64Decode(terminal.key as string, "map key"),
                      value: base64Decode(terminal.value as string, "map value"),
                    },
            },
            consistency: hashes(rev.consistency, "consistency proof"),
          },
        }),
    window: {
      treeSize: a.treeSize as number,
      from: a.from as number,
      to: a.to as number,
      start: w.start as number,
      end: w.end as number,
      pageStart: w.start as number,
      pageEnd: w.start as number,
      leaves: leaves(w.leaves),
      multiproof: hashes(w.multiproof, "window multiproof"),
    },
    run: {
      listSize: r.listSize as number,
      from: r.from as number,
      to: r.to as number,
      start: r.start as number,
      end: r.end as number,
      pageStart: r.pageStart as number,
      pageEnd: r.pageEnd as number,
      items: (r.items as Json[]).map((i) => ({
        position: i.position as number,
        logIndex: i.logIndex as number,
      })),
      multiproof: hashes(r.multiproof, "list multiproof"),
    },
    leaves: leaves(a.leaves),
    multiproof: hashes(a.multiproof, "multiproof"),
  };
  return {
    page,
    checkpoint: (a.checkpoint as string | null) ?? null,
    indexCheckpoint: (rev?.checkpoint as string | undefined) ?? null,
    next: (a.next as string | null) ?? null,
  };
}
