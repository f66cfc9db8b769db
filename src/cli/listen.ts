/**
 * @module
 * Where a server listens, checked before anything is created: a port in use, a port that needs
 * privileges or an address not on this machine is one line saying what to change (exit 4, I/O),
 * not an unhandled `EADDRINUSE` stack trace after a data directory was made. The check binds the
 * address and lets it go at once; the real bind, moments later, reports the same errors the same
 * way ({@link listenError}) if another process took the port in between.
 */
import { createServer } from "node:net";
import { EXIT_IO, ExitError } from "./exit-codes.js";

/** The one-line error for a failed bind of `host:port`. */
export function listenError(e: unknown, host: string, port: number): Error {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case "EADDRINUSE":
      return new ExitError(EXIT_IO, `port ${port} is in use; pick another with --port`, {
        cause: e,
      });
    case "EACCES":
      return new ExitError(
        EXIT_IO,
        `not allowed to listen on port ${port} (ports below 1024 need privileges); pick another with --port`,
        { cause: e },
      );
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new ExitError(
        EXIT_IO,
        `cannot listen on ${host}: no such address on this machine (${code}); pick another with --host`,
        { cause: e },
      );
    default:
      return new ExitError(EXIT_IO, `cannot listen on ${host}:${port}: ${(e as Error).message}`, {
        cause: e,
      });
  }
}

/** Resolves if `host:port` can be bound now; rejects with {@link listenError}'s error if not. */
export async function checkCanListen(host: string, port: number): Promise<void> {
  if (port === 0) return; // the system picks a free port
  const probe = createServer();
  await new Promise<void>((done, fail) => {
    probe.once("error", (e) => fail(listenError(e, host, port)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => done()));
  });
}
