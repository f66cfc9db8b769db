/**
 * @module
 * `vellum inspect`: a log's size, checkpoint, timestamp and witnesses, the checkpoint verified
 * with --key.
 */
import type { Command } from "commander";
import { VellumClient } from "../../client/http.js";
import { openCheckpoint } from "../../core/checkpoint.js";
import { SIG_TYPE_ED25519, verifierFromKey } from "../../core/keys.js";
import {
  type ConnectionFlags,
  connectionOptions,
  explainUnauthenticated,
  resolveConnection,
} from "../connection.js";
import { exitCodesHelp } from "../exit-codes.js";
import { readKeyArg } from "../keys-arg.js";

import { printJson } from "./io.js";
import { verifyFailure } from "./verify.js";

export function registerInspect(program: Command): void {
  connectionOptions(
    program
      .command("inspect")
      .description(
        "show a log's size, checkpoint, timestamp and witnesses (verifying the checkpoint with --key)",
      ),
    "read",
  )
    .option(
      "--key <vkey|file>",
      "the log's verifier key, its text or a file holding it (e.g. DATA/log.vkey): verifies the checkpoint",
    )
    .option("--json", "print what it shows as one JSON document (with the checkpoint note)")
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum inspect --url http://127.0.0.1:6962 --key vellum-data/log.vkey\n" +
        exitCodesHelp([0, 1, 2, 4]),
    )
    .action(async (o: ConnectionFlags & { key?: string; json?: boolean }) => {
      const connection = resolveConnection(o);
      const key = o.key === undefined ? undefined : readKeyArg(o.key, "--key", SIG_TYPE_ED25519);
      const client = new VellumClient({
        url: connection.url,
        ...(connection.token === undefined ? {} : { token: connection.token }),
        retries: 1,
      });
      let info: {
        origin: string;
        treeSize: number;
        publishedSize: number | null;
        checkpointTime: number;
        verifierKey: string;
        status: string;
        dedup?: string;
        witnesses: { name: string; cosignedSize: number | null; lastError: string | null }[];
      };
      let note: string;
      try {
        info = (await client.logInfo()) as typeof info;
        note = await client.checkpoint();
      } catch (e) {
        throw explainUnauthenticated(e, connection);
      }
      let verifiedSize: number | undefined;
      if (key !== undefined) {
        try {
          verifiedSize = openCheckpoint(note, verifierFromKey(key)).checkpoint.size;
        } catch (e) {
          throw verifyFailure(e, "the log's checkpoint does not verify with --key: ");
        }
      }
      if (o.json === true) {
        printJson({
          url: connection.url,
          origin: info.origin,
          status: info.status,
          treeSize: info.treeSize,
          publishedSize: info.publishedSize ?? null,
          checkpointTime: info.checkpointTime,
          verifierKey: info.verifierKey ?? null,
          checkpoint: note,
          verified: key !== undefined,
          verifiedWith: key ?? null,
          witnesses: info.witnesses,
        });
        return;
      }
      let verified = "not verified (pass --key)";
      if (key !== undefined) {
        verified = `verified with ${key.split("+")[0]}+${key.split("+")[1]} (size ${verifiedSize})`;
      } else if (info.verifierKey) {
        verified += `; the server says its key is ${info.verifierKey}`;
      }
      const lines = [
        `log       ${info.origin} (${info.status})`,
        `size      ${info.treeSize} signed, ${info.publishedSize ?? "none"} published`,
        `signed at ${new Date(info.checkpointTime * 1000).toISOString()}`,
        ...(info.dedup === undefined
          ? []
          : [
              `dedup     by ${info.dedup === "key" ? "idempotency key only" : "payload and idempotency key"}`,
            ]),
        `checkpoint ${verified}`,
        ...info.witnesses.map(
          (w) =>
            `witness   ${w.name}: ${w.cosignedSize === null ? "no cosignature yet" : `cosigned size ${w.cosignedSize}`}${w.lastError ? ` (last error: ${w.lastError})` : ""}`,
        ),
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
