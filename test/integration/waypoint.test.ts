// A real waypoint between two real node proxies (loopback mode), with a real control plane and
// real backends: Services labelled istio.io/use-waypoint are steered to it over HBONE, it applies
// L7 policy and routes (HTTPRoute, VirtualService), forwards with its own identity and tells the
// application who called in x-forwarded-client-cert. Clients are curl (HTTP/1.1 and --http2),
// h2load and a Python gRPC client through the client's node proxy (SOCKS5 in loopback mode).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as http from "node:http";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { until } from "../support/control-plane.js";
import { socksConnect, socksForwarder, type NodeProcess } from "../support/node-proxy.js";
import { counter, meshPrelude, WaypointMesh } from "../support/waypoint-mesh.js";

const run = promisify(execFile);

const CLIENT_IP = "127.0.1.1";
const ECHO_IP = "127.0.2.1";
const ECHO2_IP = "127.0.2.2";
const FLAKY_IP = "127.0.2.3";
const WAYPOINT_IP = "127.0.4.1";
const VIP = "10.96.0.50";
const VIP2 = "10.96.0.51";
const FLAKY_VIP = "10.96.0.52";
const CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client";
const WAYPOINT_ID = "spiffe://cluster.local/ns/shop/sa/waypoint";

const MESH = `${meshPrelude({ namespace: "shop", clientIp: CLIENT_IP, waypointIp: WAYPOINT_IP, waypointVip: "10.96.0.15" })}---
apiVersion: v1
kind: Pod
metadata: { name: echo-1, namespace: shop, labels: { app: echo } }
spec: { nodeName: n2, serviceAccountName: echo }
status: { podIP: ${ECHO_IP} }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-v2-1, namespace: shop, labels: { app: echo-v2 } }
spec: { nodeName: n2, serviceAccountName: echo }
status: { podIP: ${ECHO2_IP} }
---
apiVersion: v1
kind: Pod
metadata: { name: flaky-1, namespace: shop, labels: { app: flaky } }
spec: { nodeName: n2, serviceAccountName: flaky }
status: { podIP: ${FLAKY_IP} }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: shop, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: echo }
  clusterIP: ${VIP}
  ports:
    - { name: http, port: 80, targetPort: 8080 }
    - { name: grpc, port: 50051, targetPort: 50051 }
    - { name: tcp-echo, port: 9000, targetPort: 9000 }
---
apiVersion: v1
kind: Service
metadata: { name: echo-v2, namespace: shop, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: echo-v2 }
  clusterIP: ${VIP2}
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: flaky, namespace: shop, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: flaky }
  clusterIP: ${FLAKY_VIP}
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;

interface Echoed {
  app: string;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

describe("waypoint: steering, L7 policy, routing and identity end to end", () => {
  const mesh = new WaypointMesh({
    namespace: "shop",
    clientIp: CLIENT_IP,
    waypointIp: WAYPOINT_IP,
    adminHosts: { n1: "127.0.10.1", n2: "127.0.10.2", waypoint: "127.0.10.3" },
    yaml: MESH,
    tmpPrefix: "ambit-wp",
    curlTimeoutS: 15,
    curlMaxBuffer: 16 * 1024 * 1024,
    eventuallyMs: 15_000,
    eventuallyIntervalMs: 100,
  });
  let n2: NodeProcess;
  let wp: NodeProcess;
  const servers: net.Server[] = [];
  const hits = { echo: 0, v2: 0, flaky: 0 };

  const seen: Record<string, Echoed[]> = {};

  function echoServer(app: string, ip: string, onRequest?: (req: http.IncomingMessage) => number): void {
    const srv = http.createServer((req, res) => {
      if (req.url?.startsWith("/reset")) return void req.socket.destroy();
      const status = onRequest?.(req) ?? 200;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const echoed = { app, method: req.method ?? "", path: req.url ?? "", headers: req.headers };
        (seen[app] ??= []).push(echoed);
        const reply = (): void => {
          res.writeHead(status, { "content-type": "application/json", "x-app": app });
          res.end(JSON.stringify({ ...echoed, body: Buffer.concat(chunks).toString("utf8") }));
        };
        if (req.url?.startsWith("/slow")) setTimeout(reply, 3_000);
        else reply();
      });
    });
    servers.push(srv);
    srv.listen(8080, ip);
  }

  before(async () => {
    await mesh.start(async () => {
      echoServer("echo", ECHO_IP, () => (hits.echo++, 200));
      echoServer("echo-v2", ECHO2_IP, () => (hits.v2++, 200));
      // Fails every other request with 503.
      echoServer("flaky", FLAKY_IP, () => (hits.flaky++ % 2 === 0 ? 503 : 200));
      const tcp = net.createServer((s) => s.pipe(s));
      servers.push(tcp);
      tcp.listen(9000, ECHO_IP);
    });
    ({ n2, wp } = mesh);
  });

  after(async () => {
    await mesh.stop(() => {
      for (const s of servers) s.close();
    });
  });

  test("a Service labelled istio.io/use-waypoint goes through the waypoint; the app gets XFCC, the destination sees the waypoint's identity", async () => {
    const r = await mesh.curlJson<Echoed>(`http://${VIP}/hello?x=1`, [
      "-H",
      "x-forwarded-client-cert: By=spoofed",
    ]);
    assert.equal(r.app, "echo");
    assert.equal(r.path, "/hello?x=1");
    const xfcc = String(r.headers["x-forwarded-client-cert"]);
    assert.match(xfcc, new RegExp(`By=${WAYPOINT_ID};Hash=[0-9a-f]{64};URI=${CLIENT_ID}`));
    assert.doesNotMatch(xfcc, /spoofed/);
    assert.match(String(r.headers["traceparent"]), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    assert.ok(r.headers["x-request-id"]);
    await until(() =>
      n2
        .accessLog()
        .some(
          (l) =>
            l.event === "connection" &&
            l.direction === "inbound" &&
            (l.src as { identity?: string }).identity === WAYPOINT_ID,
        ),
    );
    await until(() =>
      wp
        .accessLog()
        .some((l) => l.event === "request" && l.path === "/hello?x=1" && String(l.status) === "200"),
    );
    const m = await wp.metrics();
    assert.ok(
      counter(m, "istio_requests_total", {
        reporter: "waypoint",
        response_code: "200",
        source_principal: CLIENT_ID,
        destination_service: "echo.shop.svc.cluster.local",
      }) >= 1,
      m,
    );
  });

  test("HTTP/2 (curl --http2-prior-knowledge) and h2load through the waypoint", async () => {
    const r = await mesh.curlJson<Echoed>(`http://${VIP}/h2`, ["--http2-prior-knowledge"]);
    assert.equal(r.path, "/h2");
    const fwd = await socksForwarder({ host: CLIENT_IP, port: 15001 }, { ip: VIP, port: 80 }, CLIENT_IP);
    try {
      const { stdout } = await run(
        "h2load",
        ["-n", "400", "-c", "4", "-m", "10", `http://127.0.0.1:${fwd.port}/load`],
        {
          timeout: 60_000,
        },
      );
      assert.match(stdout, /400 succeeded, 0 failed, 0 errored/, stdout);
      assert.match(stdout, /status codes: 400 2xx/, stdout);
    } finally {
      fwd.close();
    }
  });

  const ROUTES = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: echo-routes, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /v2 } }, { headers: [{ name: x-version, value: v2 }] }]
      backendRefs: [{ name: echo-v2, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /split } }]
      backendRefs: [{ name: echo, port: 80, weight: 90 }, { name: echo-v2, port: 80, weight: 10 }]
    - matches: [{ path: { type: PathPrefix, value: /headers } }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-set, value: "yes" }]
            add: [{ name: x-added, value: one }]
            remove: [x-remove-me]
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-resp, value: set }], remove: [x-app] }
      backendRefs: [{ name: echo, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /old } }]
      filters:
        - type: RequestRedirect
          requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /new }, statusCode: 301 }
    - matches: [{ path: { type: PathPrefix, value: /api } }]
      filters:
        - type: URLRewrite
          urlRewrite: { hostname: api.internal, path: { type: ReplacePrefixMatch, replacePrefixMatch: /v1/api } }
      backendRefs: [{ name: echo, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /mirror } }]
      filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: echo-v2, port: 80 } } }]
      backendRefs: [{ name: echo, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /slow } }]
      timeouts: { request: 500ms }
      backendRefs: [{ name: echo, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: / } }]
      backendRefs: [{ name: echo, port: 80 }]
`;

  test("HTTPRoute: path and header matches, header modifiers, redirect, rewrite, mirror, timeout", async () => {
    await mesh.apply(ROUTES, "routes");
    await mesh.eventually(
      async () => (await mesh.curlJson<Echoed>(`http://${VIP}/v2/x`)).app === "echo-v2",
      "routes pushed",
    );
    assert.equal((await mesh.curlJson<Echoed>(`http://${VIP}/any`, ["-H", "x-version: v2"])).app, "echo-v2");
    assert.equal((await mesh.curlJson<Echoed>(`http://${VIP}/any`, ["-H", "x-version: v3"])).app, "echo");

    const h = await mesh.curl(`http://${VIP}/headers`, ["-H", "x-remove-me: 1", "-H", "x-added: zero"]);
    assert.equal(h.status, 200);
    const echoed = JSON.parse(h.body) as Echoed;
    assert.equal(echoed.headers["x-set"], "yes");
    assert.equal(echoed.headers["x-added"], "zero, one");
    assert.equal(echoed.headers["x-remove-me"], undefined);
    assert.match(h.headers, /^x-resp: set$/im);
    assert.doesNotMatch(h.headers, /^x-app:/im);

    const redirect = await mesh.curl(`http://${VIP}/old/page?q=1`);
    assert.equal(redirect.status, 301);
    assert.match(
      redirect.headers,
      new RegExp(`^location: http://${VIP.replace(/\./g, "\\.")}/new/page\\?q=1\r?$`, "im"),
    );

    const rewritten = await mesh.curlJson<Echoed>(`http://${VIP}/api/items?id=7`);
    assert.equal(rewritten.path, "/v1/api/items?id=7");
    assert.equal(rewritten.headers["host"], "api.internal");

    const before = (seen["echo-v2"] ?? []).length;
    assert.equal((await mesh.curlJson<Echoed>(`http://${VIP}/mirror/me`)).app, "echo");
    await until(() => (seen["echo-v2"] ?? []).slice(before).some((r) => r.path === "/mirror/me"));
    const copy = (seen["echo-v2"] ?? []).slice(before).find((r) => r.path === "/mirror/me");
    assert.equal(copy?.headers["host"], `${VIP}-shadow`);

    const t0 = Date.now();
    const slow = await mesh.curl(`http://${VIP}/slow`);
    assert.equal(slow.status, 504);
    assert.equal(slow.body, "upstream request timeout");
    assert.ok(Date.now() - t0 < 2_500, `timeout fired after ${Date.now() - t0} ms`);
    await until(() => wp.accessLog().some((l) => l.path === "/slow" && String(l.flags).includes("UT")));
  });

  test("a 90/10 weighted split stays within ±5% over 2,000 requests (h2load)", async () => {
    await mesh.apply(ROUTES, "routes");
    await mesh.eventually(
      async () => (await mesh.curlJson<Echoed>(`http://${VIP}/v2/x`)).app === "echo-v2",
      "routes pushed",
    );
    const fwd = await socksForwarder({ host: CLIENT_IP, port: 15001 }, { ip: VIP, port: 80 }, CLIENT_IP);
    const v1 = (seen["echo"] ?? []).length;
    const v2 = (seen["echo-v2"] ?? []).length;
    try {
      const { stdout } = await run(
        "h2load",
        ["-n", "2000", "-c", "4", "-m", "16", `http://127.0.0.1:${fwd.port}/split`],
        {
          timeout: 120_000,
        },
      );
      assert.match(stdout, /2000 succeeded/, stdout);
    } finally {
      fwd.close();
    }
    const a = (seen["echo"] ?? []).slice(v1).filter((r) => r.path === "/split").length;
    const b = (seen["echo-v2"] ?? []).slice(v2).filter((r) => r.path === "/split").length;
    assert.equal(a + b, 2000);
    const share = b / 2000;
    assert.ok(share > 0.05 && share < 0.15, `echo-v2 got ${(share * 100).toFixed(1)}%`);
  });

  test("VirtualService retries turn a backend failing every other request into successes", async () => {
    // Without a retry policy on 5xx (Istio's default retries no status codes) half fail.
    let failed = 0;
    for (let i = 0; i < 10; i++) if ((await mesh.curl(`http://${FLAKY_VIP}/try`)).status === 503) failed++;
    assert.ok(failed >= 4 && failed <= 6, `${failed} of 10 failed`);
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: flaky, namespace: shop }
spec:
  hosts: [flaky.shop.svc.cluster.local]
  http:
    - retries: { attempts: 2, perTryTimeout: 2s, retryOn: 5xx }
      route: [{ destination: { host: flaky.shop.svc.cluster.local } }]
`;
    await mesh.apply(vs, "flaky-vs");
    try {
      await mesh.eventually(async () => {
        for (let i = 0; i < 4; i++)
          if ((await mesh.curl(`http://${FLAKY_VIP}/try`)).status !== 200) return false;
        return true;
      }, "retry policy pushed");
      for (let i = 0; i < 20; i++) assert.equal((await mesh.curl(`http://${FLAKY_VIP}/try`)).status, 200);
      const m = await wp.metrics();
      assert.ok(
        counter(m, "istio_requests_total", {
          destination_service: "flaky.shop.svc.cluster.local",
          response_code: "200",
        }) >= 20,
      );
    } finally {
      await mesh.remove(vs, "flaky-vs");
    }
  });

  test("VirtualService fault injection: aborts and delays at the configured rate", async () => {
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo-v2-faults, namespace: shop }
spec:
  hosts: [echo-v2]
  http:
    - fault:
        abort: { httpStatus: 418, percentage: { value: 30 } }
        delay: { fixedDelay: 100ms, percentage: { value: 50 } }
      route: [{ destination: { host: echo-v2 } }]
`;
    await mesh.apply(vs, "faults");
    try {
      await mesh.eventually(async () => {
        for (let i = 0; i < 20; i++) if ((await mesh.curl(`http://${VIP2}/f`)).status === 418) return true;
        return false;
      }, "fault policy pushed");
      const mark = wp.accessLog().length;
      const fwd = await socksForwarder({ host: CLIENT_IP, port: 15001 }, { ip: VIP2, port: 80 }, CLIENT_IP);
      let stdout: string;
      try {
        ({ stdout } = await run(
          "h2load",
          ["-n", "200", "-c", "4", "-m", "4", `http://127.0.0.1:${fwd.port}/fault`],
          {
            timeout: 60_000,
          },
        ));
      } finally {
        fwd.close();
      }
      const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
      assert.ok(codes, stdout);
      const aborted = Number(codes[3]);
      assert.equal(Number(codes[1]) + aborted, 200, stdout);
      assert.ok(aborted >= 40 && aborted <= 80, `${aborted} of 200 aborted (30% configured)`);
      await until(
        () =>
          wp
            .accessLog()
            .slice(mark)
            .filter((l) => l.path === "/fault").length === 200,
      );
      const lines = wp
        .accessLog()
        .slice(mark)
        .filter((l) => l.path === "/fault");
      const delayed = lines.filter((l) => String(l.flags).includes("DI"));
      assert.ok(
        delayed.length >= 70 && delayed.length <= 130,
        `${delayed.length} of 200 delayed (50% configured)`,
      );
      for (const l of delayed)
        assert.ok(Number(l.duration_ms) >= 95, `delayed request took ${String(l.duration_ms)} ms`);
    } finally {
      await mesh.remove(vs, "faults");
    }
  });

  test("AuthorizationPolicy at L7 (targetRefs Service): DENY by path, the rest allowed; AUDIT logged", async () => {
    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`;
    await mesh.apply(policy, "no-admin");
    try {
      await mesh.eventually(
        async () => (await mesh.curl(`http://${VIP}/admin/x`)).status === 403,
        "policy pushed",
      );
      const denied = await mesh.curl(`http://${VIP}/admin/users`);
      assert.equal(denied.status, 403);
      assert.equal(denied.body, "RBAC: access denied");
      assert.equal((await mesh.curl(`http://${VIP}/public`)).status, 200);
      await until(() =>
        wp
          .accessLog()
          .some((l) => l.path === "/admin/users" && l.decision === "DENY" && l.policy === "shop/no-admin"),
      );
    } finally {
      await mesh.remove(policy, "no-admin");
    }
  });

  test("bad input: malformed HTTP → 400, oversized headers → 431, upstream reset → 503 UC; the waypoint keeps serving", async () => {
    const raw = async (text: string): Promise<string> => {
      const c = await socksConnect({ host: CLIENT_IP, port: 15001 }, { ip: VIP, port: 80 }, CLIENT_IP);
      assert.ok(c.ok);
      return new Promise((resolve) => {
        let got = "";
        c.socket.on("data", (d: Buffer) => (got += d.toString("latin1")));
        c.socket.on("close", () => resolve(got));
        c.socket.on("error", () => resolve(got));
        c.socket.write(text);
        setTimeout(() => c.socket.destroy(), 5_000);
      });
    };
    assert.match(await raw("GET / HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n"), /^HTTP\/1\.1 400 /);
    const big = await mesh.curl(`http://${VIP}/big`, ["-H", `x-big: ${"a".repeat(70 * 1024)}`]);
    assert.equal(big.status, 431);
    const reset = await mesh.curl(`http://${VIP}/reset`);
    assert.equal(reset.status, 503);
    assert.match(reset.body, /reset before headers/);
    await until(() => wp.accessLog().some((l) => l.path === "/reset" && String(l.flags).includes("UC")));
    const m = await wp.metrics();
    assert.ok(counter(m, "ambit_waypoint_refused_total", { reason: "bad_request" }) >= 1, m);
    assert.ok(counter(m, "ambit_waypoint_refused_total", { reason: "headers_too_large" }) >= 1, m);
    assert.equal((await mesh.curl(`http://${VIP}/still-fine`)).status, 200);
  });

  test("an L4 policy on the backend that admits only the waypoint blocks callers that bypass it", async () => {
    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-waypoint, namespace: shop }
spec:
  selector: { matchLabels: { app: echo } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/waypoint"] } }] }]
`;
    await mesh.apply(policy, "only-waypoint");
    try {
      // Via the Service (steered to the waypoint): allowed.
      await mesh.eventually(
        async () => (await mesh.curl(`http://${VIP}/via`)).status === 200,
        "policy pushed",
      );
      // Straight to the pod IP (no waypoint for workload addresses here): the client's own identity → refused.
      await mesh.eventually(
        async () =>
          (await mesh.curl(`http://${ECHO_IP}:8080/direct`).catch(() => ({ status: 0 }))).status !== 200,
        "direct call refused",
      );
      const direct = await mesh.curl(`http://${ECHO_IP}:8080/direct`).catch(() => ({ status: 0 }));
      assert.notEqual(direct.status, 200);
      assert.equal((await mesh.curl(`http://${VIP}/via`)).status, 200);
    } finally {
      await mesh.remove(policy, "only-waypoint");
    }
  });
});
