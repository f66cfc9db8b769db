/**
 * Loads the known-answer vectors from test/known-answers/ (copied unchanged from independent
 * implementations; its README.md names each file's source and licence).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { base64Decode } from "../src/core/bytes.js";
import type { VectorsFile } from "../src/tools/vectors.js";

export const VECTORS_DIR = fileURLToPath(new URL("./known-answers/", import.meta.url));

export function readVector<T = unknown>(relativePath: string): T {
  return JSON.parse(readFileSync(join(VECTORS_DIR, relativePath), "utf8")) as T;
}

/** Every .json file under a vectors subdirectory, as [relative path, parsed content]. */
export function readVectorTree<T = unknown>(relativeDir: string): [string, T][] {
  const out: [string, T][] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(VECTORS_DIR, dir)).sort()) {
      const rel = join(dir, name);
      if (statSync(join(VECTORS_DIR, rel)).isDirectory()) walk(rel);
      else if (name.endsWith(".json")) out.push([rel, readVector<T>(rel)]);
    }
  };
  walk(relativeDir);
  return out;
}

export const b64 = (s: string): Uint8Array => base64Decode(s);

/** Lenient base64 for vectors that deliberately hold non-hash placeholders. */
export const b64loose = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));

/** reference-vectors-300.json (format tlog-vectors/v1), read fresh on every call. */
export const reference300 = (): VectorsFile =>
  readVector<VectorsFile>("reference-vectors-300.json");

/** note-golden.json: the golang.org/x/mod sumdb/note example key, note and bad keys. */
export interface GoldenNote {
  source: Record<string, string>;
  skey: string;
  vkey: string;
  text: string;
  signedNote: string;
  badVkeys: { vkey: string; why: string }[];
}

/** note-golden.json, read fresh on every call. */
export const goldenNote = (): GoldenNote => readVector<GoldenNote>("note-golden.json");
