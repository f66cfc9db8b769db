/**
 * @module
 * The `vellum` command. The CLI is the only layer that reads argv and the environment, touches
 * files and handles signals; everything it runs lives in the libraries under src/. Every error
 * ends here as one line on standard error and an exit code from src/cli/exit-codes.ts.
 */
import { Command, CommanderError } from "commander";
import { installNodeCrypto } from "../platform/node-crypto.js";
import { registerArchive } from "./archive.js";
import { errorLine, exitCodeOf, exitCodesHelp } from "./exit-codes.js";
import { registerFsck } from "./fsck.js";
import { registerIndex } from "./index-rebuild.js";
import { registerMigrate } from "./migrate.js";
import { registerMonitor } from "./monitor.js";
import { registerPeopleCommands } from "./people.js";
import { registerServe } from "./serve.js";
import { registerTokens } from "./tokens.js";
import { registerVectors } from "./vectors.js";
import { registerWitness } from "./witness.js";

installNodeCrypto();

const program = new Command()
  .name("vellum")
  .description("Vellum: an immutable, verifiable audit log (RFC 6962 / C2SP transparency log)")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

registerServe(program);
registerArchive(program);
registerFsck(program);
registerIndex(program);
registerMigrate(program);
registerMonitor(program);
registerPeopleCommands(program);
registerTokens(program);
registerVectors(program);
registerWitness(program);

program.addHelpText("after", exitCodesHelp([0, 1, 2, 3, 4]));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Commander has already said what was wrong with the arguments (or printed the help).
  if (!(e instanceof CommanderError)) process.stderr.write(`vellum: ${errorLine(e)}\n`);
  process.exit(exitCodeOf(e));
}
