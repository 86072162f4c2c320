// The waypoint's auth stage across config pushes: one JwtFilter whose JWKS cache survives pushes,
// ext_authz clients kept while their provider is unchanged and closed when it changes or goes,
// CUSTOM policies mapped to providers, unknown providers denied, outcomes counted. Real HTTP
// servers on 127.0.0.1 (an authorizer and a JWKS endpoint); the snapshots come from YAML.
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { Registry } from "prom-client";
import { createLogger } from "../../../src/core/log.js";
import { loadTexts } from "../../../src/model/resources/load.js";
import { MeshSnapshot } from "../../../src/node/proxy/mesh.js";
import { AuthStage } from "../../../src/waypoint/auth-stage.js";
import type { WaypointRequest } from "../../../src/waypoint/filters/types.js";
import { WaypointSnapshot } from "../../../src/waypoint/snapshot.js";

function snapshot(yaml: string): WaypointSnapshot {
  const { resources, problems } = loadTexts([{ file: "test.yaml", text: yaml }]);
  assert.deepEqual(problems, []);
  return new WaypointSnapshot({
    mesh: new MeshSnapshot({
      addresses: [],
      authorizations: [],
      revocations: undefined,
      rootNamespace: "istio-system",
    }),
    resources,
    gateway: { name: "waypoint", namespace: "shop" },
    trustDomain: "cluster.local",
    rootNamespace: "istio-system",
    domain: "cluster.local",
  });
}

function request(headers: Record<string, string> = {}): WaypointRequest {
  return {
    method: "GET",
    path: "/x",
    authority: "echo.shop",
    headers: new Map(Object.entries(headers).map(([k, v]) => [k, [v]])),
    protocol: "HTTP/1.1",
    grpc: false,
    source: { principal: "cluster.local/ns/shop/sa/client", ip: "127.0.0.9", namespace: "shop" },
    destination: {
      service: { name: "echo", namespace: "shop", host: "echo.shop.svc.cluster.local" },
      port: 80,
    },
    gateway: { name: "waypoint", namespace: "shop" },
    jwt: null,
  };
}

function meshConfig(port: number, timeout: string): string {
  return `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    extensionProviders:
      - name: authz
        envoyExtAuthzHttp:
          { service: 127.0.0.1, port: ${port}, timeout: ${timeout}, includeRequestHeadersInCheck: [x-allow] }
`;
}

const CUSTOM = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: shop }
spec:
  action: CUSTOM
  provider: { name: authz }
  rules: [{ to: [{ operation: { paths: ["/x"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: plain, namespace: shop }
spec:
  action: ALLOW
  rules: [{}]
`;

describe("AuthStage across config pushes", () => {
  let authz: http.Server;
  let jwks: http.Server;
  let authzPort = 0;
  let jwksPort = 0;
  const sockets: Socket[] = [];
  let closedSockets = 0;
  let jwksFetches = 0;
  let jwksBody = "";
  const registry = new Registry();
  const stage = new AuthStage(createLogger("test", "silent"));

  before(async () => {
    authz = http.createServer((req, res) => {
      req.resume();
      res.writeHead(req.headers["x-allow"] === "yes" ? 200 : 403);
      res.end();
    });
    authz.on("connection", (s: Socket) => {
      sockets.push(s);
      s.on("close", () => closedSockets++);
    });
    await new Promise<void>((r) => authz.listen(0, "127.0.0.1", r));
    authzPort = (authz.address() as AddressInfo).port;
    jwks = http.createServer((_req, res) => {
      jwksFetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(jwksBody);
    });
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    jwksPort = (jwks.address() as AddressInfo).port;
    stage.init({
      registry,
      connect: () => Promise.reject(new Error("no mesh endpoints in this test")),
    });
  });

  after(() => {
    stage.close();
    authz.closeAllConnections();
    authz.close();
    jwks.close();
  });

  test("CUSTOM policies map to their provider; an ext_authz client survives pushes that do not change it", async () => {
    const snap = snapshot(`${meshConfig(authzPort, "2s")}---${CUSTOM}`);
    let f = stage.compile(snap);
    assert.equal(f.customProvider?.("shop/ext"), "authz");
    assert.equal(f.customProvider?.("shop/plain"), undefined);
    const allowed = await f.extAuthz?.(request({ "x-allow": "yes" }), "authz");
    assert.equal(allowed?.action, "continue");
    const denied = await f.extAuthz?.(request(), "authz");
    assert.equal(denied?.action, "respond");
    assert.ok(
      denied?.action === "respond" && denied.status === 403 && denied.reason.startsWith("ext_authz_denied"),
    );
    // Same provider config in a new snapshot: the keep-alive connection is reused.
    f = stage.compile(snapshot(`${meshConfig(authzPort, "2s")}---${CUSTOM}`));
    assert.equal((await f.extAuthz?.(request({ "x-allow": "yes" }), "authz"))?.action, "continue");
    assert.equal(sockets.length, 1, "one connection for all checks");
    assert.equal(closedSockets, 0);

    // A changed provider gets a new client; the old one's connections are closed.
    f = stage.compile(snapshot(`${meshConfig(authzPort, "3s")}---${CUSTOM}`));
    assert.equal((await f.extAuthz?.(request({ "x-allow": "yes" }), "authz"))?.action, "continue");
    assert.equal(sockets.length, 2);
    await waitFor(() => closedSockets === 1);

    // Provider removed from the mesh config: its client is closed and CUSTOM policies naming it deny.
    f = stage.compile(snapshot(CUSTOM));
    await waitFor(() => closedSockets === 2);
    const gone = await f.extAuthz?.(request({ "x-allow": "yes" }), "authz");
    assert.ok(gone?.action === "respond" && gone.status === 403);
    const m = await registry.metrics();
    assert.match(m, /ambit_waypoint_ext_authz_total\{provider="authz",result="allowed"\} 3/);
    assert.match(m, /ambit_waypoint_ext_authz_total\{provider="authz",result="denied"\} 1/);
    assert.match(m, /ambit_waypoint_ext_authz_total\{provider="authz",result="unknown_provider"\} 1/);
  });

  test("an unreachable authorizer fails closed with statusOnError; the JWT cache survives pushes", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    jwksBody = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
    const iss = `http://127.0.0.1:${jwksPort}`;
    const ra = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: shop }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  jwtRules: [{ issuer: "${iss}", jwksUri: "${iss}/keys" }]
`;
    const down = `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    extensionProviders:
      - name: authz
        envoyExtAuthzGrpc: { service: 127.0.0.1, port: 1, timeout: 2s, statusOnError: 503 }
`;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer(iss)
      .setSubject("alice")
      .setExpirationTime("1h")
      .sign(privateKey);
    for (let push = 0; push < 3; push++) {
      const f = stage.compile(snapshot(`${ra}---${down}`));
      const req = request({ authorization: `Bearer ${token}` });
      assert.equal((await f.jwt?.(req, new URLSearchParams()))?.action, "continue");
      assert.equal(req.jwt?.sub, "alice");
      const r = await f.extAuthz?.(request(), "authz");
      assert.ok(r?.action === "respond" && r.status === 503, JSON.stringify(r));
    }
    assert.equal(jwksFetches, 1, "the JWKS was fetched once across three pushes");
    const m = await registry.metrics();
    assert.match(m, /ambit_waypoint_jwt_authn_total\{result="valid"\} 3/);
    assert.match(m, /ambit_waypoint_ext_authz_total\{provider="authz",result="error"\} 3/);
  });
});

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
