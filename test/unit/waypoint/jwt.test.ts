// The waypoint's RequestAuthentication filter with real keys (ES256 and RS256 made by jose here):
// inline key sets, signature/issuer/audience/expiry failures, token locations (Authorization,
// access_token, fromHeaders with prefix, fromParams, fromCookies), output headers, attachment
// by targetRefs, and jwksUri key sets served by a loopback HTTP server (fetch, cache, refresh,
// failures with and without last good keys, timeout, OpenID discovery).
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { pino } from "pino";
import { silentLogger, type Logger } from "../../../src/core/log.js";
import { loadTexts } from "../../../src/model/resources/load.js";
import type { RequestAuthentication } from "../../../src/model/resources/registry.js";
import { JwtFilter, type JwtFilterOptions } from "../../../src/waypoint/filters/jwt.js";
import { attachmentOf } from "../../../src/waypoint/filters/jwt-rules.js";
import type { FilterOutcome, WaypointRequest } from "../../../src/waypoint/filters/types.js";

const ISSUER = "https://issuer.example.com";
const GATEWAY = { namespace: "shop", name: "waypoint" };
const ROOT = "istio-system";
const T0 = Date.parse("2026-06-01T12:00:00Z");

interface KeyPair {
  priv: CryptoKey;
  jwk: JWK;
  alg: "ES256" | "RS256";
}

async function keyPair(alg: "ES256" | "RS256", kid: string): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { priv: privateKey, jwk, alg };
}

let es: KeyPair;
let rs: KeyPair;
/** Same kid as `es`, different key: its signatures must not verify. */
let impostor: KeyPair;

before(async () => {
  es = await keyPair("ES256", "es-1");
  rs = await keyPair("RS256", "rs-1");
  impostor = await keyPair("ES256", "es-1");
});

interface SignOpts {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  /** Seconds relative to the clock; null for no exp. */
  exp?: number | null;
  nbf?: number;
  now?: number;
  extra?: JWTPayload;
}

async function sign(k: KeyPair, o: SignOpts = {}): Promise<string> {
  const now = Math.floor((o.now ?? T0) / 1000);
  const jwt = new SignJWT({ ...o.extra })
    .setProtectedHeader({ alg: k.alg, kid: k.jwk.kid ?? "" })
    .setIssuer(o.iss ?? ISSUER)
    .setSubject(o.sub ?? "alice")
    .setIssuedAt(now);
  if (o.aud !== undefined) jwt.setAudience(o.aud);
  if (o.exp !== null) jwt.setExpirationTime(now + (o.exp ?? 3600));
  if (o.nbf !== undefined) jwt.setNotBefore(now + o.nbf);
  return jwt.sign(k.priv);
}

function jwks(...keys: KeyPair[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.jwk) });
}

/** A RequestAuthentication through the real loader (validated and defaulted). */
function ra(
  name: string,
  spec: Record<string, unknown>,
  namespace = GATEWAY.namespace,
): RequestAuthentication {
  const doc = {
    apiVersion: "security.istio.io/v1",
    kind: "RequestAuthentication",
    metadata: { name, namespace },
    spec,
  };
  const r = loadTexts([{ file: "ra.yaml", text: JSON.stringify(doc) }]);
  assert.deepEqual(r.problems, [], JSON.stringify(r.problems));
  return r.resources[0] as RequestAuthentication;
}

const toWaypoint = [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: GATEWAY.name }];

function req(
  o: { headers?: Record<string, string | string[]>; path?: string; service?: string | null } = {},
): WaypointRequest {
  const headers = new Map<string, string[]>();
  for (const [k, v] of Object.entries(o.headers ?? {})) headers.set(k, Array.isArray(v) ? v : [v]);
  const service = o.service === undefined ? "backend" : o.service;
  return {
    method: "GET",
    path: o.path ?? "/api",
    authority: "backend.shop.svc.cluster.local",
    headers,
    protocol: "HTTP/1.1",
    grpc: false,
    source: { principal: "cluster.local/ns/shop/sa/client", ip: "10.0.0.1", namespace: "shop" },
    destination: {
      service: service
        ? { name: service, namespace: "shop", host: `${service}.shop.svc.cluster.local` }
        : null,
      port: 8080,
    },
    gateway: GATEWAY,
    jwt: null,
  };
}

async function run(f: JwtFilter, r: WaypointRequest): Promise<FilterOutcome> {
  const q = r.path.indexOf("?");
  return f.jwt(r, new URLSearchParams(q >= 0 ? r.path.slice(q + 1) : ""));
}

function assertRejected(out: FilterOutcome, reason: string, body?: string): void {
  assert.equal(out.action, "respond", `expected a 401 (${reason}), got ${JSON.stringify(out)}`);
  if (out.action !== "respond") return;
  assert.equal(out.status, 401);
  assert.equal(out.reason, reason);
  if (body !== undefined) assert.equal(out.body, body);
  assert.match(
    out.headers?.["www-authenticate"] ?? "",
    /^Bearer realm="http:\/\/[^"]*", error="invalid_token"$/,
  );
}

let clock = T0;
const filters: JwtFilter[] = [];

function filter(resources: RequestAuthentication[], opts: Partial<JwtFilterOptions> = {}): JwtFilter {
  const f = new JwtFilter({ log: silentLogger(), now: () => clock, ...opts });
  f.update(resources, GATEWAY, ROOT);
  filters.push(f);
  return f;
}

after(() => {
  for (const f of filters) f.close();
});

function inline(extra: Record<string, unknown> = {}, keys = jwks(es, rs)): RequestAuthentication {
  return ra("jwt", { targetRefs: toWaypoint, jwtRules: [{ issuer: ISSUER, jwks: keys, ...extra }] });
}

describe("inline jwks: verification", () => {
  test("an ES256 token verifies, sets req.jwt and loses its Authorization header", async () => {
    const f = filter([inline()]);
    const token = await sign(es, { extra: { role: "admin" } });
    const r = req({ headers: { authorization: `Bearer ${token}`, "x-other": "1" } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.iss, ISSUER);
    assert.equal(r.jwt?.sub, "alice");
    assert.equal(r.jwt?.claims.role, "admin");
    assert.equal(r.headers.has("authorization"), false, "forwardOriginalToken defaults to false");
    assert.deepEqual(r.headers.get("x-other"), ["1"]);
  });

  test("an RS256 token verifies against the same set; the scheme is case-insensitive", async () => {
    const f = filter([inline()]);
    const r = req({ headers: { authorization: `bearer ${await sign(rs, { sub: "bob" })}` } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.sub, "bob");
  });

  test("no token: continue with req.jwt null", async () => {
    const f = filter([inline()]);
    const r = req({ headers: { authorization: "Basic dXNlcjpwdw==" } });
    r.jwt = { iss: "stale", sub: "stale", claims: {} };
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt, null);
    assert.deepEqual(r.headers.get("authorization"), ["Basic dXNlcjpwdw=="]);
  });

  test("a signature by another key with the same kid → 401 jwt_invalid 'Jwt verification fails'", async () => {
    const f = filter([inline()]);
    const r = req({ headers: { authorization: `Bearer ${await sign(impostor)}` } });
    assertRejected(await run(f, r), "jwt_invalid", "Jwt verification fails");
    assert.equal(r.jwt, null);
  });

  test("a tampered payload → 401 jwt_invalid", async () => {
    const f = filter([inline()]);
    const [h, , s] = (await sign(es)).split(".");
    const forged = Buffer.from(JSON.stringify({ iss: ISSUER, sub: "root", exp: 9e9 })).toString("base64url");
    assertRejected(
      await run(f, req({ headers: { authorization: `Bearer ${h}.${forged}.${s}` } })),
      "jwt_invalid",
    );
  });

  test("a kid the set does not have → 401 jwt_invalid", async () => {
    const f = filter([inline({}, jwks(rs))]);
    assertRejected(
      await run(f, req({ headers: { authorization: `Bearer ${await sign(es)}` } })),
      "jwt_invalid",
    );
  });

  test("several keys fit (no kid): each is tried", async () => {
    const noKid = (k: KeyPair): KeyPair => ({ ...k, jwk: { ...k.jwk, kid: undefined } });
    const other = await keyPair("ES256", "x");
    const f = filter([inline({}, jwks(noKid(other), noKid(es)))]);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer(ISSUER)
      .setSubject("carol")
      .sign(es.priv);
    const r = req({ headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.sub, "carol");
    const bad = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer(ISSUER)
      .sign(impostor.priv);
    assertRejected(await run(f, req({ headers: { authorization: `Bearer ${bad}` } })), "jwt_invalid");
  });

  test("an issuer no rule names → 401 jwt_issuer_unknown", async () => {
    const f = filter([inline()]);
    const r = req({
      headers: { authorization: `Bearer ${await sign(es, { iss: "https://evil.example" })}` },
    });
    assertRejected(await run(f, r), "jwt_issuer_unknown", "Jwt issuer is not configured");
  });

  test("audiences: any one match passes; none → 401 jwt_audience", async () => {
    const f = filter([inline({ audiences: ["shop", "orders"] })]);
    const ok = req({ headers: { authorization: `Bearer ${await sign(es, { aud: ["other", "orders"] })}` } });
    assert.deepEqual(await run(f, ok), { action: "continue" });
    const wrong = req({ headers: { authorization: `Bearer ${await sign(es, { aud: "billing" })}` } });
    assertRejected(await run(f, wrong), "jwt_audience", "Audiences in Jwt are not allowed");
    const none = req({ headers: { authorization: `Bearer ${await sign(es)}` } });
    assertRejected(await run(f, none), "jwt_audience");
  });

  test("no audiences configured: any aud is accepted", async () => {
    const f = filter([inline()]);
    const r = req({ headers: { authorization: `Bearer ${await sign(es, { aud: "anything" })}` } });
    assert.deepEqual(await run(f, r), { action: "continue" });
  });

  test("exp: expired beyond 60 s of skew → 401 jwt_expired; within the skew → accepted", async () => {
    const f = filter([inline()]);
    const expired = await sign(es, { now: T0 - 3600_000, exp: 3600 - 61 });
    assertRejected(
      await run(f, req({ headers: { authorization: `Bearer ${expired}` } })),
      "jwt_expired",
      "Jwt is expired",
    );
    const justExpired = await sign(es, { now: T0 - 3600_000, exp: 3600 - 30 });
    assert.deepEqual(await run(f, req({ headers: { authorization: `Bearer ${justExpired}` } })), {
      action: "continue",
    });
    const noExp = await sign(es, { exp: null });
    assert.deepEqual(await run(f, req({ headers: { authorization: `Bearer ${noExp}` } })), {
      action: "continue",
    });
  });

  test("nbf: in the future beyond the skew → 401; within it → accepted", async () => {
    const f = filter([inline()]);
    const early = await sign(es, { nbf: 120 });
    assertRejected(
      await run(f, req({ headers: { authorization: `Bearer ${early}` } })),
      "jwt_invalid",
      "Jwt not yet valid",
    );
    const almost = await sign(es, { nbf: 30 });
    assert.deepEqual(await run(f, req({ headers: { authorization: `Bearer ${almost}` } })), {
      action: "continue",
    });
  });

  test("garbage a client can send is a 401, never an exception", async () => {
    const f = filter([inline()]);
    const junk = [
      "abc",
      "a.b.c",
      "..",
      "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbSJ9.",
      `${Buffer.from("{").toString("base64url")}.${Buffer.from("[]").toString("base64url")}.x`,
      "\u0000\uffff".repeat(1000),
      "x".repeat(100_000),
    ];
    for (const t of junk) {
      const out = await run(f, req({ headers: { authorization: `Bearer ${t}` } }));
      assert.equal(out.action, "respond", `token ${JSON.stringify(t.slice(0, 40))}`);
      if (out.action === "respond") assert.equal(out.status, 401);
    }
  });

  test("every token presented must verify (valid header + bad access_token → 401)", async () => {
    const f = filter([inline()]);
    const good = await sign(es);
    const r = req({
      headers: { authorization: `Bearer ${good}` },
      path: `/a?access_token=${await sign(impostor)}`,
    });
    assertRejected(await run(f, r), "jwt_invalid");
    const both = req({
      headers: { authorization: `Bearer ${good}` },
      path: `/a?access_token=${await sign(rs)}`,
    });
    assert.deepEqual(await run(f, both), { action: "continue" });
  });

  test("the 401 realm carries host and path without the query, with quotes removed", async () => {
    const f = filter([inline()]);
    const r = req({ headers: { authorization: "Bearer x.y.z" }, path: '/p"q?access_token=a' });
    const out = await run(f, r);
    assert.equal(out.action, "respond");
    if (out.action === "respond") {
      assert.equal(
        out.headers?.["www-authenticate"],
        'Bearer realm="http://backend.shop.svc.cluster.local/pq", error="invalid_token"',
      );
    }
  });

  test("an inline jwks whose keys cannot be used → 401 jwks_unavailable", async () => {
    const f = filter([inline({}, JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "!!", y: "??" }] }))]);
    const out = await run(f, req({ headers: { authorization: `Bearer ${await sign(es)}` } }));
    assert.equal(out.action, "respond");
  });
});

describe("token locations", () => {
  test("access_token query parameter by default", async () => {
    const f = filter([inline()]);
    const r = req({ path: `/api?access_token=${await sign(es)}` });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.sub, "alice");
  });

  test("fromHeaders with a prefix: the prefix is stripped; other locations are not looked at", async () => {
    const f = filter([inline({ fromHeaders: [{ name: "X-Jwt-Assertion", prefix: "Token " }] })]);
    const token = await sign(es);
    const r = req({
      headers: { "x-jwt-assertion": `Token ${token}`, authorization: `Bearer ${await sign(impostor)}` },
      path: "/a?access_token=garbage",
    });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.sub, "alice");
    assert.equal(r.headers.has("x-jwt-assertion"), false, "the token's header is removed");
    assert.equal(r.headers.has("authorization"), true, "Authorization is not a token location here");

    const noPrefix = req({ headers: { "x-jwt-assertion": token } });
    assert.deepEqual(await run(f, noPrefix), { action: "continue" });
    assert.equal(noPrefix.jwt, null, "a value without the prefix is no token");

    const bad = req({ headers: { "x-jwt-assertion": `Token ${await sign(impostor)}` } });
    assertRejected(await run(f, bad), "jwt_invalid");
  });

  test("fromHeaders without a prefix takes the whole value", async () => {
    const f = filter([inline({ fromHeaders: [{ name: "x-token" }] })]);
    const r = req({ headers: { "x-token": await sign(es) } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.sub, "alice");
  });

  test("fromParams: only the named parameters", async () => {
    const f = filter([inline({ fromParams: ["token"] })]);
    const r = req({ path: `/a?x=1&token=${await sign(es)}` });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.sub, "alice");
    const ignored = req({ path: `/a?access_token=${await sign(impostor)}` });
    assert.deepEqual(await run(f, ignored), { action: "continue" });
    assert.equal(ignored.jwt, null);
    assertRejected(await run(f, req({ path: `/a?token=${await sign(impostor)}` })), "jwt_invalid");
  });

  test("fromCookies", async () => {
    const f = filter([inline({ fromCookies: ["session"] })]);
    const r = req({ headers: { cookie: `a=1; session=${await sign(es)}; b=2` } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.sub, "alice");
    assertRejected(
      await run(f, req({ headers: { cookie: `session=${await sign(impostor)}` } })),
      "jwt_invalid",
    );
  });

  test("forwardOriginalToken: true keeps the header", async () => {
    const f = filter([inline({ forwardOriginalToken: true })]);
    const token = await sign(es);
    const r = req({ headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.deepEqual(r.headers.get("authorization"), [`Bearer ${token}`]);
  });
  test("a token is checked only by rules of its issuer that look where it was found", async () => {
    const other = "https://other.example";
    const f = filter([
      ra("two", {
        targetRefs: toWaypoint,
        jwtRules: [
          { issuer: ISSUER, jwks: jwks(es), fromHeaders: [{ name: "x-a" }] },
          { issuer: other, jwks: jwks(rs) },
        ],
      }),
    ]);
    const r = req({ headers: { "x-a": await sign(es) } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.iss, ISSUER);
    const misplaced = req({ headers: { authorization: `Bearer ${await sign(es)}` } });
    assertRejected(await run(f, misplaced), "jwt_issuer_unknown");
    const r2 = req({ headers: { authorization: `Bearer ${await sign(rs, { iss: other })}` } });
    assert.deepEqual(await run(f, r2), { action: "continue" });
  });
});

describe("output headers", () => {
  test("outputPayloadToHeader: base64url of the payload JSON", async () => {
    const f = filter([inline({ outputPayloadToHeader: "X-Jwt-Payload" })]);
    const r = req({ headers: { authorization: `Bearer ${await sign(es, { extra: { role: "admin" } })}` } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    const value = r.headers.get("x-jwt-payload");
    assert.equal(value?.length, 1);
    assert.match(value?.[0] ?? "", /^[A-Za-z0-9_-]+$/);
    const payload = JSON.parse(Buffer.from(value?.[0] ?? "", "base64url").toString("utf8")) as JWTPayload;
    assert.deepEqual(payload, r.jwt?.claims);
    assert.equal(payload.role, "admin");
  });

  test("a client-sent output header is dropped when no token verified it", async () => {
    const f = filter([
      inline({
        outputPayloadToHeader: "x-jwt-payload",
        outputClaimToHeaders: [{ header: "x-sub", claim: "sub" }],
      }),
    ]);
    const r = req({ headers: { "x-jwt-payload": "e30", "x-sub": "root" } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.headers.has("x-jwt-payload"), false);
    assert.equal(r.headers.has("x-sub"), false);
  });

  test("outputClaimToHeaders: strings, numbers, booleans, nested; objects skipped", async () => {
    const f = filter([
      inline({
        outputClaimToHeaders: [
          { header: "x-sub", claim: "sub" },
          { header: "x-level", claim: "level" },
          { header: "x-vip", claim: "vip" },
          { header: "x-team", claim: "org.team" },
          { header: "x-org", claim: "org" },
          { header: "x-missing", claim: "nope" },
        ],
      }),
    ]);
    const token = await sign(es, { extra: { level: 3, vip: true, org: { team: "payments" } } });
    const r = req({ headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.deepEqual(r.headers.get("x-sub"), ["alice"]);
    assert.deepEqual(r.headers.get("x-level"), ["3"]);
    assert.deepEqual(r.headers.get("x-vip"), ["true"]);
    assert.deepEqual(r.headers.get("x-team"), ["payments"]);
    assert.equal(r.headers.has("x-org"), false);
    assert.equal(r.headers.has("x-missing"), false);
  });

  test("a claim that would break the header line is not copied", async () => {
    const f = filter([inline({ outputClaimToHeaders: [{ header: "x-name", claim: "name" }] })]);
    const r = req({
      headers: { authorization: `Bearer ${await sign(es, { extra: { name: "a\r\nx-admin: 1" } })}` },
    });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.headers.has("x-name"), false);
    assert.equal(r.headers.has("x-admin"), false);
  });
});

describe("attachment", () => {
  const rule = (): Record<string, unknown> => ({ issuer: ISSUER, jwks: jwks(es) });

  test("targetRefs Gateway: this waypoint, in its namespace", () => {
    const yes = ra("a", { targetRefs: toWaypoint, jwtRules: [rule()] });
    assert.deepEqual(attachmentOf(yes, GATEWAY, ROOT), { waypoint: true, services: [] });
    const single = ra("b", { targetRef: toWaypoint[0], jwtRules: [rule()] });
    assert.equal(attachmentOf(single, GATEWAY, ROOT).waypoint, true);
    const otherName = ra("c", { targetRefs: [{ ...toWaypoint[0], name: "other" }], jwtRules: [rule()] });
    assert.equal(attachmentOf(otherName, GATEWAY, ROOT).waypoint, false);
    const otherNs = ra("d", { targetRefs: toWaypoint, jwtRules: [rule()] }, "billing");
    assert.equal(attachmentOf(otherNs, GATEWAY, ROOT).waypoint, false);
    const crossNs = ra("e", { targetRefs: [{ ...toWaypoint[0], namespace: "billing" }], jwtRules: [rule()] });
    assert.equal(attachmentOf(crossNs, GATEWAY, ROOT).waypoint, false);
  });

  test("GatewayClass istio-waypoint only from the root namespace", () => {
    const ref = { group: "gateway.networking.k8s.io", kind: "GatewayClass", name: "istio-waypoint" };
    assert.equal(attachmentOf(ra("a", { targetRefs: [ref] }, ROOT), GATEWAY, ROOT).waypoint, true);
    assert.equal(attachmentOf(ra("a", { targetRefs: [ref] }), GATEWAY, ROOT).waypoint, false);
  });

  test("selector policies and targetRef-less policies (even mesh-wide) do not bind a waypoint", () => {
    const sel = ra("s", { selector: { matchLabels: { app: "backend" } }, jwtRules: [rule()] });
    assert.deepEqual(attachmentOf(sel, GATEWAY, ROOT), { waypoint: false, services: [] });
    const ns = ra("n", { jwtRules: [rule()] });
    assert.deepEqual(attachmentOf(ns, GATEWAY, ROOT), { waypoint: false, services: [] });
    const mesh = ra("m", { jwtRules: [rule()] }, ROOT);
    assert.deepEqual(attachmentOf(mesh, GATEWAY, ROOT), { waypoint: false, services: [] });
  });

  test("targetRefs Service: only requests addressed to that Service", async () => {
    const p = ra("svc", {
      targetRefs: [{ kind: "Service", group: "", name: "backend" }],
      jwtRules: [rule()],
    });
    assert.deepEqual(attachmentOf(p, GATEWAY, ROOT), { waypoint: false, services: ["shop/backend"] });
    const f = filter([p]);
    const bad = `Bearer ${await sign(impostor)}`;
    assertRejected(await run(f, req({ headers: { authorization: bad }, service: "backend" })), "jwt_invalid");
    const other = req({ headers: { authorization: bad }, service: "frontend" });
    assert.deepEqual(await run(f, other), { action: "continue" });
    assert.equal(other.jwt, null);
    assert.deepEqual(other.headers.get("authorization"), [bad], "untouched where no policy applies");
    const none = req({ headers: { authorization: bad }, service: null });
    assert.deepEqual(await run(f, none), { action: "continue" });
  });

  test("unrelated policies leave tokens alone; rules of all attached policies merge", async () => {
    const other = "https://other.example";
    const unrelated = ra("u", { targetRefs: [{ ...toWaypoint[0], name: "elsewhere" }], jwtRules: [rule()] });
    assert.deepEqual(await run(filter([unrelated]), req({ headers: { authorization: "Bearer junk" } })), {
      action: "continue",
    });
    const f = filter([
      unrelated,
      ra("gw", { targetRefs: toWaypoint, jwtRules: [{ issuer: ISSUER, jwks: jwks(es) }] }),
      ra("svc", {
        targetRefs: [{ kind: "Service", name: "backend" }],
        jwtRules: [{ issuer: other, jwks: jwks(rs) }],
      }),
    ]);
    const fromOther = `Bearer ${await sign(rs, { iss: other })}`;
    const r = req({ headers: { authorization: fromOther } });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.iss, other);
    const r2 = req({ headers: { authorization: `Bearer ${await sign(es)}` } });
    assert.deepEqual(await run(f, r2), { action: "continue" });
    assert.equal(r2.jwt?.iss, ISSUER);
    assertRejected(
      await run(f, req({ headers: { authorization: fromOther }, service: "frontend" })),
      "jwt_issuer_unknown",
    );
  });

  test("update() replaces the rules", async () => {
    const f = filter([inline()]);
    const bad = req({ headers: { authorization: `Bearer ${await sign(impostor)}` } });
    assertRejected(await run(f, bad), "jwt_invalid");
    f.update([], GATEWAY, ROOT);
    assert.deepEqual(await run(f, req({ headers: { authorization: `Bearer ${await sign(impostor)}` } })), {
      action: "continue",
    });
  });
});

describe("jwksUri", () => {
  type Mode = "ok" | "fail" | "hang";
  const state = { mode: "ok" as Mode, body: "", fetches: 0, discovery: 0 };
  let server: http.Server;
  let base = "";

  before(async () => {
    server = http.createServer((rq, rs2) => {
      if (rq.url === "/.well-known/openid-configuration") {
        state.discovery++;
        rs2.setHeader("content-type", "application/json");
        rs2.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/keys` }));
        return;
      }
      state.fetches++;
      if (state.mode === "hang") return;
      if (state.mode === "fail") {
        rs2.statusCode = 503;
        rs2.end("down");
        return;
      }
      rs2.setHeader("content-type", "application/json");
      rs2.end(state.body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function reset(mode: Mode, body = jwks(es)): void {
    state.mode = mode;
    state.body = body;
    state.fetches = 0;
    state.discovery = 0;
  }

  const remote = (name = "remote", issuer = ISSUER): RequestAuthentication =>
    ra(name, { targetRefs: toWaypoint, jwtRules: [{ issuer, jwksUri: `${base}/keys` }] });

  const bearer = async (k: KeyPair, o: SignOpts = {}): Promise<WaypointRequest> =>
    req({ headers: { authorization: `Bearer ${await sign(k, { now: clock, ...o })}` } });

  test("fetched once and cached; refreshed after refreshMs; update() keeps the cache", async () => {
    clock = T0;
    reset("ok");
    const f = filter([remote()], { refreshMs: 60_000 });
    for (let i = 0; i < 3; i++) assert.deepEqual(await run(f, await bearer(es)), { action: "continue" });
    assert.equal(state.fetches, 1);
    assertRejected(await run(f, await bearer(impostor)), "jwt_invalid");
    assert.equal(state.fetches, 1);

    f.update([remote(), remote("another")], GATEWAY, ROOT);
    assert.deepEqual(await run(f, await bearer(es)), { action: "continue" });
    assert.equal(state.fetches, 1, "the same jwksUri keeps its cache across updates");

    // Key rotation: the server now has only the RSA key; after refreshMs the cache follows.
    state.body = jwks(rs);
    clock = T0 + 30_000;
    assert.deepEqual(await run(f, await bearer(es)), { action: "continue" });
    assert.equal(state.fetches, 1);
    clock = T0 + 60_001;
    assertRejected(await run(f, await bearer(es)), "jwt_invalid");
    assert.equal(state.fetches, 2);
    assert.deepEqual(await run(f, await bearer(rs)), { action: "continue" });
    assert.equal(state.fetches, 2);
    clock = T0;
  });

  test("concurrent requests share one fetch", async () => {
    clock = T0;
    reset("ok");
    const f = filter([remote()], { refreshMs: 60_000 });
    const reqs = await Promise.all([1, 2, 3, 4, 5].map(() => bearer(es)));
    const outs = await Promise.all(reqs.map((r) => run(f, r)));
    for (const o of outs) assert.deepEqual(o, { action: "continue" });
    assert.equal(state.fetches, 1);
    clock = T0 + 60_000;
    const again = await Promise.all([1, 2, 3].map(async () => run(f, await bearer(es))));
    for (const o of again) assert.deepEqual(o, { action: "continue" });
    assert.equal(state.fetches, 2);
    clock = T0;
  });

  test("a failed refresh keeps the last good keys", async () => {
    clock = T0;
    reset("ok");
    const f = filter([remote()], { refreshMs: 60_000 });
    assert.deepEqual(await run(f, await bearer(es)), { action: "continue" });
    assert.equal(state.fetches, 1);
    state.mode = "fail";
    clock = T0 + 120_000;
    assert.deepEqual(await run(f, await bearer(es)), { action: "continue" });
    assert.equal(state.fetches, 2, "the refresh was attempted");
    assertRejected(await run(f, await bearer(impostor)), "jwt_invalid");
    clock = T0;
  });

  test("no keys ever fetched → 401 jwks_unavailable, with a log line naming policy and URI", async () => {
    clock = T0;
    reset("fail");
    const lines: string[] = [];
    const log = pino({ level: "warn" }, { write: (s: string) => void lines.push(s) }) as Logger;
    const f = filter([remote("broken-keys")], { refreshMs: 60_000, log });
    const out = await run(f, await bearer(es));
    assertRejected(out, "jwks_unavailable", "Jwks remote fetch is failed");
    const uri = `${base}/keys`;
    const named = lines.filter((l) => l.includes("shop/broken-keys") && l.includes(uri));
    assert.ok(named.length > 0, `expected a log line naming the policy and ${uri}; got ${lines.join("")}`);
    // A token of an issuer with keys elsewhere is unaffected; recovery once the server is back.
    state.mode = "ok";
    clock = T0 + 10_000;
    assert.deepEqual(await run(f, await bearer(es)), { action: "continue" });
    clock = T0;
  });

  test("a JWKS server that never answers times out → 401 jwks_unavailable", async () => {
    clock = T0;
    reset("hang");
    const f = filter([remote()], { fetchTimeoutMs: 150 });
    const started = Date.now();
    assertRejected(await run(f, await bearer(es)), "jwks_unavailable");
    assert.ok(Date.now() - started < 5_000, "bounded by the fetch timeout");
  });

  test("a rule's own timeout overrides fetchTimeoutMs", async () => {
    clock = T0;
    reset("hang");
    const p = ra("t", {
      targetRefs: toWaypoint,
      jwtRules: [{ issuer: ISSUER, jwksUri: `${base}/keys`, timeout: "100ms" }],
    });
    const f = filter([p], { fetchTimeoutMs: 60_000 });
    const started = Date.now();
    assertRejected(await run(f, await bearer(es)), "jwks_unavailable");
    assert.ok(Date.now() - started < 5_000);
  });

  test("a document that is not a key set → 401 jwks_unavailable", async () => {
    clock = T0;
    reset("ok", '{"nope": true}');
    const f = filter([remote()]);
    assertRejected(await run(f, await bearer(es)), "jwks_unavailable");
  });

  test("neither jwks nor jwksUri: keys found through the issuer's OpenID configuration", async () => {
    clock = T0;
    reset("ok");
    const p = ra("oidc", { targetRefs: toWaypoint, jwtRules: [{ issuer: base }] });
    const f = filter([p]);
    const r = await bearer(es, { iss: base });
    assert.deepEqual(await run(f, r), { action: "continue" });
    assert.equal(r.jwt?.iss, base);
    assert.equal(state.discovery, 1);
    assert.equal(state.fetches, 1);
  });
});
