/**
 * `vellum serve` and `vellum witness` settings through the real CLI: a YAML --config file, the
 * environment and flags (flag > environment > file > default), refusals that name the file and
 * the key, --print-config, and start-up errors that leave nothing behind (no data directory after
 * a bad flag; a port in use is one line and exit 4).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { EXIT_IO, EXIT_OK, EXIT_USAGE } from "../../src/cli/exit-codes.js";
import { EMPTY_ROOT } from "../../src/core/rfc6962.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { runVellum } from "../helpers/cli.js";
import { startVellum } from "../helpers/processes.js";

const fresh = () => mkdtempSync(join(tmpdir(), "vellum-config-"));
/** Unset so that the machine's environment cannot change what these tests see. */
const CLEAN_ENV = { VELLUM_PORT: "", VELLUM_DATA: "", VELLUM_CONFIG: "", VELLUM_ORIGIN: "" };

const printed = (args: string[], env: Record<string, string> = {}) => {
  const r = runVellum([...args, "--print-config"], { env: { ...CLEAN_ENV, ...env } });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(EXIT_OK);
  return { text: r.stdout, values: parseYaml(r.stdout) as Record<string, unknown> };
};

describe("vellum serve --config", () => {
  it("uses the file's values; relative paths are relative to the file", async () => {
    const dir = fresh();
    const config = join(dir, "vellum.yaml");
    writeFileSync(
      config,
      "# a log\nport: 0\ndata: log-data\norigin: file.test/log\npublic: true\n",
    );
    const server = await startVellum(["serve", "--config", config]);
    try {
      const checkpoint = await (await fetch(`${server.url}/checkpoint`)).text();
      expect(checkpoint.split("\n")[0]).toBe("file.test/log");
      // public: true: entries are read without a token (404 in an empty log, not 401)
      expect((await fetch(`${server.url}/v1/entries/0`)).status).toBe(404);
      expect(existsSync(join(dir, "log-data", "log.key"))).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it("a flag overrides the environment, which overrides the file", () => {
    const dir = fresh();
    const config = join(dir, "vellum.yaml");
    writeFileSync(config, "port: 7001\ncache-mb: 256\npublic: true\n");
    const fileOnly = printed(["serve", "--config", config]);
    expect(fileOnly.values).toMatchObject({ port: 7001, "cache-mb": 256, public: true });
    expect(fileOnly.text).toContain(`port: 7001 # from ${config}`);

    const env = printed(["serve", "--config", config], { VELLUM_PORT: "7002" });
    expect(env.values).toMatchObject({ port: 7002, "cache-mb": 256 });
    expect(env.text).toContain("port: 7002 # from VELLUM_PORT");

    const flag = printed(["serve", "--config", config, "--port", "7003", "--no-public"], {
      VELLUM_PORT: "7002",
    });
    expect(flag.values).toMatchObject({ port: 7003, "cache-mb": 256, public: false });
    expect(flag.text).toContain("port: 7003 # from --port");

    // The file named by VELLUM_CONFIG instead of --config
    expect(printed(["serve"], { VELLUM_CONFIG: config }).values).toMatchObject({ port: 7001 });
  });

  it("--print-config prints every default, and its output is a config file giving the same", () => {
    const dir = fresh();
    const first = printed(["serve", "--data", join(dir, "d"), "--dedup", "payload"]);
    expect(first.values).toEqual({
      data: join(dir, "d"),
      port: 6962,
      host: "127.0.0.1",
      public: false,
      dedup: "payload",
      "cache-mb": 128,
      "bundle-cache-mb": 64,
      "body-budget-mb": 64,
      index: true,
      "access-log": false,
      "allow-clock-behind": false,
      "log-level": "info",
    });
    const config = join(dir, "printed.yaml");
    writeFileSync(config, first.text);
    expect(printed(["serve", "--config", config]).values).toEqual(first.values);
    expect(existsSync(join(dir, "d"))).toBe(false); // printing creates nothing
  });

  it("refuses an unknown key or a wrong type, naming the file and the key, creating nothing", () => {
    const dir = fresh();
    const cases: [string, RegExp][] = [
      ["data: data\nprot: 6962\n", /unknown key "prot"; vellum serve takes: data, port,/],
      ['data: data\nport: "6962x"\n', /: port must be an integer, got "6962x"/],
      ["data: data\nport: 70000\n", /: port must be an integer from 0 to 65535, got 70000/],
      ["data: data\npublic: yes please\n", /: public must be true or false/],
      ["- port\n", /a configuration file is a YAML mapping/],
      ["port: [\n", /not valid YAML/],
    ];
    for (const [text, message] of cases) {
      const config = join(dir, "bad.yaml");
      writeFileSync(config, text);
      const r = runVellum(["serve", "--config", config], { env: CLEAN_ENV });
      expect(r.code, text).toBe(EXIT_USAGE);
      expect(r.stderr, text).toMatch(message);
      expect(r.stderr, text).toContain(config);
      expect(r.stderr.trim().split("\n"), text).toHaveLength(1);
    }
    expect(readdirSync(dir)).toEqual(["bad.yaml"]);
  });
});

describe("vellum serve: bad settings leave no data directory behind", () => {
  it("refuses each bad flag, variable or file before creating anything", () => {
    const dir = fresh();
    const data = join(dir, "vellum-data");
    const bad: [string[], Record<string, string>, RegExp][] = [
      [["--port", "99999"], {}, /--port must be an integer from 0 to 65535/],
      [["--cache-mb", "8"], {}, /--cache-mb must be an integer from 16/],
      [[], { VELLUM_BATCH_MAX_ENTRIES: "lots" }, /VELLUM_BATCH_MAX_ENTRIES must be an integer/],
      [[], { VELLUM_PUBLIC: "maybe" }, /VELLUM_PUBLIC must be 1 or 0/],
      [["--origin", "bad origin"], {}, /--origin "bad origin" cannot name a key/],
      [["--dedup", "bytes"], {}, /--dedup must be "key" or "payload"/],
      [["--witness-policy", join(dir, "missing.policy")], {}, /--witness-policy .* cannot be read/],
      [
        ["--state-mirror", join(dir, "no-mirror")],
        {},
        /--state-mirror: .* is not an existing directory/,
      ],
      [["--config", join(dir, "missing.yaml")], {}, /--config .* cannot be read \(ENOENT\)/],
    ];
    writeFileSync(join(dir, "bad.policy"), "witness w1 not-a-key http://127.0.0.1:1\n");
    bad.push([
      ["--witness-policy", join(dir, "bad.policy")],
      {},
      /--witness-policy .*bad\.policy: /,
    ]);
    for (const [args, env, message] of bad) {
      const r = runVellum(["serve", "--data", data, ...args], { env: { ...CLEAN_ENV, ...env } });
      expect(r.code, args.join(" ")).toBe(EXIT_USAGE);
      expect(r.stderr, args.join(" ")).toMatch(message);
      expect(existsSync(data), args.join(" ")).toBe(false);
    }
  });
});

describe("a port in use", () => {
  let blocker: Server;
  let port: number;
  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => blocker.close(() => r())));

  for (const command of ["serve", "witness"]) {
    it(`vellum ${command}: one line, exit 4 (I/O), no data directory`, () => {
      const data = join(fresh(), "data");
      const r = runVellum([command, "--port", String(port), "--data", data]);
      expect(r.stderr).toBe(`vellum: port ${port} is in use; pick another with --port\n`);
      expect(r.code).toBe(EXIT_IO);
      expect(existsSync(data)).toBe(false);
    });
  }
});

describe("vellum witness settings", () => {
  const signer = new CheckpointSigner("config.test/log", new Uint8Array(32).fill(7));

  it("refuses a trust list given to --config (its old meaning), saying to use --trust-file", () => {
    const dir = fresh();
    const list = join(dir, "trusted.txt");
    writeFileSync(list, `# trusted logs\nlog ${signer.verifierKey}\n`);
    const r = runVellum(["witness", "--config", list, "--data", join(dir, "w")]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toContain(`pass it as --trust-file ${list}`);
    const env = runVellum(["witness", "--data", join(dir, "w")], {
      env: { VELLUM_WITNESS_CONFIG: list },
    });
    expect(env.code).toBe(EXIT_USAGE);
    expect(env.stderr).toContain("set VELLUM_WITNESS_TRUST_FILE instead");
    expect(existsSync(join(dir, "w"))).toBe(false);
  });

  it("takes every setting from the file, the environment and flags", () => {
    const dir = fresh();
    mkdirSync(join(dir, "keys"));
    writeFileSync(join(dir, "keys", "log.vkey"), `${signer.verifierKey}\n`);
    const config = join(dir, "witness.yaml");
    writeFileSync(
      config,
      `data: w\nport: 7100\nname: file.test/w\ntrust: [keys/log.vkey]\ntrust-file: trusted.txt\n`,
    );
    const { values, text } = printed(["witness", "--config", config, "--port", "7101"], {
      VELLUM_WITNESS_NAME: "env.test/w",
    });
    expect(values).toEqual({
      data: join(dir, "w"),
      port: 7101,
      host: "127.0.0.1",
      name: "env.test/w",
      trust: [join(dir, "keys", "log.vkey")],
      "trust-file": join(dir, "trusted.txt"),
      "log-level": "info",
    });
    expect(text).toContain("name: env.test/w # from VELLUM_WITNESS_NAME");
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "trust: 5\n");
    const r = runVellum(["witness", "--config", bad]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toContain(`${bad}: trust must be a verifier key or file, or a list of them`);
  });

  it("a witness's --trust that is neither a key nor a file: exit 2, no data directory", () => {
    const data = join(fresh(), "w");
    const r = runVellum(["witness", "--data", data, "--trust", "nope.vkey", "--port", "0"]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toMatch(/--trust "nope.vkey" is neither a verifier key/);
    expect(existsSync(data)).toBe(false);
  });

  it("serves with the config file's trust-file and reloads both on change", {
    timeout: 60_000,
  }, async () => {
    const dir = fresh();
    writeFileSync(join(dir, "trusted.txt"), "# trusted logs\n");
    const config = join(dir, "witness.yaml");
    writeFileSync(config, "data: w\nport: 0\ntrust-file: trusted.txt\n");
    const w = await startVellum(["witness", "--config", config]);
    try {
      const note = signer.sign(0, EMPTY_ROOT, Math.floor(Date.now() / 1000)).note;
      const add = () =>
        fetch(`${w.url}/add-checkpoint`, { method: "POST", body: `old 0\n\n${note}` });
      expect((await add()).status).toBe(404);
      writeFileSync(join(dir, "trusted.txt"), `log ${signer.verifierKey}\n`);
      const deadline = Date.now() + 10_000;
      let status = 404;
      while (status === 404 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await add()).status;
      }
      expect(status).toBe(200);
      expect(existsSync(join(dir, "w", "witness.key"))).toBe(true);

      // The config file is re-read too (its trust settings): a bad edit keeps the list …
      writeFileSync(config, "data: w\nport: 0\ntrust-file: trusted.txt\ntrust: 5\n");
      while (!w.output().includes("kept the previous trust list") && Date.now() < deadline + 10_000)
        await new Promise((r) => setTimeout(r, 200));
      expect(w.output()).toContain(`${config}: trust must be a verifier key or file`);
      expect((await add()).status).toBe(200);
      // … and dropping the trust file from it drops its logs.
      writeFileSync(config, "data: w\nport: 0\n");
      while (status !== 404 && Date.now() < deadline + 20_000) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await add()).status;
      }
      expect(status).toBe(404);
    } finally {
      await w.stop();
    }
  });
});

describe("--help", () => {
  for (const command of ["serve", "witness"]) {
    it(`vellum ${command} --help lists the configuration file and the exit codes`, () => {
      const r = runVellum([command, "--help"]);
      expect(r.code).toBe(EXIT_OK);
      expect(r.stdout).toContain("--config <file>");
      expect(r.stdout).toContain("--print-config");
      expect(r.stdout).toMatch(
        /Exit codes:\n {2}0 .*\n {2}.*\n(.*\n)* {2}4 {2}I\/O or network error/,
      );
    });
  }
});
