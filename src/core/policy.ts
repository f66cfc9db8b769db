/**
 * @module
 * C2SP tlog-policy: which logs to trust, which witnesses exist, and the quorum of witness
 * cosignatures a checkpoint needs (§Policy file syntax and structure).
 *
 *   log <vkey> [<url>]
 *   witness <name> <vkey> [<url>]
 *   group <name> all|any|<k> <member>...
 *   quorum <name>|none                       (exactly once)
 *
 * Invariants (the spec's rules, checked by parsePolicy and therefore by formatPolicy):
 * - lines end in `\n`; fields are separated by runs of ASCII space/tab only; leading and
 *   trailing whitespace is allowed; blank lines and lines whose first non-blank character is
 *   `#` are ignored. A `#` later in a line is an ordinary character (the spec has no trailing
 *   comments). The only control characters allowed are tab and newline (so `\r` is refused).
 * - log keys are type 0x01 (checkpoint signatures), witness keys type 0x04 (cosignatures); no
 *   public key appears twice among the logs, nor twice among the witnesses.
 * - witnesses and groups share one namespace with the predefined `none`; every name is defined
 *   once, and a group or the quorum may only refer to names defined on earlier lines (which
 *   rules out cycles). `none` is never a group member; a group has n >= 1 members, each listed
 *   at most once in the whole policy; k is a decimal with 1 <= k <= n.
 * - limits: at most MAX_POLICY_ENTRIES logs, witnesses and groups each (the spec asks for at
 *   least 32), and at most MAX_POLICY_SIZE bytes of text.
 */
import { clip, hexEncode, parseDecimal, utf8Decode, utf8Encode } from "./bytes.js";
import { check, VellumError } from "./errors.js";
import {
  type NoteVerifier,
  parseVerifierKey,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  type VerifierKey,
  verifierFromPublicKey,
} from "./keys.js";
import { type Note, type VerifiedSignature, verifyKnownSignatures } from "./note.js";

/** Most logs, witnesses and groups (each) a policy may define. */
export const MAX_POLICY_ENTRIES = 256;
/** Largest policy text accepted, in bytes (64 KiB). */
export const MAX_POLICY_SIZE = 64 * 1024;
/** The predefined quorum name that requires no cosignature. */
export const QUORUM_NONE = "none";

export interface PolicyLog {
  /** The verifier key text as written in the policy. */
  readonly vkey: string;
  readonly key: VerifierKey;
  readonly url?: string;
}

export interface PolicyWitness {
  /** The policy-local name used by groups and the quorum (not necessarily the key name). */
  readonly name: string;
  readonly vkey: string;
  readonly key: VerifierKey;
  readonly url?: string;
}

export interface PolicyGroup {
  readonly name: string;
  /** `any` means k = 1, `all` means k = n. */
  readonly threshold: "all" | "any" | number;
  readonly members: readonly string[];
}

export interface Policy {
  readonly logs: readonly PolicyLog[];
  readonly witnesses: readonly PolicyWitness[];
  /** In definition order: a group only refers to witnesses and earlier groups. */
  readonly groups: readonly PolicyGroup[];
  /** A witness or group name, or `none`. */
  readonly quorum: string;
}

/** What `formatPolicy` needs: keys as text, parsed keys optional. */
export interface PolicyInput {
  readonly logs: readonly { vkey: string; url?: string }[];
  readonly witnesses: readonly { name: string; vkey: string; url?: string }[];
  readonly groups: readonly PolicyGroup[];
  readonly quorum: string;
}

const BLANK = /[ \t]+/;
// Octets the spec allows: tab, newline, 0x20-0x7E and anything non-ASCII. JavaScript strings
// cannot hold unpaired surrogates in valid UTF-8, so those are refused too.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f\uD800-\uDFFF]/u;

function fail(line: number, message: string): VellumError {
  return new VellumError("MALFORMED", `policy line ${line}: ${message}`);
}

function withLine<T>(line: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof VellumError) {
      throw new VellumError(e.code, `policy line ${line}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

const ENTRY_KEYS = {
  log: { type: SIG_TYPE_ED25519, typeName: "0x01", plural: "logs" },
  witness: { type: SIG_TYPE_COSIGNATURE, typeName: "0x04", plural: "witnesses" },
} as const;

/**
 * Parses the key of a `log` or `witness` line: it must have the role's signature type and a
 * public key not in `seen` (to which it is then added), and the role must have fewer than
 * MAX_POLICY_ENTRIES entries (`count`) so far.
 */
function parseEntryKey(
  line: number,
  text: string,
  role: keyof typeof ENTRY_KEYS,
  seen: Set<string>,
  count: number,
): VerifierKey {
  const { type, typeName, plural } = ENTRY_KEYS[role];
  const key = withLine(line, () => parseVerifierKey(text));
  if (key.type !== type) {
    throw new VellumError("BAD_KEY", `policy line ${line}: ${role} key must be type ${typeName}`);
  }
  const pk = hexEncode(key.publicKey);
  if (seen.has(pk)) throw fail(line, `duplicate ${role} public key`);
  seen.add(pk);
  check(count < MAX_POLICY_ENTRIES, "TOO_LARGE", `more than ${MAX_POLICY_ENTRIES} ${plural}`);
  return key;
}

function resolveThreshold(g: PolicyGroup): number {
  if (g.threshold === "all") return g.members.length;
  if (g.threshold === "any") return 1;
  return g.threshold;
}

/**
 * Parses a policy. Throws MALFORMED (grammar, names, references), BAD_KEY (a key that does not
 * parse or has the wrong type), OUT_OF_RANGE (k outside 1..n) or TOO_LARGE.
 */
export function parsePolicy(input: string | Uint8Array): Policy {
  if (typeof input !== "string") {
    check(input.length <= MAX_POLICY_SIZE, "TOO_LARGE", `policy exceeds ${MAX_POLICY_SIZE} bytes`);
  }
  const text = typeof input === "string" ? input : utf8Decode(input, "policy");
  check(
    text.length <= MAX_POLICY_SIZE && utf8Encode(text).length <= MAX_POLICY_SIZE,
    "TOO_LARGE",
    `policy exceeds ${MAX_POLICY_SIZE} bytes`,
  );
  const bad = FORBIDDEN.exec(text);
  if (bad) {
    const line = text.slice(0, bad.index).split("\n").length;
    throw fail(line, `forbidden character U+${bad[0].charCodeAt(0).toString(16).padStart(4, "0")}`);
  }
  check(text === "" || text.endsWith("\n"), "MALFORMED", "policy must end with a newline");

  const logs: PolicyLog[] = [];
  const witnesses: PolicyWitness[] = [];
  const groups: PolicyGroup[] = [];
  let quorum: string | undefined;
  // Every defined name; `none` is predefined.
  const defined = new Set<string>([QUORUM_NONE]);
  // Names already listed as a group member, with the group that lists them.
  const memberOf = new Map<string, string>();
  const logKeys = new Set<string>();
  const witnessKeys = new Set<string>();

  const lines = text.split("\n");
  if (text.endsWith("\n")) lines.pop();
  lines.forEach((raw, i) => {
    const n = i + 1;
    const trimmed = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const [keyword, ...args] = trimmed.split(BLANK) as [string, ...string[]];
    switch (keyword) {
      case "log": {
        if (args.length < 1 || args.length > 2) throw fail(n, "want: log <vkey> [<url>]");
        const key = parseEntryKey(n, args[0]!, "log", logKeys, logs.length);
        logs.push(
          args[1] === undefined ? { vkey: args[0]!, key } : { vkey: args[0]!, key, url: args[1] },
        );
        return;
      }
      case "witness": {
        if (args.length < 2 || args.length > 3) {
          throw fail(n, "want: witness <name> <vkey> [<url>]");
        }
        const name = args[0]!;
        if (defined.has(name)) throw fail(n, `name "${clip(name)}" is already defined`);
        const key = parseEntryKey(n, args[1]!, "witness", witnessKeys, witnesses.length);
        defined.add(name);
        const vkey = args[1]!;
        witnesses.push(
          args[2] === undefined ? { name, vkey, key } : { name, vkey, key, url: args[2] },
        );
        return;
      }
      case "group": {
        if (args.length < 3) throw fail(n, "want: group <name> all|any|<k> <member>...");
        const [name, kText, ...members] = args as [string, string, ...string[]];
        if (defined.has(name)) throw fail(n, `name "${clip(name)}" is already defined`);
        let threshold: PolicyGroup["threshold"];
        if (kText === "all" || kText === "any") {
          threshold = kText;
        } else {
          const k = withLine(n, () => parseDecimal(kText, `group ${clip(name)} threshold`));
          if (k < 1 || k > members.length) {
            throw new VellumError(
              "OUT_OF_RANGE",
              `policy line ${n}: group ${clip(name)} threshold ${k} is not in 1..${members.length}`,
            );
          }
          threshold = k;
        }
        for (const m of members) {
          if (m === QUORUM_NONE) throw fail(n, `"${QUORUM_NONE}" cannot be a group member`);
          if (m === name) throw fail(n, `group ${clip(name)} cannot contain itself`);
          if (!defined.has(m))
            throw fail(n, `member "${clip(m)}" is not defined on an earlier line`);
          const other = memberOf.get(m);
          if (other !== undefined) {
            throw fail(n, `"${clip(m)}" is already a member of group "${clip(other)}"`);
          }
          memberOf.set(m, name);
        }
        check(
          groups.length < MAX_POLICY_ENTRIES,
          "TOO_LARGE",
          `more than ${MAX_POLICY_ENTRIES} groups`,
        );
        defined.add(name);
        groups.push({ name, threshold, members });
        return;
      }
      case "quorum": {
        if (args.length !== 1) throw fail(n, "want: quorum <name>|none");
        if (quorum !== undefined) throw fail(n, "a policy has exactly one quorum line");
        const name = args[0]!;
        if (!defined.has(name))
          throw fail(n, `quorum "${clip(name)}" is not defined on an earlier line`);
        quorum = name;
        return;
      }
      default:
        throw fail(n, `unknown keyword "${clip(keyword)}"`);
    }
  });
  check(quorum !== undefined, "MALFORMED", "policy has no quorum line");
  return { logs, witnesses, groups, quorum };
}

/**
 * Writes a policy (logs, witnesses, groups in order, then the quorum) and checks it by parsing
 * the result, so it throws exactly what parsePolicy would.
 */
export function formatPolicy(policy: PolicyInput): string {
  const field = (s: string, what: string) => {
    check(
      s.length > 0 && !/[ \t\n]/.test(s),
      "MALFORMED",
      `${what} "${clip(s)}" is empty or has blanks`,
    );
    return s;
  };
  const opt = (url: string | undefined) => (url === undefined ? "" : ` ${field(url, "url")}`);
  let out = "";
  for (const l of policy.logs) out += `log ${field(l.vkey, "log key")}${opt(l.url)}\n`;
  for (const w of policy.witnesses) {
    out += `witness ${field(w.name, "witness name")} ${field(w.vkey, "witness key")}${opt(w.url)}\n`;
  }
  for (const g of policy.groups) {
    const k = typeof g.threshold === "number" ? String(g.threshold) : g.threshold;
    const members = g.members.map((m) => field(m, "group member")).join(" ");
    out += `group ${field(g.name, "group name")} ${field(k, "threshold")} ${members}\n`;
  }
  out += `quorum ${field(policy.quorum, "quorum")}\n`;
  parsePolicy(out);
  return out;
}

/** Verifiers for the policy's log keys (type 0x01). */
export function logVerifiers(policy: Policy): NoteVerifier[] {
  return policy.logs.map((l) => verifierFromPublicKey(l.key.name, l.key.publicKey, l.key.type));
}

/** Verifiers for the policy's witnesses, keyed by the witness's policy name. */
export function witnessVerifiers(policy: Policy): Map<string, NoteVerifier> {
  return new Map(
    policy.witnesses.map((w) => [
      w.name,
      verifierFromPublicKey(w.key.name, w.key.publicKey, w.key.type),
    ]),
  );
}

/** Whether the witnesses named in `cosigned` (policy names) satisfy the quorum. */
export function quorumSatisfied(policy: Policy, cosigned: ReadonlySet<string>): boolean {
  return shortfall(policy, cosigned) === undefined;
}

/**
 * Undefined if the quorum is met, else a description of what is missing, e.g.
 * `group X-and-Y needs 2 of [X-witnesses, Y-witnesses], has 1 (missing: group Y-witnesses
 * needs 1 of [Y1, Y2], has 0 (missing: witness Y1, witness Y2))`.
 */
function shortfall(policy: Policy, cosigned: ReadonlySet<string>): string | undefined {
  if (policy.quorum === QUORUM_NONE) return undefined;
  const groups = new Map(policy.groups.map((g) => [g.name, g]));
  const memo = new Map<string, boolean>();
  const met = (name: string): boolean => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    const g = groups.get(name);
    const ok =
      g === undefined ? cosigned.has(name) : g.members.filter(met).length >= resolveThreshold(g);
    memo.set(name, ok);
    return ok;
  };
  const explain = (name: string): string => {
    const g = groups.get(name);
    if (g === undefined) return `witness ${name}`;
    const have = g.members.filter(met).length;
    const missing = g.members.filter((m) => !met(m)).map(explain);
    return `group ${name} needs ${resolveThreshold(g)} of [${g.members.join(", ")}], has ${have} (missing: ${missing.join(", ")})`;
  };
  return met(policy.quorum) ? undefined : explain(policy.quorum);
}

/** Throws QUORUM_NOT_MET, naming what is missing, unless `cosigned` satisfies the quorum. */
export function checkQuorum(policy: Policy, cosigned: ReadonlySet<string>): void {
  const missing = shortfall(policy, cosigned);
  if (missing !== undefined) {
    const have = cosigned.size === 0 ? "none" : [...cosigned].join(", ");
    throw new VellumError(
      "QUORUM_NOT_MET",
      `witness quorum not met: ${missing}; valid cosignatures from: ${have}`,
    );
  }
}

export interface QuorumResult {
  /** Policy names of the witnesses whose cosignatures verified. */
  readonly witnesses: ReadonlySet<string>;
  /** Those verified cosignatures, with their timestamps. */
  readonly signatures: readonly VerifiedSignature[];
}

/**
 * Verifies the witness cosignatures on a checkpoint note and checks the quorum. Does not check
 * the log's signature (see openCheckpoint). Throws BAD_SIGNATURE if a policy witness's
 * cosignature fails, QUORUM_NOT_MET if the valid ones do not meet the quorum.
 */
export function verifyQuorum(policy: Policy, note: string | Uint8Array | Note): QuorumResult {
  const byName = witnessVerifiers(policy);
  const nameOf = new Map<NoteVerifier, string>();
  for (const [name, v] of byName) nameOf.set(v, name);
  const verified = verifyKnownSignatures(note, [...byName.values()]);
  const witnesses = new Set<string>();
  for (const s of verified.signatures) witnesses.add(nameOf.get(s.verifier)!);
  checkQuorum(policy, witnesses);
  return { witnesses, signatures: verified.signatures };
}
