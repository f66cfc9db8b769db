/**
 * Micro-benchmarks of the verifier core, with each crypto provider: hashing, compact-range
 * appends, inclusion and consistency proof verification, multiproof expansion (what the SDK
 * does per batch answer), and checkpoint (signed note) verification. Prints operations per second and the machine it ran on.
 *
 *   npm run bench:core
 */
import { hash } from "node:crypto";
import { formatCheckpoint } from "../src/core/checkpoint.js";
import { CompactRange, foldRight } from "../src/core/compact.js";
import { cosignerFromSeed } from "../src/core/cosignature.js";
import { type CryptoProvider, nobleCrypto, setCryptoProvider } from "../src/core/crypto.js";
import { decodeLeaf, encodeLeaf, leafPayload } from "../src/core/entry.js";
import { indexKeysOfPayload } from "../src/core/event-keys.js";
import { signerFromSeed } from "../src/core/keys.js";
import { type NodeId, rangeNodes } from "../src/core/merkle.js";
import { expandMultiproof, multiproofRanges } from "../src/core/multiproof.js";
import { signNote, verifyNote } from "../src/core/note.js";
import { buildProof, consistencyProofPlan, inclusionProofPlan } from "../src/core/proof.js";
import { hashChildren, hashLeaf } from "../src/core/rfc6962.js";
import { verifyConsistency, verifyInclusion } from "../src/core/verify.js";
import { nodeCrypto } from "../src/platform/node-crypto.js";
import { bench, formatRate, machine } from "./lib/bench.js";

console.log(`# Vellum core benchmarks — ${machine()}`);

// A real tree of 2^20 leaves is slow to build with pure-JS hashing; proofs only touch O(log n)
// nodes, so a tree of identical leaves (every subtree of height h has the same hash) gives
// real-sized proofs at no set-up cost.
function uniformTree(): { read: (id: NodeId) => Uint8Array; rootOf: (n: number) => Uint8Array } {
  const P = [hashLeaf(Uint8Array.of(1))];
  for (let h = 1; h <= 53; h++) P.push(hashChildren(P[h - 1]!, P[h - 1]!));
  const read = (id: NodeId) => P[id.level]!;
  return { read, rootOf: (n) => foldRight(rangeNodes(0, n).map(read))! };
}

function run(provider: CryptoProvider): void {
  setCryptoProvider(provider);
  console.log(`\n## provider: ${provider.name}`);
  const node = new Uint8Array(32).fill(7);
  const leaf1k = new Uint8Array(1024).fill(9);
  bench("SHA-256 interior node (hashChildren)", () => hashChildren(node, node));
  bench("SHA-256 leaf of 1 KiB (hashLeaf)", () => hashLeaf(leaf1k));
  const range = CompactRange.empty();
  bench("compact range append (leaf hash given)", () => range.append(node));

  const tree = uniformTree();
  const size = 1_000_003;
  const index = 777_777;
  const root = tree.rootOf(size);
  const proof = buildProof(inclusionProofPlan(index, size), tree.read);
  bench(`verify inclusion proof (size ${size}, ${proof.length} hashes)`, () =>
    verifyInclusion(index, size, tree.read({ level: 0, index }), proof, root),
  );
  const old = 654_321;
  const oldRoot = tree.rootOf(old);
  const cproof = buildProof(consistencyProofPlan(old, size), tree.read);
  bench(`verify consistency proof (${old} → ${size}, ${cproof.length} hashes)`, () =>
    verifyConsistency(old, size, cproof, oldRoot, root),
  );
  bench("plan an inclusion proof (node ids only)", () => inclusionProofPlan(index, size));

  // A batch answer as the SDK gets it (?proof=multi): 100 consecutive leaves, one multiproof;
  // expanding it gives the root and every leaf's inclusion proof (per batch of 100).
  const batch = Array.from({ length: 100 }, (_, i) => index + i);
  const leafHashes = batch.map((i) => tree.read({ level: 0, index: i }));
  const ranges = multiproofRanges(batch, size);
  const multiproof = ranges.map(
    ([start, end]) => foldRight(rangeNodes(start, end).map(tree.read))!,
  );
  bench(`expand a multiproof: 100 leaves, ${multiproof.length} hashes (per batch)`, () =>
    expandMultiproof(batch, leafHashes, size, multiproof),
  );

  const seed = new Uint8Array(32).fill(3);
  const log = signerFromSeed("example.com/log", seed);
  const witness = cosignerFromSeed("witness.example/w1", new Uint8Array(32).fill(4), 1_700_000_000);
  const body = formatCheckpoint({
    origin: "example.com/log",
    size,
    rootHash: root,
    extensions: [],
  });
  const note = signNote(signNote(body, [log]), [witness]);
  bench("sign a checkpoint (Ed25519 note signature)", () => signNote(body, [log]), { ms: 200 });
  const verifiers = [log.verifier(), witness.verifier()];
  bench("verify a checkpoint: log signature + 1 cosignature", () => verifyNote(note, verifiers), {
    ms: 200,
  });
}

run(nodeCrypto);
run(nobleCrypto);

// The index's key function (src/core/event-keys.ts) per entry, as the index applies it to every
// entry of the log: an OCSF event (parsed), JSON that names no key's field and has no backslash
// (answered without parsing), and the same JSON with one escape (parsed, as it must be).
console.log("\n## the index's key function, per payload");
const utf8 = (s: string) => new TextEncoder().encode(s);
const ocsf = utf8(
  JSON.stringify({
    activity_id: 3,
    actor: { user: { uid: "alice" } },
    api: { operation: "UpdateInvoice" },
    class_uid: 6003,
    metadata: { product: { name: "bench" }, tenant_uid: "acme", version: "1.8.0" },
    resources: [{ type: "invoice", uid: "invoice-42" }],
    severity_id: 1,
    status_id: 1,
    time: 1764748800000,
    type_uid: 600303,
  }),
);
const plain = utf8(
  '{"v":1,"seq":"0000001234","ts":"2024-06-01T12:00:00.000Z","tenant":"acme","who":"alice@acme.example","what":"document.update","target":"documents/3k2j1","outcome":"success","ip":"10.1.2.7"}',
);
const escaped = utf8(`{"note":"tab\\there",${new TextDecoder().decode(plain).slice(1)}`);
bench(`an OCSF API Activity (${ocsf.length} B)`, () => indexKeysOfPayload(ocsf));
bench(`other JSON, no backslash (${plain.length} B)`, () => indexKeysOfPayload(plain));
bench(`other JSON with one escape (${escaped.length} B)`, () => indexKeysOfPayload(escaped));
// As bench:http's payloads: JSON padded with dots, which does not parse (the parser throws).
const padded = utf8(`{"bench":"1234-1764748800000","phase":"single","n":42}${".".repeat(64)}`);
bench(`text starting with "{" that is not JSON (${padded.length} B)`, () =>
  indexKeysOfPayload(padded),
);

// What node:crypto's one-shot SHA-256 costs by how its digest comes back, in CPU of every thread
// (a Buffer's backing store is malloc'd and later freed by V8's sweeper threads, which a
// main-thread timer does not see). The provider (src/platform/node-crypto.ts) copies the digest
// out of a one-byte string into a 32-byte Uint8Array, which V8 keeps on its heap.
console.log("\n## SHA-256 digest as (65-byte input, CPU of every thread per hash)");
{
  const input = new Uint8Array(65).fill(7);
  const cpuPerOp = (name: string, fn: () => Uint8Array) => {
    const n = 1_000_000;
    for (let i = 0; i < n / 10; i++) fn(); // warm-up
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      input[0] = i & 0xff;
      fn();
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `${name.padEnd(58)} ${formatRate((n / ms) * 1000).padStart(12)} ops/s  ${((cpu.user + cpu.system) / n).toFixed(2)} µs CPU/op`,
    );
  };
  cpuPerOp("a Buffer (crypto.hash(…, 'buffer'))", () => hash("sha256", input, "buffer"));
  cpuPerOp("a heap Uint8Array (the provider: nodeCrypto.sha256)", () => nodeCrypto.sha256(input));
}

// What reading an entry's payload costs (CPU of every thread): decodeLeaf copies the payload
// into an array of its own (outside V8's heap when it is over 64 bytes); leafPayload, what the
// index reads each entry with, returns a view of the leaf's bytes.
console.log(
  "\n## an entry's payload from its leaf (420-byte payload, CPU of every thread per leaf)",
);
{
  const leaves = Array.from({ length: 1000 }, (_, i) =>
    encodeLeaf({
      id: new Uint8Array(16).fill(i & 0xff),
      timestamp: 1_764_748_800_000 + i,
      payload: new Uint8Array(420).fill(0x61),
    }),
  );
  const cpuPerLeaf = (name: string, fn: (leaf: Uint8Array) => Uint8Array) => {
    const n = 500_000;
    for (let i = 0; i < n / 10; i++) fn(leaves[i % leaves.length]!); // warm-up
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += fn(leaves[i % leaves.length]!).length;
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (bytes !== 420 * n) throw new Error("payloads misread");
    console.log(
      `${name.padEnd(58)} ${formatRate((n / ms) * 1000).padStart(12)} ops/s  ${((cpu.user + cpu.system) / n).toFixed(2)} µs CPU/op`,
    );
  };
  cpuPerLeaf("decodeLeaf(leaf).payload (a copy)", (leaf) => decodeLeaf(leaf).payload);
  cpuPerLeaf("leafPayload(leaf) (a view)", leafPayload);
}
