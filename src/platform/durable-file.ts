/**
 * @module
 * Files written atomically and durably (Node only), and the one way secrets reach the disk.
 *
 * Durable: the bytes are written to a file created exclusively, fsynced, renamed over the target
 * (or, for a secret that must not replace anything, created in place), then the directory is
 * fsynced so the name itself survives a power cut. Used for everything Vellum keeps outside its
 * database: the checkpoint marker, monitor state and evidence, the SDK's trusted checkpoints,
 * and every secret — private keys and the admin token — which are always mode 0600 whatever the
 * umask, and never written over an existing key.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

/** Creates `path` (refusing, with EEXIST, if it exists) holding `data` with `mode`, fsynced. */
function createFile(path: string, data: string, mode: number): void {
  const fd = openSync(path, "wx", mode);
  try {
    fchmodSync(fd, mode); // openSync's mode is reduced by the umask
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDirectory(path: string): void {
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Writes a file atomically and durably: temp file, fsync, rename, fsync the directory. */
export function writeFileDurably(path: string, data: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true }); // left by a crash of an earlier process with this pid
  createFile(tmp, data, mode);
  renameSync(tmp, path);
  fsyncDirectory(path);
}

/**
 * Creates a secret file (a private key): mode 0600, never over an existing file — an existing
 * key is refused with the error code EEXIST, so a key is never lost to a second `keygen` or
 * start — then fsynced with its directory.
 */
export function createSecretFile(path: string, data: string): void {
  createFile(path, data, 0o600);
  fsyncDirectory(path);
}

/**
 * Replaces a secret file that is meant to change (the admin token, re-issued when every admin
 * token was revoked): atomically, mode 0600 from the first byte, durably.
 */
export function replaceSecretFile(path: string, data: string): void {
  writeFileDurably(path, data, 0o600);
}

/** `writeFileDurably` without blocking the event loop. */
export async function writeFileDurablyAsync(
  path: string,
  data: string,
  mode = 0o644,
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dirHandle = await open(dirname(path), "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
