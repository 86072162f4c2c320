// The waypoint's CUSTOM authorization client against real test authorizers on 127.0.0.1: an HTTP
// one (node:http) and a gRPC one (grpc-js serving envoy.service.auth.v3.Authorization/Check from
// Ambit's proto). Allow, deny with the authorizer's status/body/headers, authorizer down (fail
// closed, failOpen, statusOnError), timeouts, bodies; and the MeshConfig provider parser.
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { extAuthzServiceClient } from "../../../src/api/protos.js";
import { silentLogger } from "../../../src/core/log.js";
import { ExtAuthzClient, type ExtAuthzCheck } from "../../../src/waypoint/filters/ext-authz.js";
import {
  DEFAULT_EXT_AUTHZ_TIMEOUT_MS,
  parseMeshConfig,
  type ExtAuthzHttpProvider,
  type ExtAuthzProvider,
} from "../../../src/model/resources/mesh-config.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A request as the waypoint hands it to the client. */
function request(
  headers: Record<string, string | string[]>,
  extra: Partial<ExtAuthzCheck> = {},
): ExtAuthzCheck {
  const m = new Map<string, string[]>();
  for (const [k, v] of Object.entries(headers)) m.set(k, Array.isArray(v) ? v : [v]);
  return {
    method: "POST",
    path: "/orders?id=1",
    authority: "orders.shop.svc.cluster.local",
    scheme: "http",
    headers: m,
    protocol: "HTTP/1.1",
    source: { principal: "cluster.local/ns/shop/sa/web", ip: "10.0.0.7", port: 40000 },
    destination: { principal: "cluster.local/ns/shop/sa/waypoint", ip: "10.0.0.9", port: 8080 },
    ...extra,
  };
}

/** Providers from MeshConfig YAML, asserting it is valid. */
function providers(yaml: string): Map<string, ExtAuthzProvider> {
  const r = parseMeshConfig(yaml, "mesh.yaml");
  assert.deepEqual(r.problems, []);
  return r.providers;
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const identity = (host: string, port: number): { host: string; port: number } => ({ host, port });

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe("ext_authz over HTTP", () => {
  let server: http.Server;
  let port = 0;
  let downPort = 0;
  const seen: Seen[] = [];
  let client: ExtAuthzClient;

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        const mode = req.headers["x-mode"];
        if (mode === "slow") {
          setTimeout(() => res.writeHead(200).end(), 1500).unref();
          return;
        }
        if (mode === "error") {
          res.writeHead(503, { "x-secret": "s" }).end("authorizer broken");
          return;
        }
        if (req.headers["x-allow"] === "yes") {
          res
            .writeHead(200, {
              "x-authz-user": "alice",
              "x-authz-role": "admin",
              "x-internal": "not-for-upstream",
              "x-trace": "t-1",
              "x-envoy-auth-headers-to-remove": "authorization, x-api-key",
            })
            .end();
          return;
        }
        res
          .writeHead(401, {
            "www-authenticate": 'Bearer realm="shop"',
            "x-deny-reason": "no x-allow",
            "x-secret": "s",
            "content-type": "text/plain",
          })
          .end("denied by test authorizer");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    downPort = await closedPort();
    client = new ExtAuthzClient({
      providers: providers(`
extensionProviders:
  - name: http-authz
    envoyExtAuthzHttp:
      service: authz.foo.svc.cluster.local
      port: ${port}
      pathPrefix: /check
      includeRequestHeadersInCheck: ["x-allow", "x-mode", "x-user-*"]
      includeAdditionalHeadersInCheck: { x-ambit-waypoint: shop-waypoint }
      headersToUpstreamOnAllow: ["x-authz-*"]
      headersToDownstreamOnAllow: ["x-trace"]
      headersToDownstreamOnDeny: ["x-deny-reason", "content-type"]
  - name: http-all-deny-headers
    envoyExtAuthzHttp:
      service: foo/authz.foo.svc.cluster.local
      port: "${port}"
  - name: http-body
    envoyExtAuthzHttp:
      service: 127.0.0.1
      port: ${port}
      includeRequestHeadersInCheck: ["x-allow"]
      includeRequestBodyInCheck: { maxRequestBytes: 4, allowPartialMessage: true }
  - name: http-body-strict
    envoyExtAuthzHttp:
      service: 127.0.0.1
      port: ${port}
      failOpen: true
      includeRequestBodyInCheck: { maxRequestBytes: 4 }
  - name: http-timeout
    envoyExtAuthzHttp:
      service: authz.foo.svc.cluster.local
      port: ${port}
      timeout: 200ms
      includeRequestHeadersInCheck: ["x-mode"]
  - name: http-error-open
    envoyExtAuthzHttp:
      service: authz.foo.svc.cluster.local
      port: ${port}
      failOpen: true
      includeRequestHeadersInCheck: ["x-mode"]
  - name: http-down
    envoyExtAuthzHttp: { service: down.foo.svc.cluster.local, port: ${downPort} }
  - name: http-down-open
    envoyExtAuthzHttp: { service: down.foo.svc.cluster.local, port: ${downPort}, failOpen: true }
  - name: http-down-503
    envoyExtAuthzHttp: { service: down.foo.svc.cluster.local, port: ${downPort}, statusOnError: "503" }
  - name: http-unresolvable
    envoyExtAuthzHttp: { service: nowhere.foo.svc.cluster.local, port: 80 }
`),
      resolve: (host, p) =>
        host === "nowhere.foo.svc.cluster.local" ? null : { host: "127.0.0.1", port: p },
      log: silentLogger(),
    });
  });

  after(async () => {
    client.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test("allow: the check mirrors the request and authorizer headers go upstream and downstream", async () => {
    seen.length = 0;
    const r = await client.check(
      "http-authz",
      request({
        "x-allow": "yes",
        "x-user-id": "42",
        authorization: "Bearer secret",
        cookie: "a=b",
        "x-ambit-waypoint": "spoofed",
      }),
    );
    assert.deepEqual(r, {
      allowed: true,
      upstreamHeaders: { "x-authz-user": "alice", "x-authz-role": "admin" },
      removeHeaders: ["authorization", "x-api-key"],
      downstreamHeaders: { "x-trace": "t-1" },
    });
    const s = seen[0];
    assert.ok(s);
    assert.equal(s.method, "POST");
    assert.equal(s.url, "/check/orders?id=1");
    assert.equal(s.headers.host, "orders.shop.svc.cluster.local");
    assert.equal(s.headers["content-length"], "0");
    assert.equal(s.headers["x-allow"], "yes");
    assert.equal(s.headers["x-user-id"], "42");
    // includeAdditionalHeadersInCheck overrides a client header of the same name.
    assert.equal(s.headers["x-ambit-waypoint"], "shop-waypoint");
    // Headers not listed in includeRequestHeadersInCheck stay with the waypoint.
    assert.equal(s.headers.authorization, undefined);
    assert.equal(s.headers.cookie, undefined);
    assert.equal(s.body, "");
  });

  test("deny: the authorizer's status and body, headersToDownstreamOnDeny plus WWW-Authenticate", async () => {
    const r = await client.check("http-authz", request({ "x-allow": "no" }));
    assert.deepEqual(r, {
      allowed: false,
      status: 401,
      headers: {
        "www-authenticate": 'Bearer realm="shop"',
        "x-deny-reason": "no x-allow",
        "content-type": "text/plain",
      },
      body: "denied by test authorizer",
      reason: "ext_authz_denied",
    });
  });

  test("deny without headersToDownstreamOnDeny passes every authorizer header but Host and framing", async () => {
    const r = await client.check("http-all-deny-headers", request({ "x-allow": "yes" }));
    // x-allow is not in (the empty) includeRequestHeadersInCheck, so the authorizer denies.
    assert.equal(r.allowed, false);
    assert.ok(!r.allowed);
    assert.equal(r.status, 401);
    assert.equal(r.headers["x-secret"], "s");
    assert.equal(r.headers["x-deny-reason"], "no x-allow");
    assert.equal(r.headers["content-length"], undefined);
    assert.equal(r.headers.connection, undefined);
  });

  test("includeRequestBodyInCheck sends the body, cut to maxRequestBytes with allowPartialMessage", async () => {
    seen.length = 0;
    const r = await client.check(
      "http-body",
      request({ "x-allow": "yes" }, { body: Buffer.from("abcdefgh") }),
    );
    assert.equal(r.allowed, true);
    assert.equal(seen[0]?.body, "abcd");
    assert.equal(seen[0]?.headers["content-length"], "4");
    assert.equal(seen[0]?.headers["x-envoy-auth-partial-body"], "true");
    seen.length = 0;
    await client.check("http-body", request({ "x-allow": "yes" }, { body: Buffer.from("ab") }));
    assert.equal(seen[0]?.body, "ab");
    assert.equal(seen[0]?.headers["x-envoy-auth-partial-body"], "false");
  });

  test("a body over maxRequestBytes without allowPartialMessage is 413, even with failOpen", async () => {
    seen.length = 0;
    const r = await client.check("http-body-strict", request({}, { body: Buffer.from("abcdefgh") }));
    assert.deepEqual(r, { allowed: false, status: 413, headers: {}, body: "", reason: "ext_authz_error" });
    assert.equal(seen.length, 0);
  });

  test("authorizer down: fail closed with 403, failOpen allows, statusOnError sets the status", async () => {
    assert.deepEqual(await client.check("http-down", request({})), {
      allowed: false,
      status: 403,
      headers: {},
      body: "",
      reason: "ext_authz_error",
    });
    assert.deepEqual(await client.check("http-down-open", request({})), {
      allowed: true,
      upstreamHeaders: {},
      downstreamHeaders: {},
      failedOpen: true,
    });
    const r = await client.check("http-down-503", request({}));
    assert.equal(r.allowed, false);
    assert.ok(!r.allowed);
    assert.equal(r.status, 503);
    assert.equal(r.reason, "ext_authz_error");
  });

  test("an authorizer 5xx is a failed check: 403 fail closed, allowed with failOpen", async () => {
    const closed = await client.check("http-timeout", request({ "x-mode": "error" }));
    assert.ok(!closed.allowed);
    assert.equal(closed.status, 403);
    assert.equal(closed.reason, "ext_authz_error");
    assert.equal(closed.body, "");
    const open = await client.check("http-error-open", request({ "x-mode": "error" }));
    assert.equal(open.allowed, true);
  });

  test("timeout: a slow authorizer is abandoned after the provider timeout", async () => {
    const t0 = Date.now();
    const r = await client.check("http-timeout", request({ "x-mode": "slow" }));
    const took = Date.now() - t0;
    assert.deepEqual(r, { allowed: false, status: 403, headers: {}, body: "", reason: "ext_authz_timeout" });
    assert.ok(took >= 190 && took < 1200, `took ${took}ms`);
  });

  test("an unresolvable service and an unknown provider deny without throwing", async () => {
    const r = await client.check("http-unresolvable", request({}));
    assert.ok(!r.allowed);
    assert.equal(r.reason, "ext_authz_error");
    const u = await client.check("no-such-provider", request({}));
    assert.ok(!u.allowed);
    assert.equal(u.status, 403);
  });
});

interface GrpcCheckRequest {
  attributes: {
    source: { address: { socketAddress: { address: string; portValue: number } }; principal: string };
    destination: { address: { socketAddress: { address: string; portValue: number } }; principal: string };
    request: {
      time: { seconds: number } | null;
      http: {
        id: string;
        method: string;
        headers: Record<string, string>;
        path: string;
        host: string;
        scheme: string;
        size: number;
        protocol: string;
        body: string;
        rawBody: Buffer;
      };
    };
  };
}

describe("ext_authz over gRPC", () => {
  let server: grpc.Server;
  let port = 0;
  let downPort = 0;
  const seen: GrpcCheckRequest[] = [];
  let client: ExtAuthzClient;

  before(async () => {
    server = new grpc.Server();
    server.addService(extAuthzServiceClient().service, {
      Check: (
        call: grpc.ServerUnaryCall<GrpcCheckRequest, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ): void => {
        seen.push(call.request);
        const h = call.request.attributes.request.http.headers;
        if (h["x-mode"] === "slow") {
          setTimeout(() => cb(null, { status: { code: 0 } }), 1500).unref();
          return;
        }
        if (h["x-mode"] === "unavailable") {
          cb({ code: grpc.status.UNAVAILABLE, details: "authorizer overloaded" });
          return;
        }
        if (h["x-mode"] === "bare-deny") {
          cb(null, { status: { code: grpc.status.PERMISSION_DENIED } });
          return;
        }
        if (h["x-allow"] === "yes") {
          cb(null, {
            status: { code: 0 },
            okResponse: {
              headers: [
                { header: { key: "x-authz-user", value: "alice" } },
                { header: { key: "X-Authz-Tenant", value: "shop" }, append: { value: false } },
              ],
              headersToRemove: ["authorization"],
              responseHeadersToAdd: [{ header: { key: "x-trace", value: "t-2" } }],
            },
          });
          return;
        }
        cb(null, {
          status: { code: grpc.status.PERMISSION_DENIED, message: "no x-allow" },
          deniedResponse: {
            status: { code: 401 },
            headers: [{ header: { key: "www-authenticate", value: "Bearer" } }],
            body: "denied over grpc",
          },
        });
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    downPort = await closedPort();
    client = new ExtAuthzClient({
      providers: providers(`
extensionProviders:
  - name: grpc-authz
    envoyExtAuthzGrpc:
      service: authz.foo.svc.cluster.local
      port: ${port}
  - name: grpc-body
    envoyExtAuthzGrpc:
      service: authz.foo.svc.cluster.local
      port: ${port}
      includeRequestBodyInCheck: { maxRequestBytes: 1024, packAsBytes: true }
  - name: grpc-timeout
    envoyExtAuthzGrpc:
      service: authz.foo.svc.cluster.local
      port: ${port}
      timeout: 0.2s
      statusOnError: "504"
  - name: grpc-open
    envoyExtAuthzGrpc: { service: authz.foo.svc.cluster.local, port: ${port}, failOpen: true }
  - name: grpc-down
    envoyExtAuthzGrpc: { service: down.foo.svc.cluster.local, port: ${downPort} }
  - name: grpc-down-open
    envoyExtAuthzGrpc: { service: down.foo.svc.cluster.local, port: ${downPort}, failOpen: true }
  - name: grpc-down-500
    envoyExtAuthzGrpc: { service: down.foo.svc.cluster.local, port: ${downPort}, statusOnError: 500 }
`),
      resolve: (_host, p) => identity("127.0.0.1", p),
      log: silentLogger(),
    });
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  test("allow: CheckRequest carries peers and the HTTP request; ok_response edits the request", async () => {
    seen.length = 0;
    const r = await client.check(
      "grpc-authz",
      request({ "x-allow": "yes", cookie: ["a=1", "b=2"], "x-request-id": "req-1" }, { protocol: "HTTP/2" }),
    );
    assert.deepEqual(r, {
      allowed: true,
      upstreamHeaders: { "x-authz-user": "alice", "x-authz-tenant": "shop" },
      removeHeaders: ["authorization"],
      downstreamHeaders: { "x-trace": "t-2" },
    });
    const a = seen[0]?.attributes;
    assert.ok(a);
    assert.equal(a.source.principal, "spiffe://cluster.local/ns/shop/sa/web");
    assert.deepEqual(
      { address: a.source.address.socketAddress.address, port: a.source.address.socketAddress.portValue },
      { address: "10.0.0.7", port: 40000 },
    );
    assert.equal(a.destination.principal, "spiffe://cluster.local/ns/shop/sa/waypoint");
    assert.equal(a.destination.address.socketAddress.portValue, 8080);
    const h = a.request.http;
    assert.equal(h.method, "POST");
    assert.equal(h.path, "/orders?id=1");
    assert.equal(h.host, "orders.shop.svc.cluster.local");
    assert.equal(h.scheme, "http");
    assert.equal(h.protocol, "HTTP/2");
    assert.equal(h.id, "req-1");
    assert.equal(h.size, -1);
    assert.equal(h.headers[":authority"], "orders.shop.svc.cluster.local");
    assert.equal(h.headers[":method"], "POST");
    assert.equal(h.headers[":path"], "/orders?id=1");
    assert.equal(h.headers["x-allow"], "yes");
    assert.equal(h.headers.cookie, "a=1; b=2");
    assert.ok((a.request.time?.seconds ?? 0) > 0);
  });

  test("deny: denied_response gives the status, headers and body", async () => {
    const r = await client.check("grpc-authz", request({ "x-allow": "no" }));
    assert.deepEqual(r, {
      allowed: false,
      status: 401,
      headers: { "www-authenticate": "Bearer" },
      body: "denied over grpc",
      reason: "ext_authz_denied",
    });
  });

  test("deny without denied_response is 403", async () => {
    const r = await client.check("grpc-authz", request({ "x-mode": "bare-deny" }));
    assert.deepEqual(r, { allowed: false, status: 403, headers: {}, body: "", reason: "ext_authz_denied" });
  });

  test("the body goes as raw_body with packAsBytes", async () => {
    seen.length = 0;
    await client.check(
      "grpc-body",
      request({ "x-allow": "yes", "content-length": "3" }, { body: Buffer.from([0xff, 0x00, 0x61]) }),
    );
    const h = seen[0]?.attributes.request.http;
    assert.ok(h);
    assert.deepEqual([...h.rawBody], [0xff, 0x00, 0x61]);
    assert.equal(h.body, "");
    assert.equal(h.size, 3);
  });

  test("a gRPC error from the authorizer fails closed, or open with failOpen", async () => {
    const closed = await client.check("grpc-authz", request({ "x-mode": "unavailable" }));
    assert.deepEqual(closed, {
      allowed: false,
      status: 403,
      headers: {},
      body: "",
      reason: "ext_authz_error",
    });
    const open = await client.check("grpc-open", request({ "x-mode": "unavailable" }));
    assert.equal(open.allowed, true);
  });

  test("authorizer down: 403 fail closed, failOpen allows, statusOnError sets the status", async () => {
    const closed = await client.check("grpc-down", request({}));
    assert.deepEqual(closed, {
      allowed: false,
      status: 403,
      headers: {},
      body: "",
      reason: "ext_authz_error",
    });
    assert.deepEqual(await client.check("grpc-down-open", request({})), {
      allowed: true,
      upstreamHeaders: {},
      downstreamHeaders: {},
      failedOpen: true,
    });
    const s = await client.check("grpc-down-500", request({}));
    assert.ok(!s.allowed);
    assert.equal(s.status, 500);
  });

  test("timeout: the deadline is the provider timeout and statusOnError answers it", async () => {
    const t0 = Date.now();
    const r = await client.check("grpc-timeout", request({ "x-mode": "slow" }));
    const took = Date.now() - t0;
    assert.deepEqual(r, { allowed: false, status: 504, headers: {}, body: "", reason: "ext_authz_timeout" });
    assert.ok(took >= 150 && took < 1200, `took ${took}ms`);
  });

  test("checks reuse one channel per provider and run concurrently", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => client.check("grpc-authz", request({ "x-allow": "yes" }))),
    );
    assert.ok(results.every((r) => r.allowed));
    const channels = (client as unknown as { grpcClients: Map<string, unknown> }).grpcClients;
    assert.equal([...channels.keys()].filter((k) => k === "grpc-authz").length, 1);
  });

  test("after close() checks are authorizer errors, not exceptions", async () => {
    const c = new ExtAuthzClient({
      providers: providers(`
extensionProviders:
  - name: p
    envoyExtAuthzGrpc: { service: a.b, port: ${port}, failOpen: true }
  - name: q
    envoyExtAuthzGrpc: { service: a.b, port: ${port} }
`),
      resolve: (_h, p) => identity("127.0.0.1", p),
      log: silentLogger(),
    });
    assert.equal((await c.check("p", request({ "x-allow": "yes" }))).allowed, true);
    c.close();
    assert.equal((await c.check("p", request({}))).allowed, true);
    const q = await c.check("q", request({ "x-allow": "yes" }));
    assert.ok(!q.allowed);
    assert.equal(q.reason, "ext_authz_error");
  });
});

describe("parseMeshConfig", () => {
  test("reads both provider kinds with Istio's defaults", () => {
    const { providers: ps, problems } = parseMeshConfig(
      `
defaultConfig: { discoveryAddress: istiod.istio-system.svc:15012 }
extensionProviders:
  - name: zipkin
    zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 }
  - name: opa
    envoyExtAuthzGrpc:
      service: opa.policy.svc.cluster.local
      port: 9191
  - name: oauth2-proxy
    envoyExtAuthzHttp:
      service: auth/oauth2-proxy.auth.svc.cluster.local
      port: "4180"
      timeout: 1m30s
      failOpen: false
      statusOnError: "503"
      pathPrefix: /oauth2
      includeRequestHeadersInCheck: [Authorization, "x-auth-*", "*-token"]
      includeAdditionalHeadersInCheck: { X-Auth-Source: ambit }
      headersToUpstreamOnAllow: [authorization, "x-auth-request-*"]
      headersToDownstreamOnDeny: [content-type, set-cookie]
      headersToDownstreamOnAllow: [set-cookie]
      includeRequestBodyInCheck: { maxRequestBytes: 8192, allowPartialMessage: true }
`,
      "mesh.yaml",
    );
    assert.deepEqual(problems, []);
    assert.deepEqual([...ps.keys()], ["opa", "oauth2-proxy"]);
    assert.deepEqual(ps.get("opa"), {
      kind: "grpc",
      name: "opa",
      service: "opa.policy.svc.cluster.local",
      namespace: null,
      port: 9191,
      timeoutMs: DEFAULT_EXT_AUTHZ_TIMEOUT_MS,
      failOpen: false,
      statusOnError: 403,
      clearRouteCache: false,
      includeRequestBodyInCheck: null,
    });
    const o = ps.get("oauth2-proxy") as ExtAuthzHttpProvider;
    assert.equal(o.kind, "http");
    assert.equal(o.service, "oauth2-proxy.auth.svc.cluster.local");
    assert.equal(o.namespace, "auth");
    assert.equal(o.port, 4180);
    assert.equal(o.timeoutMs, 90_000);
    assert.equal(o.statusOnError, 503);
    assert.equal(o.pathPrefix, "/oauth2");
    assert.deepEqual(o.includeRequestHeadersInCheck, [
      { kind: "exact", value: "authorization" },
      { kind: "prefix", value: "x-auth-" },
      { kind: "suffix", value: "-token" },
    ]);
    assert.deepEqual(o.includeAdditionalHeadersInCheck, { "x-auth-source": "ambit" });
    assert.deepEqual(o.headersToDownstreamOnAllow, [{ kind: "exact", value: "set-cookie" }]);
    assert.deepEqual(o.includeRequestBodyInCheck, {
      maxRequestBytes: 8192,
      allowPartialMessage: true,
      packAsBytes: false,
    });
    assert.equal(DEFAULT_EXT_AUTHZ_TIMEOUT_MS, 600_000);
  });

  test("unset header lists stay null (Istio: no upstream copy, all headers on deny)", () => {
    const ps = providers(`
extensionProviders:
  - name: a
    envoyExtAuthzHttp: { service: 10.0.0.5, port: 8000, include_headers_in_check: [x-a] }
`);
    const a = ps.get("a") as ExtAuthzHttpProvider;
    assert.equal(a.headersToUpstreamOnAllow, null);
    assert.equal(a.headersToDownstreamOnDeny, null);
    assert.equal(a.headersToDownstreamOnAllow, null);
    // The deprecated includeHeadersInCheck (snake_case accepted) still applies.
    assert.deepEqual(a.includeRequestHeadersInCheck, [{ kind: "exact", value: "x-a" }]);
    assert.equal(a.service, "10.0.0.5");
  });

  test("bad providers are reported by file and field path and left out; good ones kept", () => {
    const { providers: ps, problems } = parseMeshConfig(
      `
extensionProviders:
  - name: good
    envoyExtAuthzHttp: { service: authz.foo.svc.cluster.local, port: 80 }
  - name: bad-port
    envoyExtAuthzGrpc: { service: authz.foo.svc.cluster.local, port: 70000 }
  - name: no-service
    envoyExtAuthzGrpc: { port: 9000 }
  - name: bad-timeout
    envoyExtAuthzGrpc: { service: a.b, port: 1, timeout: soon }
  - name: typo
    envoyExtAuthzHttp: { service: a.b, port: 1, failopen: true }
  - name: both
    envoyExtAuthzHttp: { service: a.b, port: 1 }
    envoyExtAuthzGrpc: { service: a.b, port: 1 }
  - name: good
    envoyExtAuthzGrpc: { service: a.b, port: 2 }
  - name: bad-status
    envoyExtAuthzHttp: { service: a.b, port: 1, statusOnError: teapot }
  - name: bad-headers
    envoyExtAuthzHttp: { service: a.b, port: 1, headersToUpstreamOnAllow: ["*", "a*b"] }
  - name: bad-prefix
    envoyExtAuthzHttp: { service: a.b, port: 1, pathPrefix: check }
  - name: bad-host
    envoyExtAuthzHttp: { service: "Bad_Host!", port: 1 }
  - name: bad-body
    envoyExtAuthzGrpc: { service: a.b, port: 1, includeRequestBodyInCheck: { maxRequestBytes: 0 } }
  - name: bad-fail-open
    envoyExtAuthzGrpc: { service: a.b, port: 1, failOpen: "yes" }
  - envoyExtAuthzGrpc: { service: a.b, port: 1 }
`,
      "mesh.yaml",
    );
    assert.deepEqual([...ps.keys()], ["good"]);
    assert.equal(ps.get("good")?.kind, "http");
    assert.deepEqual(problems, [
      "mesh.yaml: extensionProviders[1].envoyExtAuthzGrpc.port: expected 1..65535",
      "mesh.yaml: extensionProviders[2].envoyExtAuthzGrpc.service: required",
      'mesh.yaml: extensionProviders[3].envoyExtAuthzGrpc.timeout: expected a positive duration such as "0.5s" or "250ms"',
      "mesh.yaml: extensionProviders[4].envoyExtAuthzHttp.failopen: unknown field",
      "mesh.yaml: extensionProviders[5]: only one of envoyExtAuthzHttp and envoyExtAuthzGrpc may be set",
      'mesh.yaml: extensionProviders[6].name: duplicate provider name "good"',
      "mesh.yaml: extensionProviders[7].envoyExtAuthzHttp.statusOnError: expected an HTTP status 200..599",
      'mesh.yaml: extensionProviders[8].envoyExtAuthzHttp.headersToUpstreamOnAllow[0]: expected a header name, "prefix*" or "*suffix"',
      'mesh.yaml: extensionProviders[8].envoyExtAuthzHttp.headersToUpstreamOnAllow[1]: expected a header name, "prefix*" or "*suffix"',
      'mesh.yaml: extensionProviders[9].envoyExtAuthzHttp.pathPrefix: must start with "/"',
      'mesh.yaml: extensionProviders[10].envoyExtAuthzHttp.service: "Bad_Host!" is not a hostname or IP address (format [<Namespace>/]<Hostname>)',
      "mesh.yaml: extensionProviders[11].envoyExtAuthzGrpc.includeRequestBodyInCheck.maxRequestBytes: expected 1..4294967295",
      "mesh.yaml: extensionProviders[12].envoyExtAuthzGrpc.failOpen: expected true or false",
      "mesh.yaml: extensionProviders[13].name: required, a non-empty string",
    ]);
  });

  test("the istio ConfigMap itself, empty text, invalid YAML and a non-list", () => {
    const cm = parseMeshConfig(
      `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |-
    extensionProviders:
    - name: opa
      envoyExtAuthzGrpc: { service: opa.policy.svc.cluster.local, port: 0 }
`,
      "istio.yaml",
    );
    assert.deepEqual(cm.problems, [
      "istio.yaml: data.mesh: extensionProviders[0].envoyExtAuthzGrpc.port: expected 1..65535",
    ]);
    assert.deepEqual(parseMeshConfig("", "mesh.yaml"), { providers: new Map(), problems: [] });
    const bad = parseMeshConfig("extensionProviders: [", "mesh.yaml");
    assert.equal(bad.providers.size, 0);
    assert.match(bad.problems[0] ?? "", /^mesh\.yaml: invalid YAML: /);
    assert.deepEqual(parseMeshConfig("extensionProviders: {}", "mesh.yaml").problems, [
      "mesh.yaml: extensionProviders: expected a list",
    ]);
    assert.deepEqual(parseMeshConfig("- 1", "mesh.yaml").problems, [
      "mesh.yaml: expected a MeshConfig mapping",
    ]);
  });
});

// Keep node:test from reporting the slow handlers' timers as leaks.
after(() => sleep(0));
