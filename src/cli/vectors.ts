/**
 * `vellum vectors`: writes a tlog-vectors/v1 file computed by Vellum from another file's leaves
 * and keys, and optionally compares it, section by section, with that file.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { VellumError } from "../core/errors.js";
import {
  generateVectors,
  VECTORS_FORMAT,
  type VectorsFile,
  type VectorsInput,
} from "../tools/vectors.js";
import { exitCodesHelp } from "./exit-codes.js";

/** The sections Vellum computes (everything but the inputs and the free-text notes). */
export const COMPUTED_SECTIONS = [
  "leafHashes",
  "roots",
  "inclusion",
  "consistency",
  "tilePaths",
  "tiles",
  "checkpoints",
] as const;

export function compareVectors(mine: VectorsFile, theirs: Record<string, unknown>): string[] {
  const differing: string[] = [];
  for (const section of COMPUTED_SECTIONS) {
    if (JSON.stringify(mine[section]) !== JSON.stringify(theirs[section])) differing.push(section);
  }
  return differing;
}

function readInput(path: string): Record<string, unknown> & VectorsInput {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new VellumError(
      "MALFORMED",
      `${path}: not a readable JSON file (${(e as Error).message})`,
    );
  }
  const d = doc as Record<string, unknown> & VectorsInput;
  if (typeof d !== "object" || d === null || d.format !== VECTORS_FORMAT) {
    throw new VellumError("MALFORMED", `${path}: not a ${VECTORS_FORMAT} file (no "format" field)`);
  }
  if (!Array.isArray(d.leaves) || typeof d.checkpoints !== "object" || d.checkpoints === null) {
    throw new VellumError("MALFORMED", `${path}: needs "leaves" and "checkpoints" keys`);
  }
  return d;
}

export function registerVectors(program: Command): void {
  program
    .command("vectors")
    .description(
      "compute tlog-vectors/v1 known answers (roots, proofs, tiles, checkpoints) from the leaves and keys of another vectors file",
    )
    .requiredOption(
      "--from <file>",
      "tlog-vectors/v1 file: only its leaves and checkpoint keys are read",
    )
    .option("--out <file>", "where to write the computed file ('-' for standard output)", "-")
    .option("--compare", "also compare every computed section with --from; exit 1 if any differs")
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum vectors --from test/known-answers/reference-vectors-300.json --out mine.json --compare\n" +
        exitCodesHelp([0, 1, 2, 4]),
    )
    .action((opts: { from: string; out: string; compare?: boolean }) => {
      const input = readInput(opts.from);
      const started = performance.now();
      const out = generateVectors({ leaves: input.leaves, checkpoints: input.checkpoints });
      const text = `${JSON.stringify(out, null, 2)}\n`;
      if (opts.out === "-") process.stdout.write(text);
      else writeFileSync(opts.out, text);
      const summary = `${out.leaves.length} leaves: ${out.roots.length} roots, ${out.inclusion.length} inclusion and ${out.consistency.length} consistency proofs, ${out.tiles.length} tile sets, ${out.checkpoints.signed.length} checkpoints in ${Math.round(performance.now() - started)} ms`;
      process.stderr.write(`${summary}\n`);
      if (opts.compare) {
        const differing = compareVectors(out, input);
        for (const section of COMPUTED_SECTIONS) {
          process.stderr.write(
            `${differing.includes(section) ? "DIFFERS" : "same   "} ${section}\n`,
          );
        }
        if (differing.length > 0) process.exitCode = 1;
      }
    });
}
