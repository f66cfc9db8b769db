/**
 * @module
 * C2SP signed-note v1.0.0 (§Format, §Signatures): text ending in `\n`, one empty line, then one
 * or more lines `— <key name> <base64(4-byte BE key id || signature)>\n` (U+2014, U+0020).
 *
 * Invariants:
 * - text and signatures are split at the LAST `\n\n`; the text keeps its final newline.
 * - a note is strict UTF-8 (invalid bytes are refused, never replaced) with no ASCII control
 *   character but `\n`: `\r`, every other byte below 0x20 and DEL (0x7f) are refused. (The spec
 *   names only those below 0x20; refusing DEL too is stricter than Go's sumdb/note.)
 * - limits: a note is at most MAX_NOTE_SIZE bytes and holds at most MAX_NOTE_SIGNATURES
 *   signature lines; the spec requires accepting at least 16.
 * - verification ignores signatures whose (name, key id) no verifier knows, refuses the note if
 *   a known key's signature fails (BAD_SIGNATURE), and refuses it if no known key signed
 *   (NO_KNOWN_SIGNATURE). Every signature line of a known key is checked, not just the first.
 */
import { base64Decode, base64Encode, clip, concatBytes, utf8Decode, utf8Encode } from "./bytes.js";
import { check, VellumError } from "./errors.js";
import { formatKeyId, isValidKeyName, type NoteSigner, type NoteVerifier } from "./keys.js";

/** Largest note accepted or produced, in UTF-8 bytes (1 MiB). */
export const MAX_NOTE_SIZE = 1 << 20;
/** Most signature lines accepted or produced in one note (the spec asks for at least 16). */
export const MAX_NOTE_SIGNATURES = 100;

const SIG_PREFIX = "\u2014 ";
// ASCII control characters other than \n, DEL, and unpaired UTF-16 surrogates (which have no
// UTF-8 encoding: a string holding one cannot be what anybody signed).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f\uD800-\uDFFF]/u;

/** One signature line of a note. */
export interface NoteSignature {
  readonly name: string;
  /** The 32-bit key id (unsigned). */
  readonly keyId: number;
  /** The signature bytes after the 4-byte key id. */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface VerifiedSignature extends NoteSignature {
  readonly verifier: NoteVerifier;
  /** POSIX seconds, for timestamped (type 0x04 cosignature) keys. */
  readonly timestamp?: number;
}

export interface VerifiedNote {
  readonly text: string;
  /** One entry per known key whose signature verified, in note order. */
  readonly signatures: readonly VerifiedSignature[];
  /** Signatures by keys none of the verifiers knows, in note order. */
  readonly unverified: readonly NoteSignature[];
}

function checkChars(text: string, what: string): void {
  const m = FORBIDDEN.exec(text);
  if (m) {
    const code = m[0].charCodeAt(0).toString(16).padStart(4, "0");
    throw new VellumError("MALFORMED", `${what}: forbidden character U+${code} at ${m.index}`);
  }
}

function checkSize(text: string, what: string): void {
  // Each UTF-16 unit is at least one UTF-8 byte: refuse huge strings before encoding them.
  check(text.length <= MAX_NOTE_SIZE, "TOO_LARGE", `${what} exceeds ${MAX_NOTE_SIZE} bytes`);
  const size = utf8Encode(text).length;
  check(size <= MAX_NOTE_SIZE, "TOO_LARGE", `${what} is ${size} bytes, over ${MAX_NOTE_SIZE}`);
}

function checkText(text: string): void {
  check(typeof text === "string", "MALFORMED", "note text must be a string");
  check(text.endsWith("\n"), "MALFORMED", "note text must end with a newline");
  checkChars(text, "note text");
}

/** Parses a signed note without verifying anything. Throws MALFORMED or TOO_LARGE. */
export function parseNote(input: string | Uint8Array): Note {
  let s: string;
  if (typeof input === "string") {
    s = input;
  } else {
    check(input.length <= MAX_NOTE_SIZE, "TOO_LARGE", `note exceeds ${MAX_NOTE_SIZE} bytes`);
    s = utf8Decode(input, "note");
  }
  checkSize(s, "note");
  checkChars(s, "note");

  const split = s.lastIndexOf("\n\n");
  check(split >= 0, "MALFORMED", "note has no empty line before its signatures");
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  check(block.endsWith("\n"), "MALFORMED", "note must end with a signature line and a newline");
  const lines = block.slice(0, -1).split("\n");
  check(
    lines.length <= MAX_NOTE_SIGNATURES,
    "TOO_LARGE",
    `note has ${lines.length} signatures, over the limit of ${MAX_NOTE_SIGNATURES}`,
  );

  const signatures = lines.map((line, i): NoteSignature => {
    const what = `note signature line ${i + 1}`;
    check(line.startsWith(SIG_PREFIX), "MALFORMED", `${what} does not start with "— "`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    check(space >= 0, "MALFORMED", `${what} has no space between key name and signature`);
    const name = rest.slice(0, space);
    check(isValidKeyName(name), "MALFORMED", `${what}: invalid key name "${clip(name)}"`);
    const raw = base64Decode(rest.slice(space + 1), what);
    check(raw.length >= 5, "MALFORMED", `${what}: signature shorter than key id + 1 byte`);
    const keyId = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0);
    return { name, keyId, signature: raw.slice(4) };
  });
  return { text, signatures };
}

/** Writes a note. Throws MALFORMED (bad text, name or signature) or TOO_LARGE. */
export function formatNote(note: Note): string {
  checkText(note.text);
  check(note.signatures.length > 0, "MALFORMED", "a signed note needs at least one signature");
  check(
    note.signatures.length <= MAX_NOTE_SIGNATURES,
    "TOO_LARGE",
    `note has ${note.signatures.length} signatures, over the limit of ${MAX_NOTE_SIGNATURES}`,
  );
  let out = `${note.text}\n`;
  for (const sig of note.signatures) {
    check(isValidKeyName(sig.name), "MALFORMED", `invalid key name "${clip(sig.name)}"`);
    check(sig.signature.length > 0, "MALFORMED", `empty signature for ${sig.name}`);
    formatKeyId(sig.keyId); // checks it is a uint32
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(0, sig.keyId);
    out += `${SIG_PREFIX}${sig.name} ${base64Encode(concatBytes(id, sig.signature))}\n`;
  }
  checkSize(out, "note");
  return out;
}

function keyOf(name: string, keyId: number): string {
  return `${keyId}:${name}`;
}

/**
 * Signs `text` (which must end with a newline) with every signer, or adds signatures to an
 * already signed `Note` (e.g. from parseNote). As in Go's note.Sign, existing signatures come
 * first, and an existing signature by the same (name, key id) as a new signer is replaced.
 */
export function signNote(input: string | Note, signers: readonly NoteSigner[]): string {
  const text = typeof input === "string" ? input : input.text;
  const existing = typeof input === "string" ? [] : input.signatures;
  checkText(text);
  check(signers.length > 0, "MALFORMED", "signNote needs at least one signer");
  const message = utf8Encode(text);
  const replaced = new Set<string>();
  const added: NoteSignature[] = [];
  for (const s of signers) {
    check(isValidKeyName(s.name), "BAD_KEY", `invalid signer name "${clip(s.name)}"`);
    formatKeyId(s.keyId);
    const k = keyOf(s.name, s.keyId);
    check(!replaced.has(k), "BAD_KEY", `two signers for key ${s.name}+${formatKeyId(s.keyId)}`);
    replaced.add(k);
    added.push({ name: s.name, keyId: s.keyId, signature: s.sign(message) });
  }
  const kept = existing.filter((sig) => !replaced.has(keyOf(sig.name, sig.keyId)));
  return formatNote({ text, signatures: [...kept, ...added] });
}

/** Indexes verifiers by (name, key id); a pair claimed by two different verifiers is ambiguous. */
function indexVerifiers(verifiers: readonly NoteVerifier[]): Map<string, NoteVerifier | null> {
  const known = new Map<string, NoteVerifier | null>();
  for (const v of verifiers) {
    const k = keyOf(v.name, v.keyId);
    const prev = known.get(k);
    known.set(k, prev === undefined || prev === v ? v : null);
  }
  return known;
}

function toNote(input: string | Uint8Array | Note): Note {
  if (typeof input === "string" || input instanceof Uint8Array) return parseNote(input);
  // A Note built by hand gets the same checks as a parsed one.
  return parseNote(formatNote(input));
}

/**
 * Verifies the signatures of the keys in `verifiers` and returns them, possibly none. Throws
 * BAD_SIGNATURE if a known key's signature fails and BAD_KEY if two verifiers claim the same
 * (name, key id) that the note uses.
 */
export function verifyKnownSignatures(
  input: string | Uint8Array | Note,
  verifiers: readonly NoteVerifier[],
): VerifiedNote {
  const note = toNote(input);
  const known = indexVerifiers(verifiers);
  const message = utf8Encode(note.text);
  const seen = new Set<string>();
  const signatures: VerifiedSignature[] = [];
  const unverified: NoteSignature[] = [];
  for (const sig of note.signatures) {
    const k = keyOf(sig.name, sig.keyId);
    const v = known.get(k);
    if (v === undefined) {
      unverified.push(sig);
      continue;
    }
    const label = `${sig.name}+${formatKeyId(sig.keyId)}`;
    check(v !== null, "BAD_KEY", `ambiguous key ${label}: two verifiers claim it`);
    check(v.name === sig.name && v.keyId === sig.keyId, "INTERNAL", "verifier index mismatch");
    check(v.verify(message, sig.signature), "BAD_SIGNATURE", `invalid signature by ${label}`);
    if (seen.has(k)) continue;
    seen.add(k);
    const timestamp = v.signatureTimestamp?.(sig.signature);
    signatures.push(
      timestamp === undefined ? { ...sig, verifier: v } : { ...sig, verifier: v, timestamp },
    );
  }
  return { text: note.text, signatures, unverified };
}

/**
 * Opens a signed note: like verifyKnownSignatures, and also throws NO_KNOWN_SIGNATURE unless at
 * least one of the `verifiers` signed it. Only then may the caller look at `text`.
 */
export function verifyNote(
  input: string | Uint8Array | Note,
  verifiers: readonly NoteVerifier[],
): VerifiedNote {
  const verified = verifyKnownSignatures(input, verifiers);
  check(
    verified.signatures.length > 0,
    "NO_KNOWN_SIGNATURE",
    `note is not signed by any of the ${verifiers.length} trusted key(s)`,
  );
  return verified;
}
