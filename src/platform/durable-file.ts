/**
 * @module
 * Files written atomically and durably (Node only): a temp file, fsync, rename over the target,
 * then fsync of the directory so the rename itself survives a power cut. Used for everything
 * Vellum keeps outside its database: the checkpoint marker, monitor state and evidence, the
 * SDK's trusted checkpoints.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";

/** Writes a file atomically and durably: temp file, fsync, rename, fsync the directory. */
export function writeFileDurably(path: string, data: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** `writeFileDurably` without blocking the event loop. */
export async function writeFileDurablyAsync(
  path: string,
  data: string,
  mode = 0o644,
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, "w", mode);
  try {
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
