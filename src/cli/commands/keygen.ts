/**
 * @module
 * `vellum keygen`: an Ed25519 log or witness key; the private key only ever to a new file (mode 0600) or stderr.
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import {
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  signerFromSeed,
} from "../../core/keys.js";
import { createSecretFile } from "../../platform/durable-file.js";
import { exitCodesHelp, usageError } from "../exit-codes.js";

import { printJson } from "./io.js";

export function registerKeygen(program: Command): void {
  program
    .command("keygen")
    .description("make an Ed25519 key: a log key (signed notes) or a witness key (cosignatures)")
    .requiredOption("--name <name>", "the key name: a log's origin, or a witness name")
    .option("--type <type>", "log or witness", "log")
    .option(
      "--out <file>",
      "where to write the private key (mode 0600); the verifier key goes to stdout",
    )
    .option(
      "--json",
      "print {name, type, verifierKey, privateKeyFile} as JSON (never the private key)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum keygen --name witness.example/w1 --type witness --out w1.key > w1.vkey\n" +
        exitCodesHelp([0, 2, 4]),
    )
    .action((o: { name: string; type: string; out?: string; json?: boolean }) => {
      if (o.type !== "log" && o.type !== "witness")
        throw usageError(`--type must be "log" or "witness", not "${o.type}"`);
      if (!isValidKeyName(o.name))
        throw usageError(`--name "${o.name}" cannot name a key (no spaces, no "+")`);
      const type = o.type === "log" ? SIG_TYPE_ED25519 : SIG_TYPE_COSIGNATURE;
      const seed = randomBytes(32);
      const skey = formatSignerKey({ name: o.name, type, seed });
      const publicKey = signerFromSeed(o.name, seed).publicKey;
      if (o.out !== undefined) {
        try {
          createSecretFile(o.out, `${skey}\n`);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "EEXIST")
            throw usageError(`--out ${o.out} exists; keys are never overwritten`);
          throw e;
        }
        process.stderr.write(`wrote the private key to ${o.out} (mode 0600)\n`);
      } else {
        process.stderr.write("no --out: the private key follows; keep it secret\n");
        process.stderr.write(`${skey}\n`);
      }
      const verifierKey = formatVerifierKey({ name: o.name, type, publicKey });
      if (o.json === true) {
        printJson({ name: o.name, type: o.type, verifierKey, privateKeyFile: o.out ?? null });
      } else {
        process.stdout.write(`${verifierKey}\n`);
      }
    });
}
