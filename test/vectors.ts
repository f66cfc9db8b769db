/**
 * Loads the known-answer vectors from ../shared/vectors (outside this repository, read at test
 * time and never copied). Paths are relative to the repository root.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { base64Decode } from "../src/core/bytes.js";

export const VECTORS_DIR = fileURLToPath(new URL("../../shared/vectors/", import.meta.url));

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

export interface ReferenceVectors {
  format: string;
  leaves: string[];
  leafHashes: string[];
  roots: { treeSize: number; root: string }[];
  inclusion: {
    leafIdx: number;
    treeSize: number;
    root: string;
    leafHash: string;
    leaf: string;
    proof: string[];
  }[];
  consistency: { size1: number; size2: number; root1: string; root2: string; proof: string[] }[];
  tilePaths: { level: number; index: number; width: number; path: string }[];
  tiles: {
    treeSize: number;
    resources: { path: string; length: number; sha256: string; data?: string }[];
  }[];
  checkpoints: {
    origin: string;
    logSkey: string;
    logVkey: string;
    signed: { treeSize: number; note: string }[];
    cosignerSkey: string;
    cosignerVkey: string;
    cosignTime: number;
    cosigned: { treeSize: number; note: string }[];
  };
}

export const reference300 = (): ReferenceVectors =>
  readVector<ReferenceVectors>("reference-vectors-300.json");
