/**
 * @module
 * `vellum query` and `vellum export`: the events of a time window, proven complete
 * (spec/audit.md, "Time windows") — every page verified against a checkpoint signed with the
 * log's key, the pages tiling the window's index range exactly — then filtered on this side by
 * actor, action and resource (src/core/event-keys.ts). `query` prints what matched and says
 * "complete" only when all of it was proven; `export` writes the window for a SIEM, as OCSF
 * events or as JSON Lines of entries.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type { Command } from "commander";
import { VellumClient } from "../../client/http.js";
import { base64Encode } from "../../core/bytes.js";
import { decodeLeaf, formatUuid } from "../../core/entry.js";
import { type EventFilter, matchesFilter } from "../../core/event-keys.js";
import { SIG_TYPE_ED25519 } from "../../core/keys.js";
import type { WindowEntry } from "../../core/window.js";
import {
  type ConnectionFlags,
  connectionOptions,
  explainUnauthenticated,
  resolveConnection,
} from "../connection.js";
import { exitCodesHelp, usageError } from "../exit-codes.js";
import { readKeyArg } from "../keys-arg.js";
import { printJson } from "./io.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A time given on the command line: milliseconds since the epoch, or an ISO 8601 date. */
export function parseTime(text: string, option: string): number {
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (!Number.isFinite(ms) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw usageError(
      `${option} must be an ISO 8601 time (2026-03-01T00:00:00Z) or milliseconds since the epoch, not "${text}"`,
    );
  }
  return ms;
}

/** The entry's payload as JSON, or undefined when it is not JSON. */
function jsonOf(payload: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(payload));
  } catch {
    return undefined;
  }
}

interface WindowFlags extends ConnectionFlags {
  from: string;
  to: string;
  key: string;
}

/** Fetches and proves the window; undefined-free: throws on any failed check. */
async function provenWindow(o: WindowFlags) {
  const from = parseTime(o.from, "--from");
  const to = parseTime(o.to, "--to");
  if (from > to) throw usageError("--from must not be after --to");
  const logKey = readKeyArg(o.key, "--key", SIG_TYPE_ED25519);
  const connection = resolveConnection(o, process.env, { adminTokenFile: true });
  const client = new VellumClient({
    url: connection.url,
    ...(connection.token === undefined ? {} : { token: connection.token }),
  });
  try {
    return { from, to, ...(await client.window(from, to, { logKey })) };
  } catch (e) {
    throw explainUnauthenticated(e, connection);
  }
}

/**
 * Asks the verifiable index (of the events, or of the access log with `log: "access"`) and
 * verifies every page; throws on any failed check. `--from`/`--to` bound it when given.
 */
export async function provenQuery(
  o: ConnectionFlags & { key: string; from?: string; to?: string; newestFirst?: boolean },
  filter: EventFilter,
  log: "events" | "access" = "events",
) {
  const from = o.from === undefined ? undefined : parseTime(o.from, "--from");
  const to = o.to === undefined ? undefined : parseTime(o.to, "--to");
  if (from !== undefined && to !== undefined && from > to) {
    throw usageError("--from must not be after --to");
  }
  const logKey = readKeyArg(o.key, "--key", SIG_TYPE_ED25519);
  const connection = resolveConnection(o, process.env, { adminTokenFile: true });
  const client = new VellumClient({
    url: connection.url,
    ...(connection.token === undefined ? {} : { token: connection.token }),
  });
  try {
    return await client.query(filter, {
      logKey,
      log,
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      order: o.newestFirst === true ? "desc" : "asc",
    });
  } catch (e) {
    throw explainUnauthenticated(e, connection);
  }
}

function windowOptions(command: Command): Command {
  return command
    .requiredOption(
      "--from <time>",
      "start of the window (inclusive): ISO 8601 or ms since the epoch",
    )
    .requiredOption("--to <time>", "end of the window (exclusive): ISO 8601 or ms since the epoch")
    .requiredOption(
      "--key <vkey|file>",
      "the log's verifier key, its text or a file holding it (e.g. DATA/log.vkey): every page is verified with it",
    );
}

const describeEntry = (e: WindowEntry) => {
  const leaf = decodeLeaf(e.leaf);
  return {
    index: e.index,
    id: formatUuid(leaf.id),
    timestamp: e.timestamp,
    submitter: leaf.submitter ?? null,
  };
};

export function registerQuery(program: Command): void {
  connectionOptions(
    program
      .command("query")
      .description(
        "the events with an actor, action, resource or tenant (from the verifiable index) or of a time window, proven complete",
      ),
    "read",
    { adminTokenFile: true },
  )
    .option("--from <time>", "start of the window (inclusive): ISO 8601 or ms since the epoch")
    .option("--to <time>", "end of the window (exclusive): ISO 8601 or ms since the epoch")
    .requiredOption(
      "--key <vkey|file>",
      "the log's verifier key, its text or a file holding it (e.g. DATA/log.vkey): every page is verified with it",
    )
    .option("--actor <who>", "only events whose actor (or authenticated user) is this uid or name")
    .option("--action <what>", "only events with this api.operation (or activity name)")
    .option("--resource <id>", "only events on a resource with this uid or name")
    .option("--tenant <id>", "only events of this tenant (metadata.tenant_uid)")
    .option("--newest-first", "newest events first (with the index)")
    .option(
      "--scan",
      "prove the whole window and filter here instead of asking the index (needs --from and --to)",
    )
    .option(
      "--json",
      "one JSON line per matching event ({index, id, timestamp, submitter, event}), then a summary line",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  npx vellum query --actor alice --resource invoice-42 --key vellum-data/log.vkey\n" +
        "  npx vellum query --from 2026-03-01T00:00:00Z --to 2026-04-01T00:00:00Z --actor alice --key vellum-data/log.vkey\n" +
        "\nWith an actor, action, resource or tenant the verifiable index answers: the key's list of\n" +
        "events, proven against a revision of the signed index log and the log's checkpoint, then\n" +
        "any other key filtered here. Without one (or with --scan), every entry of the window is\n" +
        "fetched and checked. Either way the answer is complete when it says so.\n" +
        exitCodesHelp([0, 1, 2, 4]),
    )
    .action(
      async (
        o: ConnectionFlags & {
          from?: string;
          to?: string;
          key: string;
          actor?: string;
          action?: string;
          resource?: string;
          tenant?: string;
          newestFirst?: boolean;
          scan?: boolean;
          json?: boolean;
        },
      ) => {
        const filter = {
          ...(o.actor === undefined ? {} : { actor: o.actor }),
          ...(o.action === undefined ? {} : { action: o.action }),
          ...(o.resource === undefined ? {} : { resource: o.resource }),
          ...(o.tenant === undefined ? {} : { tenant: o.tenant }),
        };
        const byIndex = Object.keys(filter).length > 0 && o.scan !== true;
        if (!byIndex && (o.from === undefined || o.to === undefined)) {
          throw usageError(
            "name an --actor, --action, --resource or --tenant (the index answers), or a window with --from and --to",
          );
        }
        let entries: WindowEntry[];
        let treeSize: number;
        let what: string;
        let checked: number | undefined;
        if (byIndex) {
          const answer = await provenQuery(o, filter);
          entries = answer.entries;
          treeSize = answer.treeSize;
          what = `proven by the index revision for tree size ${treeSize} (${answer.key.kind} "${answer.key.value}")`;
        } else {
          const w = await provenWindow(o as WindowFlags);
          entries = w.entries.filter((e) => matchesFilter(jsonOf(e.payload), filter));
          checked = w.entries.length;
          treeSize = w.treeSize;
          what = `among the ${w.entries.length} entries logged in [${new Date(w.from).toISOString()}, ${new Date(w.to).toISOString()}), proven against the checkpoint of tree size ${treeSize}`;
        }
        for (const e of entries) {
          const event = jsonOf(e.payload);
          const about = describeEntry(e);
          if (o.json === true) printJson({ ...about, event });
          else
            process.stdout.write(
              `${about.index}\t${new Date(about.timestamp).toISOString()}\t${JSON.stringify(event)}\n`,
            );
        }
        const summary = {
          complete: true,
          matched: entries.length,
          ...(checked === undefined ? {} : { checked }),
          treeSize,
          proof: byIndex ? "index" : "window",
        };
        if (o.json === true) printJson(summary);
        else process.stderr.write(`complete: ${entries.length} matching event(s) ${what}\n`);
      },
    );
}

export function registerExport(program: Command): void {
  windowOptions(
    connectionOptions(
      program
        .command("export")
        .description("write a time window of the log for a SIEM, proven complete first"),
      "read",
      { adminTokenFile: true },
    ),
  )
    .option(
      "--format <format>",
      "ocsf (the OCSF events, one JSON object per line) or jsonl (every entry)",
      "ocsf",
    )
    .option("--out <file>", "write here instead of standard output")
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum export --from 2026-03-01T00:00:00Z --to 2026-04-01T00:00:00Z --format ocsf \\\n" +
        "    --key vellum-data/log.vkey --out march.ocsf.jsonl\n" +
        "\nocsf: each entry that is an OCSF event, its JSON as logged (canonical), one per line —\n" +
        "what AWS Security Lake and Splunk take. jsonl: every entry as {index, id, timestamp,\n" +
        "submitter, payload} with the payload as JSON when it is, else {base64}.\n" +
        exitCodesHelp([0, 1, 2, 4]),
    )
    .action(async (o: WindowFlags & { format: string; out?: string }) => {
      if (o.format !== "ocsf" && o.format !== "jsonl")
        throw usageError(`--format must be ocsf or jsonl, not "${o.format}"`);
      const w = await provenWindow(o);
      // A file is written as it goes; standard output through its stream (a pipe may be
      // non-blocking, where a raw writeSync can fail with EAGAIN).
      const fd = o.out === undefined ? undefined : openSync(o.out, "w", 0o644);
      const write = (line: string) =>
        fd === undefined ? void process.stdout.write(line) : void writeSync(fd, line);
      let written = 0;
      try {
        for (const e of w.entries) {
          const event = jsonOf(e.payload);
          if (o.format === "ocsf") {
            if (
              typeof event !== "object" ||
              event === null ||
              typeof (event as { class_uid?: unknown }).class_uid !== "number"
            )
              continue;
            write(`${utf8.decode(e.payload)}\n`);
          } else {
            const payload = event === undefined ? { base64: base64Encode(e.payload) } : event;
            write(`${JSON.stringify({ ...describeEntry(e), payload })}\n`);
          }
          written++;
        }
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      process.stderr.write(
        `exported ${written} ${o.format === "ocsf" ? "OCSF events" : "entries"} of the ${w.entries.length} logged in the window, proven complete against tree size ${w.treeSize}\n`,
      );
    });
}
