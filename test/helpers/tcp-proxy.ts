/**
 * A TCP fault proxy for tests: listens on 127.0.0.1 (a port the OS picks) and forwards each
 * connection to `target`, byte for byte, until told to cut. `cut()` destroys every open
 * connection (with a reset) and, until `restore()`, treats new ones as the fault says:
 *
 * - "refuse" (the default): a new connection is reset at once, as by a host that is up with
 *   nothing listening — the client sees ECONNRESET or an unexpected end within milliseconds;
 * - "blackhole": a new connection is accepted and then nothing: no byte is forwarded or
 *   answered, as over a network that drops packets — the client waits for its own timeout.
 *   Held connections are reset on `restore()` (the partition healed; their peers are gone).
 *
 * Bounded: at most `maxConnections` (default 256) open at once (more are reset), and `close()`
 * ends everything. Counts what it did, so a test can say what its client went through.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export type Fault = "refuse" | "blackhole";

export interface ProxyCounts {
  /** Connections accepted and forwarded to the target. */
  forwarded: number;
  /** Connections open now (forwarded or held). */
  open: number;
  /** Connections reset by `cut()` while open (and held ones by `restore()`). */
  cut: number;
  /** Connections reset on arrival during a cut ("refuse"), or over the bound. */
  refused: number;
  /** Connections held without an answer during a cut ("blackhole"). */
  held: number;
}

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** "127.0.0.1:PORT", to put in a URL in place of the target's host:port. */
  readonly address: string;
  readonly counts: Readonly<ProxyCounts>;
  /** True between `cut()` and `restore()`. */
  readonly isCut: boolean;
  /** Destroys every open connection; new ones meet `fault` until `restore()`. */
  cut(fault?: Fault): void;
  /** Forwards new connections again. */
  restore(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/** Starts a proxy to `target` ("HOST:PORT", or a URL whose host:port is used). */
export async function startTcpProxy(
  target: string,
  options: { maxConnections?: number } = {},
): Promise<TcpProxy> {
  const { hostname, port: targetPort } = parseTarget(target);
  const max = options.maxConnections ?? 256;
  const counts: ProxyCounts = { forwarded: 0, open: 0, cut: 0, refused: 0, held: 0 };
  /** The proxy's side of every accepted connection, and of every one to the target. */
  const clients = new Set<Socket>();
  const upstreams = new Set<Socket>();
  let fault: Fault | undefined;
  let closed = false;

  const track = (set: Set<Socket>, s: Socket) => {
    set.add(s);
    s.on("close", () => set.delete(s));
    // A reset or a refused target is the point here, not a failure of the test process.
    s.on("error", () => undefined);
  };
  const reset = (s: Socket) => {
    if (!s.destroyed) s.resetAndDestroy();
  };
  /** One side gone: the other goes too — a reset after an error, an end after an end. */
  const follow = (from: Socket, to: Socket) =>
    from.once("close", (hadError) => (hadError ? reset(to) : to.end()));

  const server: Server = createServer((client) => {
    track(clients, client);
    if (closed || clients.size > max || fault === "refuse") {
      counts.refused++;
      reset(client);
      return;
    }
    counts.open++;
    client.once("close", () => {
      counts.open--;
    });
    if (fault === "blackhole") {
      counts.held++;
      client.pause(); // read nothing, answer nothing
      return;
    }
    counts.forwarded++;
    const upstream = connect({ host: hostname, port: targetPort });
    track(upstreams, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    follow(client, upstream);
    follow(upstream, client);
  });
  server.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as { port: number };

  const destroyAll = () => {
    for (const s of [...clients]) {
      if (!s.destroyed) counts.cut++;
      reset(s);
    }
    for (const s of [...upstreams]) reset(s);
  };

  return {
    host: "127.0.0.1",
    port,
    address: `127.0.0.1:${port}`,
    get counts() {
      return counts;
    },
    get isCut() {
      return fault !== undefined;
    },
    cut(f: Fault = "refuse") {
      fault = f;
      destroyAll();
    },
    restore() {
      // Held connections were never forwarded: their clients must start again.
      if (fault === "blackhole") destroyAll();
      fault = undefined;
    },
    async close() {
      closed = true;
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function parseTarget(target: string): { hostname: string; port: number } {
  const m = /^(?:[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?)?(\[[^\]]+\]|[^:/?#]+):(\d+)/i.exec(target);
  if (m === null) throw new Error(`not HOST:PORT or a URL with a port: ${target}`);
  return { hostname: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

/** `url` with its host:port replaced by the proxy's (the user, password and path kept). */
export function throughProxy(url: string, proxy: Pick<TcpProxy, "host" | "port">): string {
  const u = new URL(url);
  u.hostname = proxy.host;
  u.port = String(proxy.port);
  return u.toString();
}
