/**
 * `vellum vectors`: the file it computes from reference-vectors-300.json's leaves and keys must
 * equal that file (produced by golang.org/x/mod and cross-checked with two other implementations)
 * in every computed section, and it must scale to thousands of leaves.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMPUTED_SECTIONS } from "../../src/cli/vectors.js";
import { base64Decode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { cosignatureVerifierFromKey } from "../../src/core/cosignature.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import { runVellum } from "../helpers/cli.js";
import { reference300, VECTORS_DIR } from "../vectors.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-vectors-"));
const b64 = (s: string) => base64Decode(s);

describe("vellum vectors", () => {
  it("reproduces every section of reference-vectors-300.json", () => {
    const out = join(dir, "300.json");
    const r = runVellum([
      "vectors",
      "--from",
      join(VECTORS_DIR, "reference-vectors-300.json"),
      "--out",
      out,
      "--compare",
    ]);
    expect(r.stderr).not.toContain("DIFFERS");
    expect(r.code).toBe(0);
    const mine = JSON.parse(readFileSync(out, "utf8"));
    const theirs = reference300() as unknown as Record<string, unknown>;
    expect(mine.format).toBe("tlog-vectors/v1");
    expect(mine.leaves).toEqual(theirs.leaves);
    for (const section of COMPUTED_SECTIONS)
      expect(mine[section], section).toEqual(theirs[section]);
  });

  it("reads only the leaves and keys: a doctored computed section is reported, not echoed", () => {
    const ref = reference300();
    ref.roots[5]!.root = ref.roots[6]!.root;
    ref.inclusion.pop();
    const input = join(dir, "doctored.json");
    writeFileSync(input, JSON.stringify(ref));
    const r = runVellum(["vectors", "--from", input, "--out", join(dir, "d.json"), "--compare"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DIFFERS roots/);
    expect(r.stderr).toMatch(/DIFFERS inclusion/);
    expect(r.stderr).toMatch(/same {4}tiles/);
  });

  it("writes a self-consistent file for 5000 leaves that agrees with the reference on its prefix", () => {
    const ref = reference300();
    const leaves = [...ref.leaves];
    for (let i = leaves.length; i < 5000; i++)
      leaves.push(Buffer.from(`entry ${i}`).toString("base64"));
    const input = join(dir, "in5000.json");
    writeFileSync(
      input,
      JSON.stringify({ format: "tlog-vectors/v1", leaves, checkpoints: ref.checkpoints }),
    );
    const out = join(dir, "5000.json");
    const r = runVellum(["vectors", "--from", input, "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(readFileSync(out, "utf8")) as typeof ref;
    expect(v.roots).toHaveLength(5001);
    expect(v.roots.slice(0, 301)).toEqual(ref.roots);
    for (const c of v.inclusion) {
      verifyInclusion(
        c.leafIdx,
        c.treeSize,
        b64(c.leafHash),
        c.proof.map(b64),
        b64(v.roots[c.treeSize]!.root),
      );
    }
    for (const c of v.consistency) {
      verifyConsistency(c.size1, c.size2, c.proof.map(b64), b64(c.root1), b64(c.root2));
    }
    expect(v.inclusion.some((c) => c.treeSize === 4096 && c.leafIdx === 2048)).toBe(true);
    expect(v.tiles.map((t) => t.treeSize)).toEqual([1, 2, 255, 256, 257, 5000]);
    const log = verifierFromKey(ref.checkpoints.logVkey);
    const cosigner = cosignatureVerifierFromKey(ref.checkpoints.cosignerVkey);
    expect(v.checkpoints.cosigned.map((c) => c.treeSize)).toEqual([0, 1, 256, 5000]);
    for (const c of v.checkpoints.cosigned) {
      const opened = openCheckpoint(c.note, log, [cosigner]);
      expect(opened.checkpoint.size).toBe(c.treeSize);
      expect(opened.signatures).toHaveLength(2);
    }
  });

  it("refuses input that is not a vectors file, with a one-line reason", () => {
    const input = join(dir, "bad.json");
    writeFileSync(input, JSON.stringify({ leaves: [] }));
    const r = runVellum(["vectors", "--from", input]);
    expect(r.code).toBe(2); // a usage error; 1 is for vectors that differ
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/not a tlog-vectors\/v1 file/);
    const missing = runVellum(["vectors", "--from", join(dir, "nope.json")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/not a readable JSON file/);
  });
});

describe("vellum --help", () => {
  it("lists the commands and exits 0", () => {
    const r = runVellum(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: vellum/);
    expect(r.stdout).toMatch(/vectors/);
    const sub = runVellum(["vectors", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/Example:/);
  });

  it("an unknown command fails with a usage hint", () => {
    const r = runVellum(["frobnicate"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown command/);
  });
});
