// The waypoint's protocol coverage end to end, with real clients through a real mesh (control
// plane, two node proxies in loopback mode, `ambit waypoint`, real backends): HTTP/1.1 chunked
// uploads with Expect: 100-continue, large bodies both ways, keep-alive reuse, HTTP/2 prior
// knowledge, Upgrade passthrough (101 then raw bytes, half-close, backpressure; non-101 relayed;
// DENY still enforced; h2c upgrades ignored), and gRPC of all four kinds from Debian's
// python3-grpcio to a grpc-js server, metadata and trailers intact.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type * as net from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { until } from "../support/control-plane.js";
import { socksConnect, socksForwarder, type NodeProcess } from "../support/node-proxy.js";
import { repoRoot } from "../support/repo.js";
import { counter, meshPrelude, WaypointMesh } from "../support/waypoint-mesh.js";

const run = promisify(execFile);

const CLIENT_IP = "127.0.41.1";
const ECHO_IP = "127.0.42.1";
const WAYPOINT_IP = "127.0.44.1";
const VIP = "10.96.41.50";
const WAYPOINT_VIP = "10.96.41.15";
const GRPC_PORT = 50051;
const SERVICE = "echo.proto.svc.cluster.local";

const MESH = `${meshPrelude({ namespace: "proto", clientIp: CLIENT_IP, waypointIp: WAYPOINT_IP, waypointVip: WAYPOINT_VIP })}---
apiVersion: v1
kind: Pod
metadata: { name: echo-1, namespace: proto, labels: { app: echo } }
spec: { nodeName: n2, serviceAccountName: echo }
status: { podIP: ${ECHO_IP} }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: proto, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: echo }
  clusterIP: ${VIP}
  ports:
    - { name: http, port: 80, targetPort: 8080 }
    - { name: grpc, port: ${GRPC_PORT}, targetPort: ${GRPC_PORT} }
`;

interface Echoed {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  sha256: string;
  socket: number;
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** `n` bytes of a fixed pattern, so both ends can check a body without keeping a copy around. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/** A raw HTTP/1.1 exchange on a SOCKS5 socket: the response head, then whatever follows it. */
function readHead(socket: net.Socket, ms = 10_000): Promise<{ status: number; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`no response head in ${ms} ms: ${buf.toString()}`)), ms);
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (err) return reject(err);
      const end = buf.indexOf("\r\n\r\n");
      const head = buf.subarray(0, end).toString("latin1");
      resolve({ status: Number(head.split(" ")[1]), head, rest: buf.subarray(end + 4) });
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.includes("\r\n\r\n")) {
        socket.pause();
        done(null);
      }
    };
    const onClose = (): void => done(new Error(`closed before a response head: ${buf.toString()}`));
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

/** Read exactly `n` bytes (after `already`) from a socket. */
function readBytes(socket: net.Socket, n: number, already: Buffer, ms = 20_000): Promise<Buffer> {
  if (already.length >= n) return Promise.resolve(already);
  return new Promise((resolve, reject) => {
    const parts = [already];
    let got = already.length;
    const timer = setTimeout(() => finish(new Error(`read ${got} of ${n} bytes in ${ms} ms`)), ms);
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    };
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= n) finish(null);
    };
    const onClose = (): void => finish(new Error(`closed after ${got} of ${n} bytes`));
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.resume();
  });
}

describe("waypoint protocols: HTTP/1.1, HTTP/2, Upgrade and gRPC end to end with real clients", () => {
  const mesh = new WaypointMesh({
    namespace: "proto",
    clientIp: CLIENT_IP,
    waypointIp: WAYPOINT_IP,
    adminHosts: { n1: "127.0.10.41", n2: "127.0.10.42", waypoint: "127.0.10.43" },
    yaml: MESH,
    tmpPrefix: "ambit-wpp",
    curlTimeoutS: 30,
    curlMaxBuffer: 64 * 1024 * 1024,
  });
  const { work } = mesh;
  let n1: NodeProcess;
  let n2: NodeProcess;
  let wp: NodeProcess;
  let grpcServer: grpc.Server | undefined;
  const servers: net.Server[] = [];
  const upgradeSockets = new Set<net.Socket>();
  const seen: Echoed[] = [];
  const upgrades: { path: string; headers: http.IncomingHttpHeaders }[] = [];
  const socketIds = new WeakMap<net.Socket, number>();
  let nextSocket = 1;

  function socketId(s: net.Socket): number {
    let id = socketIds.get(s);
    if (id === undefined) {
      id = nextSocket++;
      socketIds.set(s, id);
    }
    return id;
  }

  function httpBackend(): void {
    const srv = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/download") {
        // A chunked response (no content-length) written with backpressure.
        const total = Number(url.searchParams.get("bytes") ?? "0");
        const body = pattern(total);
        res.writeHead(200, { "content-type": "application/octet-stream", "x-sha256": sha256(body) });
        let off = 0;
        const pump = (): void => {
          while (off < total) {
            const end = Math.min(total, off + 64 * 1024);
            const ok = res.write(body.subarray(off, end));
            off = end;
            if (!ok) return void res.once("drain", pump);
          }
          res.end();
        };
        return pump();
      }
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      req.on("end", () => {
        const echoed: Echoed = {
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          bytes,
          sha256: hash.digest("hex"),
          socket: socketId(req.socket),
        };
        seen.push(echoed);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(echoed));
      });
    });
    // WebSocket-style upgrades: 101 and then raw echo; on the client's half-close, "bye" and end.
    srv.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      upgrades.push({ path: req.url ?? "", headers: req.headers });
      upgradeSockets.add(socket);
      socket.on("close", () => upgradeSockets.delete(socket));
      socket.on("error", () => undefined);
      if (req.url === "/ws-refused") {
        socket.end(
          "HTTP/1.1 426 Upgrade Required\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nnope!",
        );
        return;
      }
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-upgraded-by: echo\r\n\r\n",
      );
      if (head.length > 0) socket.write(head);
      socket.pipe(socket, { end: false });
      socket.on("end", () => socket.end("bye"));
    });
    servers.push(srv);
    srv.listen(8080, ECHO_IP);
  }

  async function grpcBackend(): Promise<void> {
    const def = protoLoader.loadSync(join(repoRoot(), "test", "fixtures", "protocols.proto"), {
      keepCase: false,
      longs: Number,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      ambit: { test: { protocols: { Echo: grpc.ServiceClientConstructor } } };
    };
    const server = new grpc.Server();
    type Msg = { text: string; count: number; seenAt?: number[] };
    const echoMeta = (md: grpc.Metadata): grpc.Metadata => {
      const out = new grpc.Metadata();
      out.set("x-echo-meta", String(md.get("x-client-meta")[0] ?? "missing"));
      const token = md.get("x-token-bin")[0];
      if (Buffer.isBuffer(token)) out.set("x-echo-token-bin", token);
      return out;
    };
    const trailer = (value: string): grpc.Metadata => {
      const md = new grpc.Metadata();
      md.set("x-trailer", value);
      md.set("x-trailer-bin", Buffer.from([1, 2, 3, 250]));
      return md;
    };
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    server.addService(pkg.ambit.test.protocols.Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        if (call.request.text === "early") {
          // No response headers first: grpc-js answers trailers-only.
          return cb({ code: grpc.status.NOT_FOUND, details: "no such key", metadata: trailer("early") });
        }
        call.sendMetadata(echoMeta(call.metadata));
        if (call.request.text === "fail") {
          return cb({
            code: grpc.status.FAILED_PRECONDITION,
            details: "precondition failed: ünïcode ✓ 100%",
            metadata: trailer("unary-failed"),
          });
        }
        cb(null, { text: `pong:${call.request.text}`, count: 1 }, trailer("unary-done"));
      },
      ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        call.sendMetadata(echoMeta(call.metadata));
        void (async () => {
          if (call.request.text === "big") {
            // As fast as flow control lets them go: write() says when to wait.
            const big = "x".repeat(256 * 1024);
            for (let i = 0; i < call.request.count; i++) {
              if (!call.write({ text: big, count: i })) await new Promise((r) => call.once("drain", r));
            }
            call.end();
            return;
          }
          for (let i = 0; i < call.request.count; i++) {
            if (i > 0) await sleep(200);
            call.write({ text: `${call.request.text}-${i}`, count: i });
          }
          if (call.request.text === "fail") {
            call.emit(
              "error",
              Object.assign(new Error("quota"), {
                code: grpc.status.RESOURCE_EXHAUSTED,
                details: "quota exhausted mid-stream",
                metadata: trailer("stream-failed"),
              }),
            );
          } else call.end(trailer("stream-done"));
        })();
      },
      ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        call.sendMetadata(echoMeta(call.metadata));
        const texts: string[] = [];
        const at: number[] = [];
        call.on("data", (m: Msg) => {
          texts.push(m.text);
          at.push(Date.now());
        });
        call.on("end", () => {
          const total = texts.reduce((n, t) => n + t.length, 0);
          // Big uploads are answered with their size, small ones with what came.
          const text = total > 64 * 1024 ? String(total) : texts.join(",");
          cb(null, { text, count: texts.length, seenAt: at }, trailer("client-done"));
        });
      },
      Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
        call.sendMetadata(echoMeta(call.metadata));
        call.on("data", (m: Msg) => call.write({ text: m.text.replace("ping", "pong"), count: 0 }));
        call.on("end", () => call.end(trailer("bidi-done")));
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`${ECHO_IP}:${GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    grpcServer = server;
  }

  before(async () => {
    await mesh.start(async () => {
      httpBackend();
      await grpcBackend();
    });
    ({ n1, n2, wp } = mesh);
  });

  after(async () => {
    await mesh.stop(() => {
      grpcServer?.forceShutdown();
      for (const s of upgradeSockets) s.destroy();
      for (const s of servers) s.close();
    });
  });

  test("HTTP/1.1 chunked upload of 3 MiB with Expect: 100-continue arrives intact, without curl's 1 s wait", async (t) => {
    const body = randomBytes(3 * 1024 * 1024);
    const file = join(work, "upload.bin");
    writeFileSync(file, body);
    const t0 = Date.now();
    const out = await mesh.curlRaw([
      "-H",
      "Transfer-Encoding: chunked",
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      `@${file}`,
      // A waypoint that never answers 100 would cost 20 s here, not curl's default 1 s.
      "--expect100-timeout",
      "20",
      "-w",
      "\n%{http_code} %{time_total}",
      `http://${VIP}/upload`,
    ]);
    const ms = Date.now() - t0;
    const lines = out.trimEnd().split("\n");
    const [code, total] = (lines.pop() ?? "").split(" ");
    assert.equal(code, "200", out.slice(0, 2000));
    const echoed = JSON.parse(lines.join("\n")) as Echoed;
    assert.equal(echoed.method, "POST");
    assert.equal(echoed.bytes, body.length);
    assert.equal(echoed.sha256, sha256(body));
    assert.equal(echoed.headers["transfer-encoding"], "chunked", "streamed on, not buffered into a length");
    // The waypoint answered the expectation itself (as Envoy does) and did not pass it on.
    assert.equal(echoed.headers["expect"], undefined);
    // The 100 came from the waypoint at once (without it curl would have waited the 20 s).
    assert.ok(Number(total) < 10, `upload took ${total} s in curl (${ms} ms wall)`);
    t.diagnostic(`3 MiB chunked upload with 100-continue: ${total} s in curl`);
  });

  test("a 100-continue upload that policy denies gets 403 without the body being sent upstream", async () => {
    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-private-upload, namespace: proto }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/private*"] } }] }]
`;
    await mesh.apply(policy, "no-private-upload");
    try {
      const file = join(work, "denied.bin");
      writeFileSync(file, randomBytes(2 * 1024 * 1024));
      const end = Date.now() + 15_000;
      let out = "";
      for (;;) {
        out = await mesh.curlRaw([
          "-H",
          "Expect: 100-continue",
          // However slow the machine, curl must not give up waiting and send the body anyway.
          "--expect100-timeout",
          "20",
          "--data-binary",
          `@${file}`,
          "-o",
          "/dev/null",
          "-w",
          "%{http_code} %{size_upload}",
          `http://${VIP}/private/upload`,
        ]);
        if (out.startsWith("403") || Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const [code, uploaded] = out.split(" ");
      assert.equal(code, "403", out);
      // The denial came before 100 Continue, so curl did not send the 2 MiB.
      assert.ok(Number(uploaded) < 1024 * 1024, `curl uploaded ${uploaded} bytes`);
      assert.ok(!seen.some((s) => s.path === "/private/upload"));
    } finally {
      await mesh.remove(policy, "no-private-upload");
    }
  });

  test("a 4 MiB chunked response streams back intact (HTTP/1.1 and HTTP/2 downstream)", async () => {
    const n = 4 * 1024 * 1024;
    const want = sha256(pattern(n));
    for (const extra of [[], ["--http2-prior-knowledge"]]) {
      const file = join(work, `download${extra.length}.bin`);
      const out = await mesh.curlRaw([
        ...extra,
        "-D",
        join(work, "download-headers.txt"),
        "-o",
        file,
        "-w",
        "%{http_code} %{size_download} %{http_version}",
        `http://${VIP}/download?bytes=${n}`,
      ]);
      const [code, size, version] = out.split(" ");
      assert.equal(code, "200", out);
      assert.equal(Number(size), n);
      assert.equal(version, extra.length > 0 ? "2" : "1.1");
      assert.equal(sha256(readFileSync(file)), want);
      if (extra.length === 0)
        assert.match(
          readFileSync(join(work, "download-headers.txt"), "utf8"),
          /^transfer-encoding: chunked/im,
        );
    }
  });

  test("keep-alive: two requests on one client connection use one tunnel and one upstream connection", async () => {
    const before = counter(await n1.metrics(), "istio_tcp_connections_opened_total", {
      destination_service: SERVICE,
    });
    const out = await mesh.curlRaw([
      "-w",
      "\n%{http_code} %{num_connects}\n",
      `http://${VIP}/ka-1`,
      `http://${VIP}/ka-2`,
    ]);
    const status = [...out.matchAll(/^(\d{3}) (\d+)$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(status, [
      ["200", "1"],
      ["200", "0"],
    ]);
    const a = seen.find((s) => s.path === "/ka-1");
    const b = seen.find((s) => s.path === "/ka-2");
    assert.ok(a && b);
    assert.equal(a.socket, b.socket, "the waypoint reused its upstream connection");
    const opened =
      counter(await n1.metrics(), "istio_tcp_connections_opened_total", { destination_service: SERVICE }) -
      before;
    assert.equal(opened, 1, "one tunnel from the client's node proxy for both requests");
  });

  test("HTTP/2 prior knowledge with a 1 MiB upload, and h2c Upgrade ignored (served as HTTP/1.1)", async () => {
    const body = randomBytes(1024 * 1024);
    const file = join(work, "h2.bin");
    writeFileSync(file, body);
    const out = await mesh.curlRaw([
      "--http2-prior-knowledge",
      "-H",
      "Expect: 100-continue",
      "--expect100-timeout",
      "20",
      "--data-binary",
      `@${file}`,
      "-w",
      "\n%{http_code} %{http_version} %{time_total}",
      `http://${VIP}/h2-upload`,
    ]);
    const lines = out.trimEnd().split("\n");
    const [code, version, total] = (lines.pop() ?? "").split(" ");
    assert.deepEqual([code, version], ["200", "2"]);
    assert.ok(Number(total) < 10, `HTTP/2 upload with 100-continue took ${total} s`);
    const echoed = JSON.parse(lines.join("\n")) as Echoed;
    assert.equal(echoed.sha256, sha256(body));
    assert.equal(echoed.headers["expect"], undefined);
    assert.ok(echoed.headers["x-forwarded-client-cert"]);

    // curl --http2 on a plain URL asks for "Upgrade: h2c"; like Envoy, the waypoint drops it.
    const h2c = await mesh.curlRaw(["--http2", "-w", "\n%{http_code} %{http_version}", `http://${VIP}/h2c`]);
    const h2cLines = h2c.trimEnd().split("\n");
    assert.equal(h2cLines.pop(), "200 1.1");
    const e2 = JSON.parse(h2cLines.join("\n")) as Echoed;
    assert.equal(e2.headers["upgrade"], undefined);
    assert.equal(e2.headers["http2-settings"], undefined);
    assert.ok(!upgrades.some((u) => u.path === "/h2c"));
  });

  async function upgradeRequest(
    path: string,
    type = "websocket",
  ): Promise<{ socket: net.Socket; status: number; head: string; rest: Buffer }> {
    const c = await socksConnect({ host: CLIENT_IP, port: 15001 }, { ip: VIP, port: 80 }, CLIENT_IP);
    assert.ok(c.ok, "SOCKS5 connect");
    c.socket.on("error", () => undefined);
    const got = readHead(c.socket);
    c.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: echo.proto\r\nConnection: Upgrade\r\nUpgrade: ${type}\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-client: ws\r\n\r\n`,
    );
    return { socket: c.socket, ...(await got) };
  }

  test("Upgrade passthrough: 101, raw bytes both ways with backpressure (8 MiB), half-close, telemetry", async (t) => {
    const { socket, status, head, rest } = await upgradeRequest("/ws");
    try {
      assert.equal(status, 101, `${head}\n${wp.logs().slice(-3000)}`);
      assert.match(head, /^upgrade: websocket\r?$/im);
      assert.match(head, /^connection: upgrade\r?$/im);
      assert.match(head, /^x-upgraded-by: echo\r?$/im);
      const up = upgrades.find((u) => u.path === "/ws");
      assert.ok(up, "the backend saw the upgrade");
      assert.equal(up.headers["upgrade"], "websocket");
      assert.match(String(up.headers["connection"]), /upgrade/i);
      assert.equal(up.headers["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
      assert.equal(up.headers["x-client"], "ws");
      assert.match(
        String(up.headers["x-forwarded-client-cert"]),
        /URI=spiffe:\/\/cluster\.local\/ns\/proto\/sa\/client/,
      );

      // A small round trip, then 8 MiB written as fast as the socket takes it while reading the echo.
      socket.write("hello");
      assert.equal((await readBytes(socket, 5, rest)).toString(), "hello");
      const big = randomBytes(8 * 1024 * 1024);
      const t0 = performance.now();
      const reading = readBytes(socket, big.length, Buffer.alloc(0), 60_000);
      socket.write(big);
      const echoed = await reading;
      t.diagnostic(
        `8 MiB echoed through the upgraded connection in ${(performance.now() - t0).toFixed(0)} ms`,
      );
      assert.equal(echoed.length, big.length);
      assert.ok(echoed.equals(big), "8 MiB came back intact");

      // Half-close: the client ends its side, the backend answers "bye" and ends; both ends see it.
      const tail = new Promise<string>((resolve) => {
        let t = "";
        socket.on("data", (d: Buffer) => (t += d.toString()));
        socket.on("end", () => resolve(t));
      });
      socket.resume();
      socket.end();
      assert.equal(await tail, "bye");
    } finally {
      socket.destroy();
    }
    await until(() => wp.accessLog().some((l) => l.event === "request" && l.path === "/ws"), 15_000);
    const line = wp.accessLog().find((l) => l.event === "request" && l.path === "/ws");
    assert.equal(line?.status, 101);
    assert.ok(Number(line?.bytes_received) >= 8 * 1024 * 1024 + 5, JSON.stringify(line));
    assert.ok(Number(line?.bytes_sent) >= 8 * 1024 * 1024 + 8, JSON.stringify(line));
    const m = await wp.metrics();
    assert.ok(
      counter(m, "istio_requests_total", { response_code: "101", destination_service: SERVICE }) >= 1,
      m,
    );
  });

  test("Upgrade: a non-101 answer is relayed as a response; a DENY policy still answers 403; other upgrade types are refused like Envoy", async () => {
    const refused = await upgradeRequest("/ws-refused");
    try {
      assert.equal(refused.status, 426, refused.head);
      assert.equal((await readBytes(refused.socket, 5, refused.rest)).toString(), "nope!");
    } finally {
      refused.socket.destroy();
    }

    const other = await upgradeRequest("/ws-other", "spdy/3.1");
    other.socket.destroy();
    assert.equal(other.status, 403, other.head);
    assert.ok(!upgrades.some((u) => u.path === "/ws-other"));

    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-ws, namespace: proto }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/ws-denied"] } }] }]
`;
    await mesh.apply(policy, "no-ws");
    try {
      const end = Date.now() + 15_000;
      let r = await upgradeRequest("/ws-denied");
      while (r.status !== 403 && Date.now() < end) {
        r.socket.destroy();
        await new Promise((res) => setTimeout(res, 200));
        r = await upgradeRequest("/ws-denied");
      }
      const body = r.status === 403 ? await readBytes(r.socket, 19, r.rest) : r.rest;
      r.socket.destroy();
      assert.equal(r.status, 403, r.head);
      assert.equal(body.toString(), "RBAC: access denied");
      await until(() =>
        wp
          .accessLog()
          .some((l) => l.path === "/ws-denied" && l.decision === "DENY" && l.policy === "proto/no-ws"),
      );
    } finally {
      await mesh.remove(policy, "no-ws");
    }
  });

  test("gRPC from python3-grpcio: unary, server/client/bidi streaming, metadata, trailers and a non-OK status", async (t) => {
    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-denied-method, namespace: proto }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/ambit.test.protocols.Echo/Denied"] } }] }]
`;
    await mesh.apply(policy, "no-denied-method");
    const fwd = await socksForwarder(
      { host: CLIENT_IP, port: 15001 },
      { ip: VIP, port: GRPC_PORT },
      CLIENT_IP,
    );
    let out: string;
    try {
      // Until the policy is in force: a gRPC-shaped POST answered by the waypoint with status 7.
      const end = Date.now() + 15_000;
      for (;;) {
        const head = await mesh.curlRaw([
          "--http2-prior-knowledge",
          "-H",
          "content-type: application/grpc",
          "-H",
          "te: trailers",
          "--data-binary",
          "",
          "-D",
          "-",
          "-o",
          "/dev/null",
          `http://${VIP}:${GRPC_PORT}/ambit.test.protocols.Echo/Denied`,
        ]);
        if (/^grpc-status: 7\r?$/m.test(head)) break;
        if (Date.now() > end) throw new Error(`DENY policy not in force: ${head}`);
        await new Promise((res) => setTimeout(res, 200));
      }
      ({ stdout: out } = await run(
        "/usr/bin/python3",
        [
          join(repoRoot(), "test", "support", "grpc_protocols_client.py"),
          join(repoRoot(), "test", "fixtures", "protocols.proto"),
          `127.0.0.1:${fwd.port}`,
        ],
        { timeout: 90_000, encoding: "utf8" },
      ));
    } catch (err) {
      throw new Error(`python gRPC client failed: ${String(err)}\n${wp.logs().slice(-4000)}`, {
        cause: err,
      });
    } finally {
      fwd.close();
      await mesh.remove(policy, "no-denied-method");
    }
    type Call = {
      text?: string;
      count?: number;
      seen_at?: number[];
      messages?: (string | { text: string; at: number })[];
      initial?: Record<string, string>;
      trailing?: Record<string, string>;
      status: { code: number; name?: string; details?: string };
    };
    const r = JSON.parse(out.trim().split("\n").pop() ?? "{}") as Record<string, Call>;
    const token = "\x00\x01\xfe\xff";
    const trailerBin = "\x01\x02\x03\xfa";

    const unary = r.unary;
    assert.ok(unary);
    assert.equal(unary.status.code, 0);
    assert.equal(unary.text, "pong:ping");
    assert.equal(unary.initial?.["x-echo-meta"], "hello-from-python");
    assert.equal(unary.initial?.["x-echo-token-bin"], token);
    assert.equal(unary.trailing?.["x-trailer"], "unary-done");
    assert.equal(unary.trailing?.["x-trailer-bin"], trailerBin);

    const failed = r.unary_error;
    assert.ok(failed);
    assert.equal(failed.status.code, 9);
    assert.equal(failed.status.details, "precondition failed: ünïcode ✓ 100%");
    assert.equal(failed.trailing?.["x-trailer"], "unary-failed");

    const early = r.unary_early;
    assert.ok(early);
    assert.equal(early.status.code, 5);
    assert.equal(early.status.details, "no such key");
    assert.equal(early.trailing?.["x-trailer"], "early");

    assert.equal(r.denied?.status.code, 7, JSON.stringify(r.denied));
    assert.equal(r.denied?.status.details, "RBAC: access denied");

    const ss = r.server_stream;
    assert.ok(ss);
    assert.equal(ss.status.code, 0);
    const msgs = ss.messages as { text: string; at: number }[];
    assert.deepEqual(
      msgs.map((m) => m.text),
      ["tick-0", "tick-1", "tick-2", "tick-3", "tick-4"],
    );
    // Sent 200 ms apart: they must arrive spread out, not all at once at the end.
    const spread = (msgs[4]?.at ?? 0) - (msgs[0]?.at ?? 0);
    assert.ok(spread >= 300, `server-stream messages arrived within ${spread} ms`);
    assert.equal(ss.initial?.["x-echo-meta"], "hello-from-python");
    assert.equal(ss.trailing?.["x-trailer"], "stream-done");

    const sse = r.server_stream_error;
    assert.ok(sse);
    assert.deepEqual(sse.messages, ["fail-0", "fail-1"]);
    assert.equal(sse.status.code, 8);
    assert.equal(sse.status.details, "quota exhausted mid-stream");
    assert.equal(sse.trailing?.["x-trailer"], "stream-failed");

    const cs = r.client_stream;
    assert.ok(cs);
    assert.equal(cs.status.code, 0);
    assert.equal(cs.text, "part0,part1,part2,part3,part4");
    assert.equal(cs.count, 5);
    const at = cs.seen_at ?? [];
    assert.equal(at.length, 5);
    const csSpread = (at[4] ?? 0) - (at[0] ?? 0);
    assert.ok(csSpread >= 300, `client-stream messages reached the server within ${csSpread} ms`);
    assert.equal(cs.trailing?.["x-trailer"], "client-done");
    assert.equal(cs.initial?.["x-echo-token-bin"], token);

    type Big = { messages: number; bytes: number; seconds: number };
    const big = r.big as unknown as { down: Big; up: Big };
    assert.deepEqual(
      [big.down.messages, big.down.bytes, big.up.messages, big.up.bytes],
      [32, 32 * 256 * 1024, 32, 32 * 256 * 1024],
    );
    t.diagnostic(
      `gRPC 8 MiB in 256 KiB messages: server stream ${big.down.seconds.toFixed(2)} s, client stream ${big.up.seconds.toFixed(2)} s`,
    );

    const bidi = r.bidi;
    assert.ok(bidi);
    assert.equal(bidi.status.code, 0);
    assert.deepEqual(bidi.messages, ["pong0", "pong1", "pong2", "pong3", "pong4"]);
    assert.equal(bidi.initial?.["x-echo-meta"], "hello-from-python");
    assert.equal(bidi.trailing?.["x-trailer"], "bidi-done");

    // Metrics and the access log carry the gRPC status of each call.
    await until(
      () =>
        wp.accessLog().filter((l) => l.event === "request" && String(l.path).startsWith("/ambit.test"))
          .length >= 10,
      15_000,
    );
    const m = await wp.metrics();
    const grpcCount = (status: string): number =>
      counter(m, "istio_requests_total", {
        destination_service: SERVICE,
        request_protocol: "grpc",
        grpc_response_status: status,
      });
    assert.equal(grpcCount("0"), 6, m);
    assert.equal(grpcCount("9"), 1, m);
    assert.equal(grpcCount("8"), 1, m);
    assert.equal(grpcCount("5"), 1, m);
    assert.ok(grpcCount("7") >= 2, m); // the python call, and the probe that saw the policy
    const bidiLine = wp.accessLog().find((l) => l.path === "/ambit.test.protocols.Echo/Bidi");
    assert.equal(bidiLine?.grpc_status, "0");
    assert.equal(bidiLine?.status, 200);
  });

  test("no request hit the waypoint's internal-error path, and every proxy is still running", () => {
    assert.doesNotMatch(wp.logs(), /request pipeline failed/);
    for (const p of [n1, n2, wp])
      assert.equal(p.child.exitCode, null, `${p.name} exited:\n${p.logs().slice(-3000)}`);
  });
});
