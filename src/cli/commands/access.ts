/**
 * @module
 * `vellum access`: who read what (spec/audit.md, "The access log") — the access log's records of
 * reads of an entry (`--entry N`), by a token (`--token-id T`, its id or name), or of a route
 * (`--route`), proven complete by the access log's verifiable index (client.query with
 * `log: "access"`). Needs a token with the `audit` scope (the admin token has it).
 */
import type { Command } from "commander";
import { type ConnectionFlags, connectionOptions } from "../connection.js";
import { exitCodesHelp, usageError } from "../exit-codes.js";
import { printJson } from "./io.js";
import { provenQuery } from "./query.js";

interface AccessFlags extends ConnectionFlags {
  key: string;
  entry?: string;
  tokenId?: string;
  route?: string;
  from?: string;
  to?: string;
  newestFirst?: boolean;
  json?: boolean;
}

export function registerAccess(program: Command): void {
  connectionOptions(
    program
      .command("access")
      .description("who read what: the access log's records of reads, proven complete"),
    "audit",
    { adminTokenFile: true },
  )
    .requiredOption(
      "--key <vkey|file>",
      "the access log's verifier key, its text or a file (DATA/access.vkey, written by `vellum serve --access-log`)",
    )
    .option("--entry <index>", "reads that returned this entry")
    .option("--token-id <id>", "reads made with this token (its id or name)")
    .option("--route <route>", 'reads of this route, e.g. "GET /v1/entries/:index"')
    .option("--from <time>", "records from this time (inclusive): ISO 8601 or ms since the epoch")
    .option("--to <time>", "records before this time: ISO 8601 or ms since the epoch")
    .option("--newest-first", "newest records first")
    .option("--json", "one JSON line per record (the OCSF event), then a summary line")
    .addHelpText(
      "after",
      "\nExamples:\n  npx vellum access --entry 42 --key vellum-data/access.vkey\n" +
        "  npx vellum access --token-id auditor --key vellum-data/access.vkey\n" +
        exitCodesHelp([0, 1, 2, 4]),
    )
    .action(async (o: AccessFlags) => {
      if (o.entry !== undefined && !/^(0|[1-9]\d{0,15})$/.test(o.entry)) {
        throw usageError(`--entry must be an entry index, not "${o.entry}"`);
      }
      const filter = {
        ...(o.entry === undefined ? {} : { resource: `entry:${o.entry}` }),
        ...(o.tokenId === undefined ? {} : { actor: o.tokenId }),
        ...(o.route === undefined ? {} : { action: o.route }),
      };
      if (Object.keys(filter).length === 0) {
        throw usageError("name an --entry, a --token-id or a --route");
      }
      const answer = await provenQuery(o, filter, "access");
      for (const e of answer.entries) {
        const event = JSON.parse(new TextDecoder().decode(e.payload)) as {
          time: number;
          actor: { user: { uid: string; name?: string } };
          api: { operation: string };
          src_endpoint?: { ip?: string };
          resources?: unknown[];
        };
        if (o.json === true) printJson({ index: e.index, event });
        else {
          const who = `${event.actor.user.name ?? ""} (${event.actor.user.uid})`;
          process.stdout.write(
            `${new Date(event.time).toISOString()}\t${who}\t${event.src_endpoint?.ip ?? "-"}\t${event.api.operation}\t${event.resources?.length ?? 0} entries\n`,
          );
        }
      }
      const summary = { complete: true, records: answer.entries.length, treeSize: answer.treeSize };
      if (o.json === true) printJson(summary);
      else {
        process.stderr.write(
          `complete: ${answer.entries.length} record(s) proven by the access index revision for ${answer.treeSize} records\n`,
        );
      }
    });
}
