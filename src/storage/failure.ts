/**
 * @module
 * What kind of storage failure an error is, said the way operators search for it: the errno
 * name (ENOSPC, EIO, EROFS, EDQUOT), CORRUPTION for damaged stored data, OTHER for the rest.
 *
 * Node's fs errors carry the errno name as `code`; LevelDB's carry only text ("IO error:
 * …/000012.log: No space left on device", "Corruption: checksum mismatch"), so both are read,
 * along the whole `cause` chain.
 */
import { VellumError } from "../core/errors.js";

export type StorageFailureClass = "ENOSPC" | "EDQUOT" | "EIO" | "EROFS" | "CORRUPTION" | "OTHER";

const BY_TEXT: readonly [RegExp, StorageFailureClass][] = [
  [/\bENOSPC\b|No space left on device/i, "ENOSPC"],
  [/\bEDQUOT\b|Disk quota exceeded/i, "EDQUOT"],
  [/\bEIO\b|Input\/output error/i, "EIO"],
  [/\bEROFS\b|Read-only file system/i, "EROFS"],
  [/\bCorruption\b|\bCORRUPTION\b|checksum mismatch/i, "CORRUPTION"],
];

const WORDS: Record<StorageFailureClass, string> = {
  ENOSPC: "disk full",
  EDQUOT: "disk quota exceeded",
  EIO: "I/O error",
  EROFS: "read-only file system",
  CORRUPTION: "corrupt data",
  OTHER: "storage error",
};

/** The class of the first recognisable failure along `e`'s cause chain (OTHER if none). */
export function storageFailureClass(e: unknown): StorageFailureClass {
  for (let err = e, depth = 0; err !== undefined && err !== null && depth < 8; depth++) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string") {
      for (const [, cls] of BY_TEXT) if (code === cls) return cls;
    }
    const text = err instanceof Error ? err.message : typeof err === "string" ? err : "";
    for (const [re, cls] of BY_TEXT) if (re.test(text)) return cls;
    err = (err as { cause?: unknown }).cause;
  }
  return "OTHER";
}

/** "disk full (ENOSPC)": the class in words, then its name. */
export function describeStorageFailure(e: unknown): string {
  const cls = storageFailureClass(e);
  return cls === "OTHER" ? WORDS.OTHER : `${WORDS[cls]} (${cls})`;
}

/**
 * A STORAGE_FAILURE whose message starts with the failure's class in words, so an operator (and
 * a client reading a 503) sees "disk full (ENOSPC)" rather than a driver's stack of wrappers.
 * A VellumError is returned as it is (it already says what it is).
 */
export function storageFailure(what: string, cause: unknown): VellumError {
  if (cause instanceof VellumError) return cause;
  const why = cause instanceof Error ? cause.message : String(cause);
  return new VellumError("STORAGE_FAILURE", `${describeStorageFailure(cause)}: ${what}: ${why}`, {
    cause,
  });
}
