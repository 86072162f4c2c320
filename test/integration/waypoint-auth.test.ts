// RequestAuthentication (JWT) and CUSTOM authorization (ext_authz) in a real waypoint, end to end:
// a real control plane, two node proxies and `ambit waypoint` (loopback mode), real backends, and
// curl through the client's node proxy (SOCKS5). Keys are made here with jose: one issuer's JWKS
// inline, the other's served over HTTP on loopback (jwksUri). The ext_authz providers come from the
// istio ConfigMap applied with `ambit apply`: an HTTP authorizer outside the mesh (dialled
// directly) and a gRPC one (grpc-js serving envoy.service.auth.v3.Authorization/Check from the
// repo's protos) that is a mesh Service, reached by the waypoint over HBONE with its own identity.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as http from "node:http";
import type * as net from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { extAuthzServiceClient } from "../../src/api/protos.js";
import { until } from "../support/control-plane.js";
import { socksForwarder, type NodeProcess } from "../support/node-proxy.js";
import { runAmbit } from "../support/repo.js";
import { counter, freePort, meshPrelude, WaypointMesh } from "../support/waypoint-mesh.js";

const run = promisify(execFile);

// This file's loopback ranges: pods 127.0.21-24.x, admin hosts 127.0.10.21-29, VIPs 10.96.21.x.
const CLIENT_IP = "127.0.21.1";
const ECHO_IP = "127.0.22.1";
const API_IP = "127.0.22.2";
const AUTHZ_GRPC_IP = "127.0.22.3";
const WAYPOINT_IP = "127.0.23.1";
/** Outside the mesh: the HTTP authorizer and the JWKS server. */
const AUTHZ_HTTP_IP = "127.0.24.1";
const JWKS_IP = "127.0.24.2";
const AUTHZ_HTTP_PORT = 8000;
const AUTHZ_GRPC_PORT = 9000;
const JWKS_PORT = 8080;
const ECHO_VIP = "10.96.21.10";
const API_VIP = "10.96.21.11";
const CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client";
const WAYPOINT_ID = "spiffe://cluster.local/ns/shop/sa/waypoint";
const INLINE_ISS = "https://inline.issuer.test";
const REMOTE_ISS = `http://${JWKS_IP}:${JWKS_PORT}`;

const MESH = `${meshPrelude({ namespace: "shop", clientIp: CLIENT_IP, waypointIp: WAYPOINT_IP, waypointVip: "10.96.21.2" })}---
apiVersion: v1
kind: Pod
metadata: { name: echo-1, namespace: shop, labels: { app: echo } }
spec: { nodeName: n2, serviceAccountName: echo }
status: { podIP: ${ECHO_IP} }
---
apiVersion: v1
kind: Pod
metadata: { name: api-1, namespace: shop, labels: { app: api } }
spec: { nodeName: n2, serviceAccountName: api }
status: { podIP: ${API_IP} }
---
apiVersion: v1
kind: Pod
metadata: { name: authz-1, namespace: shop, labels: { app: authz } }
spec: { nodeName: n2, serviceAccountName: authz }
status: { podIP: ${AUTHZ_GRPC_IP} }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: shop, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: echo }
  clusterIP: ${ECHO_VIP}
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: shop, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: api }
  clusterIP: ${API_VIP}
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: authz, namespace: shop }
spec:
  selector: { app: authz }
  clusterIP: 10.96.21.20
  ports: [{ name: grpc, port: ${AUTHZ_GRPC_PORT}, targetPort: ${AUTHZ_GRPC_PORT} }]
`;

function meshConfig(downPort: number): string {
  return `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    extensionProviders:
      - name: authz-http
        envoyExtAuthzHttp:
          service: ${AUTHZ_HTTP_IP}
          port: ${AUTHZ_HTTP_PORT}
          timeout: 5s
          includeRequestHeadersInCheck: [x-ext-authz]
          headersToUpstreamOnAllow: [x-authz-user, x-ext-authz-check-result]
          headersToDownstreamOnDeny: [x-ext-authz-check-result]
          headersToDownstreamOnAllow: [x-authz-trace]
      - name: authz-grpc
        envoyExtAuthzGrpc:
          service: authz.shop.svc.cluster.local
          port: ${AUTHZ_GRPC_PORT}
          timeout: 5s
      - name: authz-down
        envoyExtAuthzHttp: { service: ${AUTHZ_HTTP_IP}, port: ${downPort}, timeout: 2s }
      - name: authz-down-open
        envoyExtAuthzHttp: { service: ${AUTHZ_HTTP_IP}, port: ${downPort}, timeout: 2s, failOpen: true }
`;
}

/** One CUSTOM policy per provider, each for its own path prefix on Service echo. */
const CUSTOM = ["authz-http", "authz-grpc", "authz-down", "authz-down-open"]
  .map(
    (provider) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext-${provider}, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: CUSTOM
  provider: { name: ${provider} }
  rules: [{ to: [{ operation: { paths: ["/${provider}/*"] } }] }]
`,
  )
  .join("---\n");

interface Echoed {
  app: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
}

interface CheckRequestMessage {
  attributes: {
    source: { principal: string };
    request: { http: { path: string; headers: Record<string, string> } };
  };
}

interface Issuer {
  iss: string;
  kid: string;
  privateKey: CryptoKey;
  jwks: { keys: unknown[] };
}

async function issuer(iss: string, kid: string): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  return { iss, kid, privateKey, jwks: { keys: [jwk] } };
}

async function token(
  i: Issuer,
  sub: string,
  o: { expiresAt?: number; extra?: JWTPayload } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...o.extra })
    .setProtectedHeader({ alg: "ES256", kid: i.kid })
    .setIssuer(i.iss)
    .setSubject(sub)
    .setIssuedAt(now - 10)
    .setExpirationTime(o.expiresAt ?? now + 3600)
    .sign(i.privateKey);
}

describe("waypoint: RequestAuthentication (JWT) and CUSTOM ext_authz end to end", () => {
  const mesh = new WaypointMesh({
    namespace: "shop",
    clientIp: CLIENT_IP,
    waypointIp: WAYPOINT_IP,
    adminHosts: { n1: "127.0.10.21", n2: "127.0.10.22", waypoint: "127.0.10.23" },
    yaml: MESH,
    tmpPrefix: "ambit-wpauth",
    curlTimeoutS: 20,
    curlMaxBuffer: 4 * 1024 * 1024,
    eventuallyMs: 20_000,
    eventuallyIntervalMs: 150,
  });
  const { work } = mesh;
  let n2: NodeProcess;
  let wp: NodeProcess;
  let grpcAuthz: grpc.Server | undefined;
  const servers: net.Server[] = [];
  const seen: Record<string, Echoed[]> = {};
  const grpcChecks: CheckRequestMessage[] = [];
  let httpChecks = 0;
  let jwksFetches = 0;
  let inline: Issuer;
  let remote: Issuer;
  let stranger: Issuer;

  const bearer = (t: string): string[] => ["-H", `authorization: Bearer ${t}`];

  function listen(srv: net.Server, port: number, ip: string): Promise<void> {
    servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(port, ip, () => resolve());
    });
  }

  function echoServer(app: string, ip: string): Promise<void> {
    const srv = http.createServer((req, res) => {
      let bodyBytes = 0;
      req.on("data", (c: Buffer) => (bodyBytes += c.length));
      req.on("end", () => {
        const echoed = { app, path: req.url ?? "", headers: req.headers, bodyBytes };
        (seen[app] ??= []).push(echoed);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(echoed));
      });
    });
    return listen(srv, 8080, ip);
  }

  /** The HTTP authorizer: allows `x-ext-authz: allow`, adds headers for the upstream; else 403. */
  function httpAuthorizer(): Promise<void> {
    const srv = http.createServer((req, res) => {
      httpChecks++;
      req.resume();
      if (req.headers["x-ext-authz"] === "allow") {
        res.writeHead(200, {
          "x-authz-user": "http-alice",
          "x-ext-authz-check-result": "allowed",
          "x-authz-trace": "http-1",
          "x-not-forwarded": "1",
        });
        res.end();
      } else {
        res.writeHead(403, { "x-ext-authz-check-result": "denied", "x-other": "hidden" });
        res.end("denied by the http authorizer");
      }
    });
    return listen(srv, AUTHZ_HTTP_PORT, AUTHZ_HTTP_IP);
  }

  async function grpcAuthorizer(): Promise<void> {
    const server = new grpc.Server();
    server.addService(extAuthzServiceClient().service, {
      Check: (call: grpc.ServerUnaryCall<CheckRequestMessage, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        grpcChecks.push(call.request);
        if (call.request.attributes.request.http.headers["x-ext-authz"] === "allow") {
          cb(null, {
            status: { code: 0 },
            okResponse: {
              headers: [{ header: { key: "x-authz-user", value: "grpc-bob" } }],
              responseHeadersToAdd: [{ header: { key: "x-authz-trace", value: "grpc-1" } }],
            },
          });
        } else {
          cb(null, {
            status: { code: grpc.status.PERMISSION_DENIED },
            deniedResponse: { status: { code: 403 }, body: "denied by the grpc authorizer" },
          });
        }
      },
    });
    await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `${AUTHZ_GRPC_IP}:${AUTHZ_GRPC_PORT}`,
        grpc.ServerCredentials.createInsecure(),
        (e, p) => (e ? reject(e) : resolve(p)),
      ),
    );
    grpcAuthz = server;
  }

  before(async () => {
    inline = await issuer(INLINE_ISS, "inline-1");
    remote = await issuer(REMOTE_ISS, "remote-1");
    stranger = await issuer(INLINE_ISS, "inline-1"); // same iss and kid, another key
    await mesh.start(async () => {
      await echoServer("echo", ECHO_IP);
      await echoServer("api", API_IP);
      await httpAuthorizer();
      await grpcAuthorizer();
      const jwks = http.createServer((req, res) => {
        jwksFetches++;
        if (req.url !== "/jwks.json") return void res.writeHead(404).end();
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(remote.jwks));
      });
      await listen(jwks, JWKS_PORT, JWKS_IP);
    });
    ({ n2, wp } = mesh);
  });

  after(async () => {
    await mesh.stop(() => {
      grpcAuthz?.forceShutdown();
      for (const s of servers) s.close();
    });
  });

  test("the istio ConfigMap is validated at apply time: a bad provider is named by file and field path", async () => {
    const file = join(work, "bad-mesh.yaml");
    writeFileSync(
      file,
      meshConfig(1)
        .replace(`port: ${AUTHZ_HTTP_PORT}`, "port: 70000")
        .replace("timeout: 5s", "timeout: soon"),
    );
    const v = await runAmbit(["validate", "-f", file]);
    assert.notEqual(v.code, 0);
    const out = v.stdout + v.stderr;
    assert.match(
      out,
      /bad-mesh\.yaml:\d+ \(document 1\) ConfigMap istio-system\/istio: data\.mesh\.extensionProviders\[0\]\.envoyExtAuthzHttp\.port: /,
    );
    assert.match(out, /data\.mesh\.extensionProviders\[0\]\.envoyExtAuthzHttp\.timeout: /);
    const a = await runAmbit(["apply", "-f", file, ...mesh.admin()]);
    assert.notEqual(a.code, 0);
    assert.match(a.stdout + a.stderr, /extensionProviders\[0\]\.envoyExtAuthzHttp\.port/);
    assert.match(a.stdout + a.stderr, /AMBIT_E_INVALID_VALUE/);

    const other = join(work, "other-cm.yaml");
    writeFileSync(
      other,
      "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: app, namespace: shop }\ndata: { a: b }\n",
    );
    const o = await runAmbit(["apply", "-f", other, ...mesh.admin()]);
    assert.notEqual(o.code, 0);
    assert.match(o.stdout + o.stderr, /ConfigMap shop\/app: metadata\.name: .*istio-system\/istio/);

    // The good one applies, and reads back as written.
    await mesh.apply(meshConfig(await freePort(AUTHZ_HTTP_IP)), "meshconfig");
    const g = await runAmbit([
      "get",
      "configmap",
      "istio",
      "-n",
      "istio-system",
      "-o",
      "yaml",
      ...mesh.admin(),
    ]);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /envoyExtAuthzGrpc/);
  });

  const JWT = (): string => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: api-jwt, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: api }]
  jwtRules:
    - issuer: ${INLINE_ISS}
      jwks: '${JSON.stringify(inline.jwks)}'
      outputPayloadToHeader: x-jwt-payload
    - issuer: ${REMOTE_ISS}
      jwksUri: ${REMOTE_ISS}/jwks.json
      outputClaimToHeaders: [{ header: x-jwt-team, claim: team }]
`;

  test("JWT: inline jwks and jwksUri; valid → 200 with the payload header, bad/expired → 401, none → anonymous", async () => {
    await mesh.apply(JWT(), "jwt");
    const bad = await token(stranger, "mallory");
    await mesh.eventually(
      async () => (await mesh.curl(`http://${API_VIP}/probe`, bearer(bad))).status === 401,
      "JWT pushed",
    );

    // (a) inline jwks: the backend gets the payload segment, not the token (forwardOriginalToken false).
    const alice = await token(inline, "alice", { extra: { team: "red" } });
    const a = await mesh.curlJson<Echoed>(`http://${API_VIP}/inline`, bearer(alice));
    assert.equal(a.app, "api");
    assert.equal(a.headers["x-jwt-payload"], alice.split(".")[1]);
    assert.equal(a.headers["authorization"], undefined);
    // A client cannot forge the output header.
    const forged = await mesh.curlJson<Echoed>(`http://${API_VIP}/forged`, ["-H", "x-jwt-payload: forged"]);
    assert.equal(forged.headers["x-jwt-payload"], undefined);

    // (b) jwksUri over HTTP on loopback: fetched, cached, claim copied to a header.
    const carol = await token(remote, "carol", { extra: { team: "blue" } });
    const c = await mesh.curlJson<Echoed>(`http://${API_VIP}/remote`, bearer(carol));
    assert.equal(c.headers["x-jwt-team"], "blue");
    assert.ok(jwksFetches >= 1);
    const fetches = jwksFetches;
    for (let i = 0; i < 3; i++) await mesh.curlJson<Echoed>(`http://${API_VIP}/remote`, bearer(carol));
    assert.equal(jwksFetches, fetches, "keys are cached, not fetched per request");

    // Bad signature, expired, malformed, unknown issuer → 401 with Envoy's texts.
    const badSig = await mesh.curl(`http://${API_VIP}/x`, bearer(bad));
    assert.equal(badSig.status, 401);
    assert.match(
      badSig.headers,
      /^www-authenticate: Bearer realm="http:\/\/10\.96\.21\.11\/x", error="invalid_token"/im,
    );
    const expired = await token(inline, "alice", { expiresAt: Math.floor(Date.now() / 1000) - 600 });
    const e = await mesh.curl(`http://${API_VIP}/x`, bearer(expired));
    assert.equal(e.status, 401);
    assert.equal(e.body, "Jwt is expired");
    assert.equal((await mesh.curl(`http://${API_VIP}/x`, bearer("not.a-token"))).status, 401);
    const unknown = await token(await issuer("https://unknown.test", "u"), "u");
    const u = await mesh.curl(`http://${API_VIP}/x`, bearer(unknown));
    assert.equal(u.status, 401);
    assert.equal(u.body, "Jwt issuer is not configured");

    // No token: anonymous, allowed (no AuthorizationPolicy requires one yet).
    assert.equal((await mesh.curlJson<Echoed>(`http://${API_VIP}/anon`)).app, "api");

    // Service echo has no RequestAuthentication: its requests are not checked at all.
    assert.equal((await mesh.curl(`http://${ECHO_VIP}/plain`, bearer(bad))).status, 200);

    await until(() =>
      wp
        .accessLog()
        .some(
          (l) => l.path === "/inline" && l.request_principal === `${INLINE_ISS}/alice` && l.status === 200,
        ),
    );
    await until(() =>
      wp.accessLog().some((l) => l.path === "/x" && l.reason === "jwt_expired" && l.status === 401),
    );
    const m = await wp.metrics();
    assert.ok(counter(m, "ambit_waypoint_jwt_authn_total", { result: "valid" }) >= 5, m);
    assert.ok(counter(m, "ambit_waypoint_jwt_authn_total", { result: "jwt_expired" }) >= 1, m);
    assert.ok(counter(m, "ambit_waypoint_jwt_authn_total", { result: "jwt_invalid" }) >= 2, m);
    assert.ok(counter(m, "ambit_waypoint_jwt_authn_total", { result: "jwt_issuer_unknown" }) >= 1, m);
    assert.ok(counter(m, "ambit_waypoint_jwt_authn_total", { result: "absent" }) >= 1, m);
  });

  test("JWT + AuthorizationPolicy requestPrincipals: only alice's token is allowed; no token → 403", async () => {
    await mesh.apply(JWT(), "jwt");
    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-alice, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: api }]
  action: ALLOW
  rules: [{ from: [{ source: { requestPrincipals: ["${INLINE_ISS}/alice", "${REMOTE_ISS}/carol"] } }] }]
`;
    await mesh.apply(policy, "api-alice");
    try {
      await mesh.eventually(
        async () => (await mesh.curl(`http://${API_VIP}/who`)).status === 403,
        "policy pushed",
      );
      const alice = await token(inline, "alice");
      const bob = await token(inline, "bob");
      const carol = await token(remote, "carol");
      assert.equal((await mesh.curlJson<Echoed>(`http://${API_VIP}/who`, bearer(alice))).app, "api");
      assert.equal((await mesh.curlJson<Echoed>(`http://${API_VIP}/who`, bearer(carol))).app, "api");
      const b = await mesh.curl(`http://${API_VIP}/who-bob`, bearer(bob));
      assert.equal(b.status, 403);
      assert.equal(b.body, "RBAC: access denied");
      assert.equal((await mesh.curl(`http://${API_VIP}/who`)).status, 403);
      await until(() =>
        wp
          .accessLog()
          .some(
            (l) =>
              l.path === "/who-bob" &&
              l.decision === "DENY" &&
              l.request_principal === `${INLINE_ISS}/bob` &&
              l.status === 403,
          ),
      );
    } finally {
      await mesh.remove(policy, "api-alice");
    }
  });

  test("ext_authz over HTTP (outside the mesh): allow adds headers for the backend, deny answers the authorizer's 403", async () => {
    await mesh.apply(meshConfig(await freePort(AUTHZ_HTTP_IP)), "meshconfig");
    await mesh.apply(CUSTOM, "custom");
    await mesh.eventually(
      async () => (await mesh.curl(`http://${ECHO_VIP}/authz-http/x`)).status === 403 && httpChecks > 0,
      "providers and CUSTOM policies pushed",
    );
    const okRes = await mesh.curl(`http://${ECHO_VIP}/authz-http/ok`, ["-H", "x-ext-authz: allow"]);
    assert.equal(okRes.status, 200, okRes.body);
    assert.match(
      okRes.headers,
      /^x-authz-trace: http-1\r?$/im,
      "headersToDownstreamOnAllow reach the client",
    );
    const ok = JSON.parse(okRes.body) as Echoed;
    assert.equal(ok.headers["x-authz-user"], "http-alice");
    assert.equal(ok.headers["x-ext-authz-check-result"], "allowed");
    assert.equal(ok.headers["x-not-forwarded"], undefined, "only headersToUpstreamOnAllow reach the backend");

    // A body sent with the headers (no 100-continue) waits while the authorizer is asked, and
    // then reaches the backend whole.
    const posted = await mesh.curlJson<Echoed>(`http://${ECHO_VIP}/authz-http/post`, [
      "-H",
      "x-ext-authz: allow",
      "-H",
      "expect:",
      "--data-binary",
      "x".repeat(100_000),
    ]);
    assert.equal(posted.bodyBytes, 100_000);

    const before = httpChecks;
    const no = await mesh.curl(`http://${ECHO_VIP}/authz-http/no`, ["-H", "x-ext-authz: deny"]);
    assert.equal(no.status, 403);
    assert.equal(no.body, "denied by the http authorizer");
    assert.match(no.headers, /^x-ext-authz-check-result: denied/im);
    assert.doesNotMatch(no.headers, /^x-other:/im);
    assert.equal(httpChecks, before + 1);
    // Paths no CUSTOM policy names are not sent to any authorizer.
    assert.equal((await mesh.curlJson<Echoed>(`http://${ECHO_VIP}/public`)).app, "echo");
    assert.equal(httpChecks, before + 1);

    await until(() =>
      wp
        .accessLog()
        .some(
          (l) =>
            l.path === "/authz-http/no" &&
            l.decision === "DENY" &&
            l.policy === "shop/ext-authz-http" &&
            String(l.flags).includes("UAEX"),
        ),
    );
    await until(() =>
      wp
        .accessLog()
        .some(
          (l) =>
            l.path === "/authz-http/ok" && String(l.reason).includes("CUSTOM allowed by shop/ext-authz-http"),
        ),
    );
    const m = await wp.metrics();
    assert.ok(
      counter(m, "ambit_waypoint_ext_authz_total", { provider: "authz-http", result: "allowed" }) >= 1,
      m,
    );
    assert.ok(
      counter(m, "ambit_waypoint_ext_authz_total", { provider: "authz-http", result: "denied" }) >= 1,
      m,
    );
  });

  test("ext_authz over gRPC to a mesh Service: reached over HBONE with the waypoint's identity; allow and deny", async () => {
    await mesh.apply(meshConfig(await freePort(AUTHZ_HTTP_IP)), "meshconfig");
    await mesh.apply(CUSTOM, "custom");
    await mesh.eventually(
      async () => (await mesh.curl(`http://${ECHO_VIP}/authz-grpc/x`)).status === 403,
      "CUSTOM pushed",
    );
    const okRes = await mesh.curl(`http://${ECHO_VIP}/authz-grpc/ok?q=1`, ["-H", "x-ext-authz: allow"]);
    assert.equal(okRes.status, 200, okRes.body);
    assert.match(
      okRes.headers,
      /^x-authz-trace: grpc-1\r?$/im,
      "ok_response.response_headers_to_add reach the client",
    );
    const ok = JSON.parse(okRes.body) as Echoed;
    assert.equal(ok.headers["x-authz-user"], "grpc-bob");
    const check = grpcChecks.find((c) => c.attributes.request.http.path === "/authz-grpc/ok?q=1");
    assert.ok(check, "the authorizer saw the request");
    assert.equal(check.attributes.source.principal, CLIENT_ID);

    const no = await mesh.curl(`http://${ECHO_VIP}/authz-grpc/no`);
    assert.equal(no.status, 403);
    assert.equal(no.body, "denied by the grpc authorizer");

    // The authorizer's node proxy accepted an HBONE connection from the waypoint's identity.
    const n2m = await n2.metrics();
    assert.ok(
      counter(n2m, "istio_tcp_connections_opened_total", {
        reporter: "destination",
        source_principal: WAYPOINT_ID,
        destination_principal: "spiffe://cluster.local/ns/shop/sa/authz",
      }) >= 1,
      n2m,
    );
    const m = await wp.metrics();
    assert.ok(
      counter(m, "ambit_waypoint_ext_authz_total", { provider: "authz-grpc", result: "allowed" }) >= 1,
      m,
    );
    assert.ok(
      counter(m, "ambit_waypoint_ext_authz_total", { provider: "authz-grpc", result: "denied" }) >= 1,
      m,
    );
  });

  test("load (h2load, 600 requests each): no auth, JWT, ext_authz HTTP and gRPC all succeed; rates reported", async (t) => {
    await mesh.apply(JWT(), "jwt");
    await mesh.apply(meshConfig(await freePort(AUTHZ_HTTP_IP)), "meshconfig");
    await mesh.apply(CUSTOM, "custom");
    await mesh.eventually(
      async () => (await mesh.curl(`http://${ECHO_VIP}/authz-grpc/x`)).status === 403,
      "CUSTOM pushed",
    );
    const alice = await token(inline, "alice");
    const cases: [string, string, string[]][] = [
      ["baseline", `${ECHO_VIP}/public/load`, []],
      ["jwt", `${API_VIP}/load`, ["-H", `authorization: Bearer ${alice}`]],
      ["ext_authz http", `${ECHO_VIP}/authz-http/load`, ["-H", "x-ext-authz: allow"]],
      ["ext_authz grpc", `${ECHO_VIP}/authz-grpc/load`, ["-H", "x-ext-authz: allow"]],
    ];
    for (const [label, target, headers] of cases) {
      const [ip, ...rest] = target.split("/");
      const fwd = await socksForwarder(
        { host: CLIENT_IP, port: 15001 },
        { ip: ip ?? "", port: 80 },
        CLIENT_IP,
      );
      try {
        const { stdout } = await run(
          "h2load",
          ["-n", "600", "-c", "4", "-m", "8", ...headers, `http://127.0.0.1:${fwd.port}/${rest.join("/")}`],
          { timeout: 120_000 },
        );
        assert.match(stdout, /600 succeeded, 0 failed, 0 errored/, `${label}: ${stdout}`);
        assert.match(stdout, /status codes: 600 2xx/, `${label}: ${stdout}`);
        const rate = /finished in [^,]+, ([\d.]+) req\/s/.exec(stdout)?.[1];
        const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(stdout)?.[1];
        t.diagnostic(`${label}: ${rate} req/s, mean ${mean} per request`);
      } finally {
        fwd.close();
      }
    }
  });

  test("authorizer down: 403 (fail closed) while other traffic keeps flowing; failOpen lets requests through", async () => {
    await mesh.apply(meshConfig(await freePort(AUTHZ_HTTP_IP)), "meshconfig");
    await mesh.apply(CUSTOM, "custom");
    await mesh.eventually(
      async () => (await mesh.curl(`http://${ECHO_VIP}/authz-down/x`)).status === 403,
      "CUSTOM pushed",
    );
    const down = await mesh.curl(`http://${ECHO_VIP}/authz-down/x`, ["-H", "x-ext-authz: allow"]);
    assert.equal(down.status, 403);
    const open = await mesh.curlJson<Echoed>(`http://${ECHO_VIP}/authz-down-open/x`, [
      "-H",
      "x-ext-authz: allow",
    ]);
    assert.equal(open.app, "echo");
    assert.equal((await mesh.curlJson<Echoed>(`http://${ECHO_VIP}/public`)).app, "echo");

    // Stop the gRPC authorizer: its checks now fail closed; everything else still works.
    grpcAuthz?.forceShutdown();
    grpcAuthz = undefined;
    const t0 = Date.now();
    const g = await mesh.curl(`http://${ECHO_VIP}/authz-grpc/after-stop`, ["-H", "x-ext-authz: allow"]);
    assert.equal(g.status, 403);
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
    for (let i = 0; i < 5; i++) {
      assert.equal((await mesh.curlJson<Echoed>(`http://${ECHO_VIP}/public/${i}`)).app, "echo");
      assert.equal(
        (await mesh.curlJson<Echoed>(`http://${ECHO_VIP}/authz-http/${i}`, ["-H", "x-ext-authz: allow"])).app,
        "echo",
      );
      assert.equal((await mesh.curlJson<Echoed>(`http://${API_VIP}/still/${i}`)).app, "api");
    }
    await until(() =>
      wp
        .accessLog()
        .some(
          (l) =>
            l.path === "/authz-grpc/after-stop" && l.status === 403 && l.policy === "shop/ext-authz-grpc",
        ),
    );
    const m = await wp.metrics();
    assert.ok(
      counter(m, "ambit_waypoint_ext_authz_total", { provider: "authz-down", result: "error" }) >= 1,
      m,
    );
    assert.ok(
      counter(m, "ambit_waypoint_ext_authz_total", { provider: "authz-grpc", result: "error" }) >= 1,
      m,
    );
    assert.ok(
      counter(m, "ambit_waypoint_ext_authz_total", { provider: "authz-down-open", result: "failed_open" }) >=
        1,
      m,
    );
  });

  test("a CUSTOM policy whose provider is not in the mesh config denies", async () => {
    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext-missing, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: CUSTOM
  provider: { name: no-such-provider }
  rules: [{ to: [{ operation: { paths: ["/missing/*"] } }] }]
`;
    await mesh.apply(policy, "missing");
    try {
      await mesh.eventually(
        async () => (await mesh.curl(`http://${ECHO_VIP}/missing/x`)).status === 403,
        "policy pushed",
      );
      assert.equal((await mesh.curlJson<Echoed>(`http://${ECHO_VIP}/public`)).app, "echo");
      const m = await wp.metrics();
      assert.ok(
        counter(m, "ambit_waypoint_ext_authz_total", {
          provider: "no-such-provider",
          result: "unknown_provider",
        }) >= 1,
        m,
      );
    } finally {
      await mesh.remove(policy, "missing");
    }
  });
});
