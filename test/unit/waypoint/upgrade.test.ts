// Upgrade passthrough in process, on real loopback sockets: a client, a tiny proxy that hands its
// detached upgrade sockets to forwardUpgrade (as the waypoint's HTTP/1.1 server does), and a
// backend. 101 then raw bytes with half-close, a non-101 answer relayed, the idle timeout, a
// connect failure and a backend that never answers.
import assert from "node:assert/strict";
import * as http from "node:http";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import type { MeshWorkload } from "../../../src/node/proxy/mesh.js";
import { DEFAULT_RETRY, type ForwardPlan } from "../../../src/waypoint/plan.js";
import { forwardUpgrade, type UpgradeOutcome } from "../../../src/waypoint/upgrade.js";
import type { Endpoint } from "../../../src/waypoint/upstream.js";

const plan: ForwardPlan = {
  route: null,
  backend: {
    service: null,
    port: 80,
    protocol: "http",
    weight: 1,
    responseHeaders: { set: [{ name: "x-route", value: "set" }], add: [], remove: ["x-secret"] },
  },
  timeoutMs: null,
  retry: DEFAULT_RETRY,
  mirrors: [],
  requestHeaders: undefined,
  responseHeaders: undefined,
  authority: "echo.test",
  path: "/ws",
};

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)),
  );
}

describe("forwardUpgrade", () => {
  const backend = http.createServer((_req, res) => res.end("plain"));
  let backendPort = 0;
  const sockets = new Set<net.Socket>();
  const seen: http.IncomingHttpHeaders[] = [];

  before(async () => {
    backend.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
      sockets.add(socket);
      seen.push(req.headers);
      socket.on("error", () => undefined);
      if (req.url === "/refuse") {
        return void socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nx-secret: 1\r\n\r\nno");
      }
      if (req.url === "/silent") return; // never answers
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-secret: 1\r\n\r\n",
      );
      socket.pipe(socket, { end: false });
      socket.on("end", () => socket.end("bye"));
    });
    backendPort = await listen(backend);
  });

  after(() => {
    for (const s of sockets) s.destroy();
    backend.close();
  });

  /** A proxy in front of the backend; returns the client's view and the outcome. */
  async function through(
    path: string,
    opts: {
      idleMs?: number;
      timeoutMs?: number | null;
      connect?: () => Promise<net.Socket>;
      /** Bytes sent right behind the request head, in the same write. */
      early?: string;
    },
    client: (s: net.Socket) => Promise<string>,
  ): Promise<{ seen: string; outcome: UpgradeOutcome }> {
    let outcome!: Promise<UpgradeOutcome>;
    const proxy = http.createServer();
    proxy.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      socket.pause();
      const res = new http.ServerResponse(req);
      res.shouldKeepAlive = false;
      res.assignSocket(socket);
      res.on("finish", () => socket.end());
      const connect =
        opts.connect ??
        (() =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect(backendPort, "127.0.0.1", () => resolve(s));
            s.once("error", reject);
          }));
      outcome = forwardUpgrade(
        { connect },
        { ip: "127.0.0.1", port: backendPort, workload: {} as MeshWorkload } satisfies Endpoint,
        plan,
        {
          method: "GET",
          path: req.url ?? "/",
          authority: "echo.test",
          headers: new Map([["x-client", ["1"]]]),
          upgrade: "websocket",
        },
        { socket, head, res },
        { timeoutMs: opts.timeoutMs ?? null, idleMs: opts.idleMs ?? 10_000 },
      );
      // As the waypoint does: a failed attempt becomes its own answer on the client connection.
      void outcome.then((o) => {
        if (!o.ok) res.writeHead(o.kind === "timeout" ? 504 : 503).end(o.flag);
      });
    });
    const port = await listen(proxy);
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => undefined);
    s.write(
      `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n${opts.early ?? ""}`,
    );
    try {
      const text = await client(s);
      return { seen: text, outcome: await outcome };
    } finally {
      s.destroy();
      proxy.close();
    }
  }

  /** Everything the client receives until the proxy ends the connection. */
  const readAll =
    (then?: (s: net.Socket, got: () => string) => void) =>
    (s: net.Socket): Promise<string> =>
      new Promise((resolve) => {
        let text = "";
        s.on("data", (d: Buffer) => (text += d.toString("latin1")));
        s.on("end", () => resolve(text));
        s.on("close", () => resolve(text));
        then?.(s, () => text);
      });

  test("101: route response headers applied, raw echo, half-close passed on both ways", async () => {
    const { seen: text, outcome } = await through(
      "/ws",
      {},
      readAll((s, got) => {
        const poll = setInterval(() => {
          if (got().includes("\r\n\r\n")) {
            clearInterval(poll);
            s.write("hello");
            setTimeout(() => s.end(), 50);
          }
        }, 5);
      }),
    );
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(text, /\r\nx-route: set\r\n/);
    assert.doesNotMatch(text, /x-secret/);
    assert.ok(text.endsWith("\r\n\r\nhellobye"), JSON.stringify(text));
    assert.equal(seen.at(-1)?.["upgrade"], "websocket");
    assert.equal(seen.at(-1)?.["x-client"], "1");
    assert.ok(outcome.ok);
    assert.equal(outcome.status, 101);
    assert.equal(outcome.requestBytes, 5);
    assert.ok(outcome.responseBytes >= 8);
    assert.deepEqual(outcome.flags, []);
  });

  test("bytes the client sent behind the request head reach the endpoint after the 101", async () => {
    const { seen: text, outcome } = await through(
      "/ws",
      { early: "early!" },
      readAll((s, got) => {
        const poll = setInterval(() => {
          if (got().endsWith("early!")) {
            clearInterval(poll);
            s.end();
          }
        }, 5);
      }),
    );
    assert.ok(text.endsWith("\r\n\r\nearly!bye"), JSON.stringify(text));
    assert.ok(outcome.ok);
    assert.equal(outcome.requestBytes, 6);
  });

  test("a non-101 answer is relayed as a response and the connection closes", async () => {
    const { seen: text, outcome } = await through("/refuse", {}, readAll());
    assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.doesNotMatch(text, /x-secret/);
    assert.ok(text.endsWith("\r\n\r\nno"));
    assert.ok(outcome.ok);
    assert.equal(outcome.status, 403);
  });

  test("an upgraded connection idle for idleMs is closed both ways (SI)", async () => {
    const t0 = Date.now();
    const { outcome } = await through("/ws", { idleMs: 300 }, readAll());
    const ms = Date.now() - t0;
    assert.ok(outcome.ok);
    assert.deepEqual(outcome.flags, ["SI"]);
    assert.ok(ms >= 250 && ms < 5_000, `closed after ${ms} ms`);
  });

  test("connect failure and no answer in time become UF and UT", async () => {
    const refused = await through(
      "/ws",
      { connect: () => Promise.reject(new Error("HBONE refused")) },
      readAll(),
    );
    assert.match(refused.seen, /^HTTP\/1\.1 503 /);
    assert.deepEqual(
      { ok: refused.outcome.ok, flag: !refused.outcome.ok && refused.outcome.flag },
      { ok: false, flag: "UF" },
    );
    const silent = await through("/silent", { timeoutMs: 200 }, readAll());
    assert.match(silent.seen, /^HTTP\/1\.1 504 /);
    assert.equal(silent.outcome.ok, false);
    assert.equal(!silent.outcome.ok && silent.outcome.kind, "timeout");
  });
});
