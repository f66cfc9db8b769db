/**
 * @module
 * The `vellum` command. The CLI is the only layer that reads argv and the environment, touches
 * files and handles signals; everything it runs lives in the libraries under src/.
 */
import { Command, CommanderError } from "commander";
import { VellumError } from "../core/errors.js";
import { installNodeCrypto } from "../platform/node-crypto.js";
import { registerFsck } from "./fsck.js";
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
registerFsck(program);
registerMonitor(program);
registerPeopleCommands(program);
registerTokens(program);
registerVectors(program);
registerWitness(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  const message = e instanceof VellumError ? `${e.code}: ${e.message}` : (e as Error).message;
  process.stderr.write(`vellum: ${message}\n`);
  process.exit(1);
}
