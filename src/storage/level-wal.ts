/**
 * @module
 * A check of LevelDB's write-ahead logs (`NNNNNN.log`) before the database is opened: the
 * equivalent of LevelDB's `paranoid_checks`, which classic-level does not expose.
 *
 * Without it, LevelDB's recovery skips a damaged record and everything after it in its 32 KiB
 * block ("dropping 32768 bytes; Corruption: checksum mismatch") and opens as if nothing
 * happened, so acknowledged entries written after the damage vanish silently. A damaged record
 * is harmless only when nothing valid follows it: that is a torn tail (a write cut short by a
 * crash or a full disk, never acknowledged). So: damage followed by a valid record is refused.
 *
 * Format (leveldb doc/log_format.md): the file is a sequence of 32 KiB blocks; a block holds
 * physical records `crc32c (4, LE, masked) | length (2, LE) | type (1) | data`; the checksum
 * covers type and data; fewer than 7 bytes left in a block are zero padding; type 0 marks
 * preallocated zeros.
 */
import { closeSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";

const BLOCK_SIZE = 32 * 1024;
const HEADER_SIZE = 7;
const FULL = 1;
const LAST = 4;

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli) of `data[start, end)`, continuing from `crc`. */
export function crc32c(data: Uint8Array, start = 0, end = data.length, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = CRC32C_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** LevelDB stores checksums masked, so a CRC of data that embeds CRCs stays well spread. */
function unmask(masked: number): number {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

export interface WalDamage {
  readonly file: string;
  /** Byte offset of the first damaged record. */
  readonly offset: number;
  /** Offset of the first valid record after it. */
  readonly validAfter: number;
  readonly reason: string;
}

/**
 * Scans one write-ahead log. Returns the first damage that has a valid record after it (what
 * LevelDB would silently drop), or undefined when the log is clean or only its tail is torn.
 */
export function checkWalFile(path: string): WalDamage | undefined {
  const fd = openSync(path, "r");
  try {
    const block = new Uint8Array(BLOCK_SIZE);
    let damage: { offset: number; reason: string } | undefined;
    for (let base = 0; ; base += BLOCK_SIZE) {
      const n = readSync(fd, block, 0, BLOCK_SIZE, base);
      if (n === 0) return undefined;
      let at = 0;
      while (at + HEADER_SIZE <= n) {
        const length = block[at + 4]! | (block[at + 5]! << 8);
        const type = block[at + 6]!;
        if (type === 0 && length === 0) {
          // Preallocated zeros (or zero padding): nothing more in this block.
          break;
        }
        const end = at + HEADER_SIZE + length;
        let reason: string | undefined;
        if (type < FULL || type > LAST) reason = `unknown record type ${type}`;
        else if (end > n) reason = n < BLOCK_SIZE ? "truncated record" : "bad record length";
        else {
          const stored =
            (block[at]! |
              (block[at + 1]! << 8) |
              (block[at + 2]! << 16) |
              (block[at + 3]! << 24)) >>>
            0;
          if (unmask(stored) !== crc32c(block, at + 6, end)) reason = "checksum mismatch";
        }
        if (reason !== undefined) {
          // LevelDB drops the rest of the block here, records after the damaged one included.
          // Those are what this scan looks for: at the next record if the damaged one's length
          // is plausible (a flipped data byte), else from the next block on (every block
          // starts with a record header).
          damage ??= { offset: base + at, reason };
          if (end > n) break;
          at = end;
          continue;
        }
        if (damage !== undefined) {
          return {
            file: path,
            offset: damage.offset,
            validAfter: base + at,
            reason: damage.reason,
          };
        }
        at = end;
      }
      if (n < BLOCK_SIZE) return undefined;
    }
  } finally {
    closeSync(fd);
  }
}

/** Checks every write-ahead log in a LevelDB directory (none yet: nothing to check). */
export function checkWriteAheadLogs(dir: string): WalDamage | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  for (const name of names.filter((n) => /^\d+\.log$/.test(n)).sort()) {
    const damage = checkWalFile(join(dir, name));
    if (damage !== undefined) return damage;
  }
  return undefined;
}
