/**
 * `vellum archive check s3://BUCKET/PREFIX --key VKEY --retention 7y`: checks a WORM archive
 * (written by `vellum serve --archive`) from the bucket alone (src/archive/check.ts). Exit 0
 * when it is whole and consistent, 3 when something is wrong (each problem on its own line),
 * 4 when the bucket cannot be read.
 */
import type { Command } from "commander";
import { WormBucket } from "../archive/bucket.js";
import { checkArchive } from "../archive/check.js";
import { parseRetention } from "../archive/retention.js";
import { VellumError } from "../core/errors.js";
import { EXIT_EVIDENCE, EXIT_IO, EXIT_OK, exitCodesHelp, usageError } from "./exit-codes.js";
import { readKeyArg } from "./keys-arg.js";

export function registerArchive(program: Command): void {
  const archive = program
    .command("archive")
    .description("the WORM archive in an S3 bucket with Object Lock (vellum serve --archive)");
  archive
    .command("check")
    .description(
      "check an archive from the bucket alone: every object locked, every tile re-derived, every checkpoint signed and consistent",
    )
    .argument("<bucket>", "s3://BUCKET/PREFIX (endpoint and credentials as AWS tools take them)")
    .requiredOption(
      "--key <vkey|file>",
      "the log's verifier key, its text or a file (DATA/log.vkey)",
    )
    .requiredOption("--retention <period>", "the retention every object must have, e.g. 7y, 90d")
    .option("--json", "one JSON object: counts and problems")
    .addHelpText(
      "after",
      `\nExample:\n  npx vellum archive check s3://audit-worm/prod --key vellum-data/log.vkey --retention 7y\n${exitCodesHelp([0, 2, 3, 4])}`,
    )
    .action(async (url: string, o: { key: string; retention: string; json?: boolean }) => {
      let retention: ReturnType<typeof parseRetention>;
      let verifierKey: string;
      try {
        retention = parseRetention(o.retention);
        verifierKey = readKeyArg(o.key);
      } catch (e) {
        throw usageError((e as Error).message);
      }
      let bucket: WormBucket | undefined;
      try {
        bucket = await WormBucket.open(url);
        const report = await checkArchive(bucket, { verifierKey, retention });
        if (o.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
        else {
          for (const p of report.problems) process.stdout.write(`PROBLEM ${p}\n`);
          process.stdout.write(
            `${report.problems.length === 0 ? "OK" : `${report.problems.length} PROBLEM(S)`}: ${report.objects} objects, ${report.bundles} bundles (${report.entries} entries), ${report.tiles} tiles, ${report.checkpoints} checkpoints up to size ${report.largestCheckpoint} (${report.tailCheckpoints} past the last full bundle: signature checked only)\n`,
          );
        }
        process.exitCode = report.problems.length === 0 ? EXIT_OK : EXIT_EVIDENCE;
      } catch (e) {
        if (!(e instanceof VellumError)) throw e;
        process.stderr.write(`vellum archive check: ${e.message}\n`);
        process.exitCode = e.code === "STATE_MISMATCH" ? EXIT_EVIDENCE : EXIT_IO;
      } finally {
        bucket?.close();
      }
    });
}
