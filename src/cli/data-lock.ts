/**
 * @module
 * One server per data directory when the log is not in DATA/db (`--store postgres://…`). With the
 * embedded store LevelDB's lock on DATA/db does this; in PostgreSQL mode DATA still holds what
 * must not be shared between two live processes — the rollback marker (DATA/checkpoint), the
 * derived index stores — so the server takes `DATA/serve.pid`, as PostgreSQL's postmaster.pid:
 * created exclusively, holding the pid and host; a file left by a process that is gone (killed)
 * is taken over, one whose process still runs on this host refuses the start with LOCKED.
 */
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { VellumError } from "../core/errors.js";

const FILE = "serve.pid";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
}

/** Takes the data directory; the returned function (also run at exit) gives it back. */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, FILE);
  const mine = `${process.pid} ${hostname()}\n`;
  const release = () => {
    try {
      if (readFileSync(path, "utf8") === mine) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, mine, { flag: "wx", mode: 0o600 });
      process.once("exit", release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new VellumError("STORAGE_FAILURE", `${path}: ${(e as Error).message}`, { cause: e });
      }
    }
    let held: string;
    try {
      held = readFileSync(path, "utf8");
    } catch {
      continue; // removed meanwhile: try again
    }
    const [pidText = "", host = ""] = held.trim().split(" ");
    const pid = Number(pidText);
    const valid = /^[1-9][0-9]*$/.test(pidText) && host !== "";
    if (valid && host !== hostname()) {
      throw new VellumError(
        "LOCKED",
        `${dir} is in use by a Vellum server on host ${host} (pid ${pid}, ${path}); if that server is gone, delete the file`,
      );
    }
    if (valid && pid !== process.pid && alive(pid)) {
      throw new VellumError(
        "LOCKED",
        `${dir} is in use by another Vellum process (pid ${pid}, ${path})`,
      );
    }
    // Left by a process that is gone (or unreadable): taken over, unless it changed meanwhile.
    try {
      if (readFileSync(path, "utf8") === held) unlinkSync(path);
    } catch {
      // removed meanwhile
    }
  }
  throw new VellumError("LOCKED", `${dir}: could not take ${path} (another server is starting?)`);
}
