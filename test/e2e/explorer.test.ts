/**
 * The explorer in a real browser: headless Chromium (Debian's, `scripts/services.sh up
 * chromium`, driven by playwright-core) against a real `vellum serve` on 127.0.0.1. The overview
 * verifies the checkpoint; signed in, entries appear newest first; an entry verifies (its leaf
 * hash recomputed in the page, its inclusion proven and drawn); payloads made to run script stay
 * text; and through a proxy that alters a proof, a checkpoint, or offers a checkpoint that
 * contradicts the one the page trusted, the page refuses — INCONSISTENT with evidence to save.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatCheckpoint, parseCheckpoint } from "../../src/core/checkpoint.js";
import { signerFromKey } from "../../src/core/keys.js";
import { signNote } from "../../src/core/note.js";
import { apiActivity } from "../audit/events.js";
import { REPO_ROOT, runVellum } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";
import { needService } from "../helpers/services.js";

const env = needService("chromium", ["VELLUM_CHROMIUM"]);

interface Page {
  goto(u: string): Promise<unknown>;
  fill(sel: string, v: string): Promise<void>;
  click(sel: string): Promise<void>;
  waitForSelector(sel: string, o?: object): Promise<unknown>;
  waitForFunction<A>(f: (arg: A) => unknown, arg: A, o?: object): Promise<unknown>;
  textContent(sel: string): Promise<string | null>;
  evaluate<T>(f: () => T): Promise<T>;
  on(event: string, f: (x: { accept(): Promise<void> }) => void): void;
  setInputFiles(sel: string, files: string): Promise<void>;
  evaluateHandle<A>(f: (arg: A) => unknown, arg: A): Promise<unknown>;
  dispatchEvent(sel: string, type: string, init: object): Promise<void>;
  screenshot(o: { path: string; fullPage?: boolean }): Promise<unknown>;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), "vellum-explorer-"));
let server: VellumProcess;
let browser: Browser;
let token: string;
const proxies: Server[] = [];

afterAll(async () => {
  for (const p of proxies) p.close();
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A proxy to the server that may rewrite an answer (by path). */
function proxy(rewrite: (path: string, body: Buffer) => Buffer | undefined): Promise<string> {
  return new Promise((resolve) => {
    const p = createServer(async (req, res) => {
      const upstream = await fetch(`${server.url}${req.url}`, {
        headers: req.headers.authorization ? { Authorization: req.headers.authorization } : {},
      });
      let body: Buffer = Buffer.from(await upstream.arrayBuffer());
      body = rewrite(req.url ?? "/", body) ?? body;
      const headers: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "content-encoding" && k !== "transfer-encoding")
          headers[k] = v;
      });
      res.writeHead(upstream.status, headers);
      res.end(body);
    });
    proxies.push(p);
    p.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(p.address() as { port: number }).port}`),
    );
  });
}

/**
 * Waits until #verdict's text starts with `prefix`. Functions, not strings: the page's CSP
 * forbids eval, which is how a browser driver runs a string in the page.
 */
const waitVerdict = (page: Page, prefix: string) =>
  waitFor(page, prefix).catch(async (e) => {
    throw new Error(
      `${(e as Error).message}; waiting for "${prefix}", the page says: ${await page.textContent("main")}`,
    );
  });
const waitFor = (page: Page, prefix: string) =>
  page.waitForFunction(
    (p: string) =>
      // biome-ignore lint/suspicious/noExplicitAny: the page's globals
      (globalThis as any).document.querySelector("#verdict")?.textContent?.startsWith(p) === true,
    prefix,
  );

const XSS = [
  "<script>window.__pwned = 1</script>",
  '<img src="x" onerror="window.__pwned = 1">',
  '{"actor":"alice","note":"<img src=x onerror=window.__pwned=1>"}',
];

describe.skipIf(env === undefined)("the explorer in Chromium", () => {
  beforeAll(async () => {
    const data = join(dir, "data");
    server = await startVellum(["serve", "--data", data, "--port", "0"], "/readyz");
    token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const playwright = createRequire(import.meta.url).resolve("playwright-core");
    const { chromium } = (await import(playwright)) as {
      chromium: { launch(o: object): Promise<Browser> };
    };
    browser = await chromium.launch({
      executablePath: env!.VELLUM_CHROMIUM,
      args: ["--no-sandbox"],
    });
  }, 60_000);

  const submit = async (body: string) => {
    const res = await fetch(`${server.url}/v1/entries`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      body,
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { index: number }).index;
  };

  it("serves the page under a strict CSP, with nothing from elsewhere", async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>[^<]/); // no inline script
    const js = await (await fetch(`${server.url}/explorer/app.js`)).text();
    expect(js).not.toMatch(/\beval\(|new Function\(/);
  });

  it("verifies the checkpoint, lists entries newest first, and verifies one, payloads as text", {
    timeout: 60_000,
  }, async () => {
    await submit('{"actor":"alice","action":"invoice.pay","resource":"invoice-42"}');
    for (const x of XSS) await submit(x);
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForSelector("#verdict");
    expect(await page.textContent("#verdict")).toMatch(/^Checkpoint verified: size 4/);
    // The growth chart, drawn from the checkpoints the log keeps, each verified in the page.
    expect(await page.textContent("#growth figcaption")).toMatch(
      /^Tree size \(line\) and entries per minute .* from \d+ signed checkpoints\.$/,
    );

    await page.goto(`${server.url}/#/signin`);
    await page.fill("#token", token);
    await page.click("form button");
    await page.waitForSelector("table tbody tr");
    const first = await page.textContent("table tbody tr td");
    expect(first).toBe("3"); // newest first
    const listed = await page.textContent("table tbody");
    expect(listed).toContain("<script>window.__pwned = 1</script>");

    await page.goto(`${server.url}/#/entry/0`);
    await waitVerdict(page, "Verified");
    expect(await page.textContent("#verdict")).toMatch(
      /Verified: entry 0 is in the log's tree of size 4/,
    );
    expect(await page.textContent("#payload")).toContain('"resource": "invoice-42"');
    expect(await page.textContent("ol.path")).toMatch(/leaf 0: .*root of 4: /s);
    for (const i of [1, 2, 3]) {
      await page.goto(`${server.url}/#/entry/${i}`);
      await waitVerdict(page, `Verified: entry ${i}`);
      expect(await page.textContent("#payload")).toContain(
        i === 3 ? "<img src=x onerror=window.__pwned=1>" : XSS[i - 1]!,
      );
    }
    // Nothing the payloads hold ran, and no element was made from them.
    // biome-ignore lint/suspicious/noExplicitAny: the page's globals
    expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined();
    const made = await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's globals
      () => (globalThis as any).document.querySelectorAll("main img, main script").length,
    );
    expect(made).toBe(0);
  });

  /** A page signed in with the admin token. */
  const signedIn = async (base = server.url) => {
    const page = await browser.newPage();
    await page.goto(`${base}/#/signin`);
    await page.fill("#token", token);
    await page.click("form button");
    await page.waitForSelector("main h1");
    return page;
  };

  it("shows a structured event by field, and finds it with a proven search", {
    timeout: 60_000,
  }, async () => {
    const res = await fetch(`${server.url}/v1/events`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(apiActivity({ actor: { user: { uid: "carol" } } })),
    });
    expect(res.status).toBe(201);
    const { index } = (await res.json()) as { index: number };
    const page = await signedIn();
    await page.goto(`${server.url}/#/entry/${index}`);
    await waitVerdict(page, "Verified");
    expect(await page.textContent("main")).toMatch(
      /Actorcarol.*ActionUpdateInvoice.*Resourcesinvoice-42/s,
    );
    // The index answers within about a second of the entry.
    let found = "";
    for (let i = 0; i < 40 && !found.startsWith("Complete: 1 "); i++) {
      await page.goto(`${server.url}/#/search?actor=carol&t=${i}`);
      await page.waitForSelector("main h1");
      await page
        .waitForFunction(
          // biome-ignore lint/suspicious/noExplicitAny: the page's globals
          () => (globalThis as any).document.querySelector("#verdict, .status") !== null,
          undefined,
        )
        .catch(() => undefined);
      found = (await page.textContent("#verdict").catch(() => "")) ?? "";
      if (!found.startsWith("Complete: 1 ")) await new Promise((r) => setTimeout(r, 250));
    }
    expect(found).toMatch(/^Complete: 1 entries, proven/);
    expect(await page.textContent("table tbody")).toContain(String(index));
  });

  it("verifies a dropped receipt offline, and refuses an altered one as vellum verify does", {
    timeout: 60_000,
  }, async () => {
    const receipt = join(dir, "r.tlog-proof");
    const entryFile = join(dir, "r.txt");
    writeFileSync(entryFile, "receipt me");
    const sub = runVellum(["submit", "--url", server.url, "--token", token, "--out", receipt], {
      input: "receipt me",
    });
    expect(sub.code, sub.stderr).toBe(0);
    const page = await browser.newPage();
    await page.goto(`${server.url}/#/verify`);
    await page.setInputFiles("#receipt-file", receipt);
    await waitVerdict(page, "Verified: index");
    await page.setInputFiles("#entry-file", entryFile);
    await waitVerdict(page, "Verified");
    expect(await page.textContent("#verdict")).toMatch(/for exactly this entry/);
    // One character of the proof changed: the page and the CLI refuse it with the same code.
    const lines = readFileSync(receipt, "utf8").split("\n");
    const at = lines.findIndex((l, i) => i > 2 && /^[A-Za-z0-9+/]{43}=$/.test(l));
    lines[at] = `${lines[at]![0] === "A" ? "B" : "A"}${lines[at]!.slice(1)}`;
    const bad = join(dir, "bad.tlog-proof");
    writeFileSync(bad, lines.join("\n"));
    const cli = runVellum(["verify", bad, "--key", join(dir, "data", "log.vkey"), "--json"]);
    const code = (JSON.parse(cli.stdout) as { error: { code: string } }).error.code;
    // Dropped on the page (both files at once), the same answer.
    const dropped = await browser.newPage();
    await dropped.goto(`${server.url}/#/verify`);
    await dropped.waitForSelector("#drop");
    const dataTransfer = await dropped.evaluateHandle(
      (files: { name: string; text: string }[]) => {
        // biome-ignore lint/suspicious/noExplicitAny: the page's globals
        const g = globalThis as any;
        const dt = new g.DataTransfer();
        for (const f of files) dt.items.add(new g.File([f.text], f.name));
        return dt;
      },
      [
        { name: "r.tlog-proof", text: readFileSync(receipt, "utf8") },
        { name: "r.txt", text: "receipt me" },
      ],
    );
    await dropped.dispatchEvent("#drop", "drop", { dataTransfer });
    await waitVerdict(dropped, "Verified");
    expect(await dropped.textContent("#verdict")).toMatch(/for exactly this entry/);

    const fresh = await browser.newPage();
    await fresh.goto(`${server.url}/#/verify`);
    await fresh.setInputFiles("#receipt-file", bad);
    await waitVerdict(fresh, "Not verified");
    expect(await fresh.textContent("#verdict")).toContain(`Not verified: ${code}:`);
  });

  it("creates a token (its secret shown once) and revokes it", { timeout: 60_000 }, async () => {
    const page = await signedIn();
    await page.goto(`${server.url}/#/tokens`);
    await page.waitForSelector("#create-token");
    await page.fill("#token-name", "explorer-made");
    await page.click("#create-token button");
    await page.waitForSelector("#new-secret");
    const secret = (await page.textContent("#new-secret"))!.trim();
    expect(secret).toMatch(/^vellum_/);
    const read = () =>
      fetch(`${server.url}/v1/entries/0`, { headers: { Authorization: `Bearer ${secret}` } });
    expect((await read()).status).toBe(200);
    page.on("dialog", (d) => void d.accept());
    const rows = await page.textContent("#tokens");
    expect(rows).toContain("explorer-made");
    const list = (await (
      await fetch(`${server.url}/v1/tokens`, { headers: { Authorization: `Bearer ${token}` } })
    ).json()) as { tokens: { id: string; name: string }[] };
    const id = list.tokens.find((t) => t.name === "explorer-made")!.id;
    await page.click(`[data-revoke="${id}"]`);
    await page.waitForFunction(
      (tokenId: string) =>
        // biome-ignore lint/suspicious/noExplicitAny: the page's globals
        (globalThis as any).document.querySelector(`[data-revoke="${tokenId}"]`) === null,
      id,
    );
    expect((await read()).status).toBe(401);
  });

  it("shows who read an entry, from the access log, proven (audit scope)", {
    timeout: 90_000,
  }, async () => {
    const data = join(dir, "with-access");
    const audited = await startVellum(
      ["serve", "--data", data, "--port", "0", "--access-log"],
      "/readyz",
    );
    try {
      const admin = readFileSync(join(data, "admin.token"), "utf8").trim();
      const auth = { Authorization: `Bearer ${admin}` };
      expect(
        (await fetch(`${audited.url}/v1/entries`, { method: "POST", headers: auth, body: "x" }))
          .status,
      ).toBe(201);
      expect((await fetch(`${audited.url}/v1/entries/0`, { headers: auth })).status).toBe(200);
      const page = await browser.newPage();
      await page.goto(`${audited.url}/#/signin`);
      await page.fill("#token", admin);
      await page.click("form button");
      await page.waitForSelector("main h1");
      let found = "";
      // The read by the API, and the page's own listing of entries: both recorded.
      for (let i = 0; i < 40 && !found.startsWith("Complete: 2 "); i++) {
        await page.goto(`${audited.url}/#/access?resource=entry:0&t=${i}`);
        await page.waitForSelector("main h1");
        await page.waitForSelector("#verdict", { timeout: 5000 }).catch(() => undefined);
        found = (await page.textContent("#verdict").catch(() => "")) ?? "";
        if (!found.startsWith("Complete: 2 ")) await new Promise((r) => setTimeout(r, 250));
      }
      expect(found).toMatch(/^Complete: 2 records, proven/);
      const rows = (await page.textContent("table tbody")) ?? "";
      expect(rows).toMatch(/admin \(first start\).*127\.0\.0\.1GET \/v1\/entries\/:indexentry:0/s);
      expect(rows).toMatch(/127\.0\.0\.1GET \/v1\/entriesentry:0/);
    } finally {
      await audited.stop();
    }
  });

  it("refuses an altered proof and an altered checkpoint", { timeout: 60_000 }, async () => {
    const flip = (b64: string) => {
      const bytes = Buffer.from(b64, "base64");
      bytes[0]! ^= 1;
      return bytes.toString("base64");
    };
    const badProof = await proxy((path, body) => {
      if (!path.startsWith("/v1/proofs/inclusion")) return undefined;
      const j = JSON.parse(body.toString()) as { proof: string[] };
      j.proof = j.proof.map((h, i) => (i === 0 ? flip(h) : h));
      return Buffer.from(JSON.stringify(j));
    });
    const page = await browser.newPage();
    await page.goto(`${badProof}/#/signin`);
    await page.fill("#token", token);
    await page.click("form button");
    await page.waitForSelector("table tbody tr");
    await page.goto(`${badProof}/#/entry/1`);
    await waitVerdict(page, "Not verified");

    const badCheckpoint = await proxy((path, body) => {
      if (path !== "/checkpoint") return undefined;
      const text = body.toString();
      const lines = text.split("\n");
      lines[2] = flip(lines[2]!);
      return Buffer.from(lines.join("\n"));
    });
    await page.goto(`${badCheckpoint}/`);
    await page.waitForSelector("#verdict");
    expect(await page.textContent("#verdict")).toMatch(/^Not verified/);
  });

  it("says INCONSISTENT, with evidence, when the log contradicts what the page trusted", {
    timeout: 60_000,
  }, async () => {
    // A checkpoint signed with the log's own key (a log that forked): the real size, another
    // root, so no consistency proof from the checkpoint the page trusted first can reach it.
    let forked = false;
    const skey = readFileSync(join(dir, "data", "log.key"), "utf8").trim();
    const fork = await proxy((path, body) => {
      if (!forked || path !== "/checkpoint") return undefined;
      const cp = parseCheckpoint(`${body.toString().split("\n\n")[0]!}\n`);
      const bogus = { ...cp, rootHash: new Uint8Array(32).fill(7) };
      return Buffer.from(signNote(formatCheckpoint(bogus), [signerFromKey(skey)]));
    });
    const page = await browser.newPage();
    await page.goto(`${fork}/`);
    await page.waitForSelector("#verdict");
    expect(await page.textContent("#verdict")).toMatch(/^Checkpoint verified/);
    forked = true;
    await submit("after the fork"); // the real log grows too; the page is offered the fork
    await page.goto(`${fork}/#/entries`);
    await page.goto(`${fork}/`);
    await waitVerdict(page, "INCONSISTENT").catch(async (e) => {
      throw new Error(`${e.message}; the page says: ${await page.textContent("main")}`);
    });
    const href = await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's globals
      () => (globalThis as any).document.querySelector("a[download]")?.getAttribute("href") ?? "",
    );
    expect(href).toMatch(/^blob:/);
  });

  it("with a witness policy, accepts only checkpoints its witnesses cosigned", {
    timeout: 90_000,
  }, async () => {
    const data = join(dir, "witnessed");
    mkdirSync(data, { mode: 0o700 });
    const origin = "explorer.e2e.test/log";
    const k = runVellum(["keygen", "--name", origin, "--out", join(data, "log.key")]);
    expect(k.code, k.stderr).toBe(0);
    const port = await freePort();
    const witness = await startVellum([
      "witness",
      ...["--data", join(dir, "w0"), "--port", String(port), "--name", "w0.explorer.test/witness"],
      ...["--trust", k.stdout.trim()],
    ]);
    const wkey = readFileSync(join(dir, "w0", "witness.vkey"), "utf8").trim();
    const policy = `witness w0 ${wkey} http://127.0.0.1:${port}\nquorum w0\n`;
    const policyFile = join(dir, "policy.txt");
    writeFileSync(policyFile, policy);
    const witnessed = await startVellum(
      ["serve", "--data", data, "--port", "0", "--witness-policy", policyFile],
      "/readyz",
    );
    try {
      const admin = readFileSync(join(data, "admin.token"), "utf8").trim();
      const posted = await fetch(`${witnessed.url}/v1/entries`, {
        method: "POST",
        headers: { Authorization: `Bearer ${admin}` },
        body: "witnessed entry",
      });
      expect(posted.status).toBe(201);
      const page = await browser.newPage();
      await page.goto(`${witnessed.url}/#/settings`);
      await page.waitForSelector("#policy");
      await page.fill("#policy", policy);
      await page.click("#settings button");
      await page.waitForSelector("#saved");
      await page.goto(`${witnessed.url}/#/`);
      await waitVerdict(page, "Checkpoint verified");
      expect(await page.textContent("#verdict")).toMatch(
        /cosigned by w0 \(the witness policy's quorum\)/,
      );
      // A policy naming a witness that never cosigned this log: nothing is accepted.
      const stranger = runVellum([
        "keygen",
        ...["--name", "stranger.example/witness", "--type", "witness"],
        ...["--out", join(dir, "stranger.key")],
      ]);
      const strangerKey = stranger.stdout.trim();
      await page.goto(`${witnessed.url}/#/settings`);
      await page.waitForSelector("#policy");
      await page.fill("#policy", `witness s ${strangerKey} http://127.0.0.1:9\nquorum s\n`);
      await page.click("#settings button");
      await page.waitForSelector("#saved");
      await page.goto(`${witnessed.url}/#/`);
      await waitVerdict(page, "Not verified");
    } finally {
      await witnessed.stop();
      await witness.stop();
    }
  });

  it("takes a screenshot of each page (reports/screenshots/)", { timeout: 60_000 }, async () => {
    const out = join(REPO_ROOT, "reports", "screenshots");
    mkdirSync(out, { recursive: true });
    const page = await signedIn();
    const shots: [string, string, string][] = [
      ["overview", "/#/", "#verdict"],
      ["entries", "/#/entries", "table"],
      ["entry", "/#/entry/0", "ol.path"],
      ["search", "/#/search?actor=carol", "#verdict"],
      ["verify", "/#/verify", "#drop"],
      ["tokens", "/#/tokens", "#create-token"],
      ["settings", "/#/settings", "#policy"],
    ];
    for (const [name, path, ready] of shots) {
      await page.goto(`${server.url}/#/`);
      await page.goto(`${server.url}${path}`);
      await page.waitForSelector(ready);
      await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
    }
  });
});
