// Two real node proxies (loopback mode), a real control plane and echo servers: traffic over
// HBONE with each workload's own identity, L4 policy and PeerAuthentication at the destination,
// live connections closed when policy flips, bad peers on 15008 refused with the right answer and
// metric while good traffic flows, and the data plane surviving a control-plane kill -9.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  joinNodeWithCli,
  startControlPlaneProcess,
  until,
  type ControlPlaneProcess,
} from "../support/control-plane.js";
import { exchange, socksConnect, startNodeProcess, type NodeProcess } from "../support/node-proxy.js";
import { runAmbit } from "../support/repo.js";
import { counter, freePort } from "../support/waypoint-mesh.js";

const run = promisify(execFile);

const CLIENT_IP = "127.0.1.1";
const ECHO_IP = "127.0.2.1";
const LEGACY_IP = "127.0.3.1";
const VIP = "10.96.0.50";
const CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client";
const ECHO_ID = "spiffe://cluster.local/ns/shop/sa/echo";

const MESH = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Namespace
metadata: { name: legacy }
---
apiVersion: v1
kind: Pod
metadata: { name: client-1, namespace: shop, labels: { app: client } }
spec: { nodeName: n1, serviceAccountName: client }
status: { podIP: ${CLIENT_IP} }
---
apiVersion: v1
kind: Pod
metadata: { name: client-2, namespace: shop, labels: { app: client2 } }
spec: { nodeName: n1, serviceAccountName: client2 }
status: { podIP: 127.0.1.2 }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-1, namespace: shop, labels: { app: echo } }
spec: { nodeName: n2, serviceAccountName: echo }
status: { podIP: ${ECHO_IP} }
---
apiVersion: v1
kind: Pod
metadata: { name: old-1, namespace: legacy, labels: { app: old } }
spec: { nodeName: n1 }
status: { podIP: ${LEGACY_IP} }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: shop }
spec:
  selector: { app: echo }
  clusterIP: ${VIP}
  ports:
    - { name: http, port: 80, targetPort: 8080 }
    - { name: tcp-echo, port: 9000, targetPort: 9000 }
`;

const DENY_CLIENT = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: shop }
spec:
  selector: { matchLabels: { app: echo } }
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/client"] } }] }]
`;
const ALLOW_OTHER = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-only, namespace: shop }
spec:
  selector: { matchLabels: { app: echo } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/other"] } }] }]
`;
const ALLOW_CLIENT = ALLOW_OTHER.replace("sa/other", "sa/client");
const STRICT = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: strict, namespace: shop }
spec: { mtls: { mode: STRICT } }
`;

describe("node proxy: HBONE, L4 policy, bad peers, control-plane loss", () => {
  const state = mkdtempSync(join(tmpdir(), "ambit-np-"));
  const work = mkdtempSync(join(tmpdir(), "ambit-np-work-"));
  let cp: ControlPlaneProcess;
  let grpcPort: number;
  let n1: NodeProcess;
  let n2: NodeProcess;
  const servers: (net.Server | http.Server)[] = [];
  const admin = (): string[] => ["--control-plane", cp.adminUrl, "--state-dir", state];

  async function apply(yaml: string, name: string): Promise<void> {
    const file = join(work, `${name}.yaml`);
    writeFileSync(file, yaml);
    const r = await runAmbit(["apply", "-f", file, ...admin()]);
    assert.equal(r.code, 0, r.stderr);
  }

  async function remove(yaml: string, name: string): Promise<void> {
    const file = join(work, `${name}.yaml`);
    writeFileSync(file, yaml);
    const r = await runAmbit(["delete", "-f", file, ...admin()]);
    assert.equal(r.code, 0, r.stderr);
  }

  /** Wait until node n2 holds exactly these authorization names. */
  async function n2Policies(pred: (names: string[]) => boolean): Promise<void> {
    const end = Date.now() + 15_000;
    for (;;) {
      const dump = await n2.admin<{ policies: { name: string; namespace: string }[] }>("/config_dump");
      const names = dump.policies.map((p) => `${p.namespace}/${p.name}`);
      if (pred(names)) return;
      if (Date.now() > end) throw new Error(`n2 policies stayed ${names.join(",")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const echoVia = (port: number) => socksConnect({ host: CLIENT_IP, port: 15001 }, { ip: VIP, port });

  before(async () => {
    mkdirSync(join(state, "config"), { recursive: true });
    writeFileSync(join(state, "config", "mesh.yaml"), MESH);
    grpcPort = await freePort();
    cp = await startControlPlaneProcess(state, ["--grpc-addr", `127.0.0.1:${grpcPort}`]);
    await joinNodeWithCli(cp, "n1", join(work, "n1"));
    await joinNodeWithCli(cp, "n2", join(work, "n2"));
    const web = http.createServer((req, res) => {
      res.end(JSON.stringify({ app: "echo", path: req.url, from: req.socket.remoteAddress }));
    });
    const tcp = net.createServer((s) => s.pipe(s));
    for (const [srv, port] of [
      [web, 8080],
      [tcp, 9000],
    ] as const) {
      await new Promise<void>((r) => srv.listen(port, ECHO_IP, r));
      servers.push(srv);
    }
    n1 = await startNodeProcess(cp, "n1", join(work, "n1"), "127.0.10.1");
    n2 = await startNodeProcess(cp, "n2", join(work, "n2"), "127.0.10.2", [
      "--handshake-timeout",
      "2s",
      "--drain",
      "3s",
    ]);
  });

  after(async () => {
    await Promise.all([n1?.stop(), n2?.stop()]);
    await cp?.stop("SIGKILL");
    for (const s of servers) s.close();
    rmSync(state, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  test("curl through the client's node proxy reaches the Service over HBONE; the destination logs the caller's SPIFFE ID", async () => {
    const { stdout } = await run("curl", [
      "-sS",
      "--max-time",
      "10",
      "--socks5",
      `${CLIENT_IP}:15001`,
      `http://${VIP}/hello`,
    ]);
    const body = JSON.parse(stdout) as { app: string; path: string; from: string };
    assert.equal(body.app, "echo");
    assert.equal(body.path, "/hello");
    await until(() =>
      n2
        .accessLog()
        .some(
          (l) =>
            l.event === "connection" &&
            (l.src as { identity?: string }).identity === CLIENT_ID &&
            (l.dst as { identity?: string }).identity === ECHO_ID &&
            l.decision === "ALLOW" &&
            l.direction === "inbound",
        ),
    );
    const m = await n2.metrics();
    assert.ok(
      counter(m, "istio_tcp_connections_opened_total", {
        reporter: "destination",
        source_principal: CLIENT_ID,
        destination_principal: ECHO_ID,
        connection_security_policy: "mutual_tls",
      }) >= 1,
      m,
    );
    assert.ok(counter(m, "istio_tcp_received_bytes_total", { reporter: "destination" }) > 0);
    const m1 = await n1.metrics();
    assert.ok(
      counter(m1, "istio_tcp_connections_opened_total", {
        reporter: "source",
        destination_service: "echo.shop.svc.cluster.local",
      }) >= 1,
    );
  });

  test("openssl s_client sees the workload's SPIFFE chain on 15008 and is refused without a client certificate", async () => {
    const creds = join(work, "n1");
    const withCert = await run(
      "openssl",
      [
        "s_client",
        "-connect",
        `${ECHO_IP}:15008`,
        "-alpn",
        "h2",
        "-tls1_3",
        "-showcerts",
        "-CAfile",
        join(creds, "root-cert.pem"),
        "-cert",
        join(creds, "cert-chain.pem"),
        "-key",
        join(creds, "key.pem"),
      ],
      { timeout: 10_000 },
    ).catch((e: { stdout: string }) => e);
    assert.match(withCert.stdout, /Verify return code: 0 \(ok\)/);
    const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(withCert.stdout)?.[0];
    assert.ok(leaf);
    assert.match(new X509Certificate(leaf).subjectAltName ?? "", new RegExp(`URI:${ECHO_ID}`));
    const before_ = counter(await n2.metrics(), "ambit_node_refused_total", {
      reason: "no_client_certificate",
    });
    await run("openssl", ["s_client", "-connect", `${ECHO_IP}:15008`, "-alpn", "h2", "-tls1_3"], {
      timeout: 10_000,
    }).catch(() => undefined);
    await until(
      async_(
        async () =>
          counter(await n2.metrics(), "ambit_node_refused_total", { reason: "no_client_certificate" }) >
          before_,
      ),
    );
  });

  test("DENY and ALLOW policies take effect on the next connection; flipping policy closes a live connection", async () => {
    const live = await echoVia(9000);
    assert.ok(live.ok, JSON.stringify(live));
    assert.equal(await exchange(live.socket, "ping"), "ping");
    const closed = new Promise<number>((r) => live.socket.once("close", () => r(Date.now())));
    await apply(DENY_CLIENT, "deny");
    const appliedAt = Date.now();
    const closedAt = await closed;
    assert.ok(closedAt - appliedAt < 3_000, `closed ${closedAt - appliedAt} ms after apply`);
    const denied = await echoVia(9000);
    assert.equal(denied.ok, false);
    assert.equal(denied.ok ? 0 : denied.reply, 2, "SOCKS reply 2: not allowed by ruleset");
    assert.match(
      n2.logs(),
      /closing open connection: no longer allowed: denied by DENY policy shop\/deny-client/,
    );
    await remove(DENY_CLIENT, "deny");
    await n2Policies((names) => !names.includes("shop/deny-client"));
    const again = await echoVia(9000);
    assert.ok(again.ok);
    assert.equal(await exchange(again.socket, "pong"), "pong");
    again.socket.destroy();
    await apply(ALLOW_OTHER, "allow");
    await n2Policies((names) => names.includes("shop/allow-only"));
    const notListed = await echoVia(9000);
    assert.equal(notListed.ok, false);
    await apply(ALLOW_CLIENT, "allow");
    const end = Date.now() + 10_000;
    let ok = await echoVia(9000);
    while (!ok.ok && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      ok = await echoVia(9000);
    }
    assert.ok(ok.ok);
    ok.socket.destroy();
    await remove(ALLOW_CLIENT, "allow");
    await n2Policies((names) => !names.includes("shop/allow-only"));
  });

  test("STRICT PeerAuthentication refuses plaintext on 15006", async () => {
    const plain = await socksConnect({ host: ECHO_IP, port: 15006 }, { ip: ECHO_IP, port: 9000 }, LEGACY_IP);
    assert.ok(plain.ok, "PERMISSIVE (the default) admits plaintext");
    assert.equal(await exchange(plain.socket, "plain"), "plain");
    plain.socket.destroy();
    await apply(STRICT, "strict");
    await n2Policies((names) =>
      names.some((n) => n.includes("converted_peer_authentication") || n.includes("strict")),
    );
    const refused = await socksConnect(
      { host: ECHO_IP, port: 15006 },
      { ip: ECHO_IP, port: 9000 },
      LEGACY_IP,
    );
    assert.equal(refused.ok, false);
    assert.equal(refused.ok ? 0 : refused.reply, 2);
    const viaMesh = await echoVia(9000);
    assert.ok(viaMesh.ok, "mTLS traffic still flows under STRICT");
    viaMesh.socket.destroy();
    await remove(STRICT, "strict");
  });

  test("bad peers on 15008 get the right refusal and metric while good traffic flows", async () => {
    const creds = join(work, "n1");
    const nodeKey = readFileSync(join(creds, "key.pem"), "utf8");
    const nodeCert = readFileSync(join(creds, "cert-chain.pem"), "utf8");
    const roots = readFileSync(join(creds, "root-cert.pem"), "utf8");
    const m0 = await n2.metrics();
    const base = (reason: string): number =>
      counter(m0, "ambit_node_refused_total", { listener: "hbone", reason });

    // A peer that stalls mid-handshake stays stalled while good traffic flows.
    const stalled = net.connect({ host: ECHO_IP, port: 15008 });
    await new Promise((r) => stalled.once("connect", r));
    stalled.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    // Garbage bytes.
    const garbage = net.connect({ host: ECHO_IP, port: 15008 });
    garbage.on("error", () => undefined);
    garbage.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // TLS without a client certificate.
    const anon = tls.connect({
      host: ECHO_IP,
      port: 15008,
      ALPNProtocols: ["h2"],
      rejectUnauthorized: false,
    });
    anon.on("error", () => undefined);
    // A certificate from another trust domain (its own CA).
    const other = join(work, "other");
    mkdirSync(other, { recursive: true });
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/O=evil",
      "-addext",
      "subjectAltName=URI:spiffe://evil.example/ns/shop/sa/client",
      "-keyout",
      join(other, "key.pem"),
      "-out",
      join(other, "cert.pem"),
    ]);
    const foreign = tls.connect({
      host: ECHO_IP,
      port: 15008,
      ALPNProtocols: ["h2"],
      rejectUnauthorized: false,
      key: readFileSync(join(other, "key.pem")),
      cert: readFileSync(join(other, "cert.pem")),
    });
    foreign.on("error", () => undefined);

    // Good traffic meanwhile.
    for (let i = 0; i < 5; i++) {
      const good = await echoVia(9000);
      assert.ok(good.ok);
      assert.equal(await exchange(good.socket, `good-${i}`), `good-${i}`);
      good.socket.destroy();
    }

    // HTTP/2 with a valid mesh certificate but the wrong requests.
    const session = http2.connect(`https://${ECHO_IP}:15008`, {
      key: nodeKey,
      cert: nodeCert,
      ca: roots,
      checkServerIdentity: () => undefined,
    });
    session.on("error", () => undefined);
    const status = (headers: http2.OutgoingHttpHeaders): Promise<number | string> =>
      new Promise((resolve) => {
        const s = session.request(headers, { endStream: false });
        s.on("response", (h) => resolve(Number(h[":status"])));
        s.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
        s.on("close", () => resolve(`closed ${s.rstCode}`));
      });
    assert.equal(await status({ ":method": "GET", ":path": "/" }), 400);
    assert.equal(await status({ ":method": "CONNECT", ":authority": "10.9.9.9:9000" }), 400);
    assert.equal(await status({ ":method": "CONNECT", ":authority": "not-an-address" }), 400);
    assert.equal(await status({ ":method": "CONNECT", ":authority": `${ECHO_IP}:9999` }), 503);
    const big = await status({
      ":method": "CONNECT",
      ":authority": `${ECHO_IP}:9000`,
      "x-big": "a".repeat(40_000),
    });
    assert.notEqual(big, 200, "oversized headers are refused");
    session.close();

    await until(
      async_(async () => {
        const m = await n2.metrics();
        const now = (reason: string): number =>
          counter(m, "ambit_node_refused_total", { listener: "hbone", reason });
        return (
          now("tls_handshake") >= base("tls_handshake") + 2 && // garbage + the stalled peer (after 2 s)
          now("no_client_certificate") > base("no_client_certificate") &&
          now("untrusted_certificate") > base("untrusted_certificate") &&
          now("bad_method") > base("bad_method") &&
          now("not_local") > base("not_local") &&
          now("bad_authority") > base("bad_authority") &&
          now("upstream_failed") > base("upstream_failed")
        );
      }),
      10_000,
    );
    stalled.destroy();
    const after_ = await echoVia(9000);
    assert.ok(after_.ok, "good traffic still flows");
    after_.socket.destroy();
  });

  test("revoking the caller's identity closes its open connection and refuses new ones", async () => {
    const viaClient2 = () => socksConnect({ host: "127.0.1.2", port: 15001 }, { ip: VIP, port: 9000 });
    const live = await viaClient2();
    assert.ok(live.ok);
    assert.equal(await exchange(live.socket, "before"), "before");
    const closed = new Promise<void>((r) => live.socket.once("close", () => r()));
    const rv = await runAmbit(["revoke", "--identity", `${CLIENT_ID}2`, "--reason", "drill", ...admin()]);
    assert.equal(rv.code, 0, rv.stderr);
    await closed;
    const refused = await viaClient2();
    assert.equal(refused.ok, false, "a new stream from the revoked identity is refused");
    assert.match(
      n2.logs(),
      /closing open connection: peer spiffe:\/\/cluster.local\/ns\/shop\/sa\/client2 revoked: drill/,
    );
    assert.ok(
      counter(await n2.metrics(), "ambit_node_connections_closed_by_policy_total", { cause: "revocation" }) >=
        1,
    );
  });

  test("the control plane killed mid-traffic: connections keep working; after it returns, changes flow again", async () => {
    const live = await echoVia(9000);
    assert.ok(live.ok);
    await cp.stop("SIGKILL");
    assert.equal(await exchange(live.socket, "still"), "still");
    const fresh = await echoVia(9000);
    assert.ok(fresh.ok, "new connections work on the last good config");
    assert.equal(await exchange(fresh.socket, "new"), "new");
    fresh.socket.destroy();
    cp = await startControlPlaneProcess(state, ["--grpc-addr", `127.0.0.1:${grpcPort}`]);
    const closed = new Promise<void>((r) => live.socket.once("close", () => r()));
    await apply(DENY_CLIENT, "deny2");
    await closed;
    const denied = await echoVia(9000);
    assert.equal(denied.ok, false);
    await remove(DENY_CLIENT, "deny2");
    await n2Policies((names) => !names.includes("shop/deny-client"));
  });

  test("graceful shutdown: SIGTERM stops accepting, lets open connections finish for the drain period, then closes", async () => {
    const live = await echoVia(9000);
    assert.ok(live.ok);
    const closed = new Promise<number>((r) => live.socket.once("close", () => r(Date.now())));
    const exited = new Promise<number | null>((r) => n2.child.once("exit", (code) => r(code)));
    const t0 = Date.now();
    n2.child.kill("SIGTERM");
    await until(
      async_(async () => (await fetch(`http://${n2.host}:15021/healthz/ready`)).status === 503),
      5_000,
    );
    assert.equal(
      await exchange(live.socket, "draining"),
      "draining",
      "open connections keep working while draining",
    );
    const refused = await echoVia(9000);
    assert.equal(refused.ok, false, "new connections are refused once draining");
    const closedAt = await closed;
    assert.ok(closedAt - t0 >= 2_500, `closed after ${closedAt - t0} ms (drain 3 s)`);
    assert.equal(await exited, 0);
  });
});

/** `until` takes a synchronous predicate; poll an async one by caching its last answer. */
function async_(pred: () => Promise<boolean>): () => boolean {
  let last = false;
  let running = false;
  return () => {
    if (!running) {
      running = true;
      pred().then(
        (v) => {
          last = v;
          running = false;
        },
        () => {
          running = false;
        },
      );
    }
    return last;
  };
}
