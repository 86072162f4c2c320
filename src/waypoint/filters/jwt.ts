// The waypoint's RequestAuthentication filter (Envoy's jwt_authn as Istio configures it): finds the
// tokens a request presents, verifies each with jose against the jwtRule of its issuer, and then
// either sets req.jwt (and the output headers) or answers 401 with Envoy's status text. A request
// without a token passes with req.jwt = null; requiring one is AuthorizationPolicy's job.
//
// Choices worth knowing (Envoy/Istio behaviour unless noted):
// - Attachment: see jwt-rules.ts (targetRefs only). Rules of all attached policies are merged.
// - Every token found must verify; a token is checked against the rules of its `iss` that look
//   at the location it was found in. No such rule → 401 "Jwt issuer is not configured".
// - exp/nbf are checked with 60 s of clock skew (Envoy's jwt_verify_lib).
// - Inline `jwks` wins over `jwksUri`; with neither, the issuer's OpenID configuration is read.
// - forwardOriginalToken false (the default) removes the token's header; query parameters and
//   cookies are left as they are (Envoy does not rewrite them either).
// - Not Envoy: headers named by outputPayloadToHeader / outputClaimToHeaders are removed from
//   the client's request first, so the application can trust them to come from this filter.
import {
  decodeJwt,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from "jose";
import type { Logger } from "../../core/log.js";
import type { JwtInfo } from "../../model/authz/types.js";
import { durationMs } from "../../model/resources/common.js";
import type { RequestAuthentication } from "../../model/resources/registry.js";
import type { JwtRule } from "../../model/resources/security.js";
import { DEFAULT_JWKS_FETCH_TIMEOUT_MS, DEFAULT_JWKS_REFRESH_MS, parseJwks, RemoteJwks } from "./jwks.js";
import { attachmentOf, extract, locationKey, locationsOf, type TokenLocation } from "./jwt-rules.js";
import { CONTINUE, type FilterOutcome, type WaypointRequest } from "./types.js";

export interface JwtFilterOptions {
  log: Logger;
  /** JWKS fetch timeout when a rule sets no `timeout` (default 5 s). */
  fetchTimeoutMs?: number;
  /** JWKS cache refresh (default 20 min, like Istio). */
  refreshMs?: number;
  now?: () => number;
}

/** Envoy's allowance for clock differences on exp and nbf. */
export const CLOCK_SKEW_SECONDS = 60;
const UNAVAILABLE_LOG_EVERY_MS = 30_000;

// Envoy's status texts (jwt_verify_lib), used as the 401 body.
const TEXT = {
  badFormat: "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
  unknownIssuer: "Jwt issuer is not configured",
  audience: "Audiences in Jwt are not allowed",
  expired: "Jwt is expired",
  notYetValid: "Jwt not yet valid",
  noKey: "Jwks doesn't have key to match kid or alg from Jwt",
  verification: "Jwt verification fails",
  fetch: "Jwks remote fetch is failed",
} as const;

export type JwtReason =
  "jwt_invalid" | "jwt_issuer_unknown" | "jwt_audience" | "jwt_expired" | "jwks_unavailable";

type Keys =
  | { kind: "local"; keys: JWTVerifyGetKey }
  | { kind: "remote"; source: RemoteJwks }
  | { kind: "broken"; error: string };

interface CompiledRule {
  /** "namespace/name" of the RequestAuthentication. */
  policy: string;
  rule: JwtRule;
  locations: TokenLocation[];
  keys: Keys;
}

interface Found {
  token: string;
  loc: TokenLocation;
}

type Verified = { ok: true; rule: CompiledRule; found: Found; payload: JWTPayload };
type Failed = { ok: false; reason: JwtReason; text: string };

export class JwtFilter {
  private readonly log: Logger;
  private readonly now: () => number;
  private waypointRules: CompiledRule[] = [];
  private serviceRules = new Map<string, CompiledRule[]>();
  private remotes = new Map<string, RemoteJwks>();
  private readonly unavailableLoggedAt = new Map<string, number>();

  constructor(private readonly opts: JwtFilterOptions) {
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
  }

  /** Recompile from a config snapshot; JWKS caches of unchanged URIs are kept. */
  update(
    resources: RequestAuthentication[],
    gateway: { namespace: string; name: string },
    rootNamespace: string,
  ): void {
    const waypointRules: CompiledRule[] = [];
    const serviceRules = new Map<string, CompiledRule[]>();
    const remotes = new Map<string, RemoteJwks>();
    const sorted = [...resources].sort((a, b) => policyName(a).localeCompare(policyName(b)));
    for (const p of sorted) {
      const at = attachmentOf(p, gateway, rootNamespace);
      if (!at.waypoint && at.services.length === 0) continue;
      const compiled = (p.spec?.jwtRules ?? []).map((r) => this.compile(policyName(p), r, remotes));
      if (at.waypoint) waypointRules.push(...compiled);
      for (const svc of at.services) {
        const list = serviceRules.get(svc) ?? [];
        serviceRules.set(svc, list);
        list.push(...compiled.filter((c) => !list.includes(c)));
      }
    }
    for (const [key, old] of this.remotes) if (!remotes.has(key)) old.close();
    this.waypointRules = waypointRules;
    this.serviceRules = serviceRules;
    this.remotes = remotes;
  }

  /** The filter hook; never throws. */
  async jwt(req: WaypointRequest, query: URLSearchParams): Promise<FilterOutcome> {
    req.jwt = null;
    try {
      return await this.run(req, query);
    } catch (err) {
      this.log.error({ err }, "JWT filter failed unexpectedly; rejecting the request");
      return reject(req, { ok: false, reason: "jwt_invalid", text: TEXT.verification });
    }
  }

  close(): void {
    for (const r of this.remotes.values()) r.close();
    this.remotes.clear();
    this.waypointRules = [];
    this.serviceRules.clear();
  }

  private compile(policy: string, rule: JwtRule, remotes: Map<string, RemoteJwks>): CompiledRule {
    const base = { policy, rule, locations: locationsOf(rule) };
    if (rule.jwks !== undefined) {
      try {
        return { ...base, keys: { kind: "local", keys: parseJwks(rule.jwks) } };
      } catch (err) {
        const error = `inline jwks of ${policy} is unusable: ${err instanceof Error ? err.message : String(err)}`;
        this.log.warn({ policy, issuer: rule.issuer }, error);
        return { ...base, keys: { kind: "broken", error } };
      }
    }
    const discovery = rule.jwksUri === undefined;
    const uri = rule.jwksUri ?? `${rule.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    if (discovery && !/^https?:\/\//.test(uri)) {
      const error = `${policy}: issuer ${rule.issuer} has no jwks/jwksUri and is not an http(s) URL to discover keys from`;
      this.log.warn({ policy, issuer: rule.issuer }, error);
      return { ...base, keys: { kind: "broken", error } };
    }
    const key = `${discovery ? "discovery" : "jwks"}:${uri}`;
    let source = remotes.get(key);
    if (!source) {
      source = this.remotes.get(key);
      if (source) source.policies.clear();
      else {
        source = new RemoteJwks({
          uri,
          discovery,
          log: this.log,
          fetchTimeoutMs:
            rule.timeout !== undefined
              ? durationMs(rule.timeout)
              : (this.opts.fetchTimeoutMs ?? DEFAULT_JWKS_FETCH_TIMEOUT_MS),
          refreshMs: this.opts.refreshMs ?? DEFAULT_JWKS_REFRESH_MS,
          now: this.now,
        });
        source.prefetch();
      }
      remotes.set(key, source);
    }
    source.policies.add(policy);
    return { ...base, keys: { kind: "remote", source } };
  }

  private rulesFor(req: WaypointRequest): CompiledRule[] {
    const svc = req.destination.service;
    const forService = svc ? this.serviceRules.get(`${svc.namespace}/${svc.name}`) : undefined;
    if (!forService) return this.waypointRules;
    return [...this.waypointRules, ...forService.filter((r) => !this.waypointRules.includes(r))];
  }

  private async run(req: WaypointRequest, query: URLSearchParams): Promise<FilterOutcome> {
    const rules = this.rulesFor(req);
    if (rules.length === 0) return CONTINUE;

    const found: Found[] = [];
    const seen = new Set<string>();
    for (const r of rules) {
      for (const loc of r.locations) {
        for (const token of extract(loc, req.headers, query)) {
          const key = `${locationKey(loc)}\n${token}`;
          if (seen.has(key)) continue;
          seen.add(key);
          found.push({ token, loc });
        }
      }
    }
    stripOutputHeaders(rules, req.headers);
    if (found.length === 0) return CONTINUE;

    const verified: Verified[] = [];
    for (const f of found) {
      const v = await this.verifyFound(f, rules);
      if (!v.ok) {
        this.log.debug({ reason: v.reason, text: v.text, location: locationKey(f.loc) }, "JWT rejected");
        return reject(req, v);
      }
      verified.push(v);
    }
    for (const v of verified) applyOutputs(v, req.headers);
    const first = verified[0];
    if (first) req.jwt = infoOf(first.payload);
    return CONTINUE;
  }

  private async verifyFound(f: Found, rules: CompiledRule[]): Promise<Verified | Failed> {
    let claims: JWTPayload;
    try {
      claims = decodeJwt(f.token);
    } catch {
      return { ok: false, reason: "jwt_invalid", text: TEXT.badFormat };
    }
    const where = locationKey(f.loc);
    const candidates = rules.filter(
      (r) => r.rule.issuer === claims.iss && r.locations.some((l) => locationKey(l) === where),
    );
    if (candidates.length === 0) return { ok: false, reason: "jwt_issuer_unknown", text: TEXT.unknownIssuer };
    let firstFailure: Failed | undefined;
    for (const c of candidates) {
      const res = await this.verifyWith(c, f.token);
      if (res.ok) return { ok: true, rule: c, found: f, payload: res.payload };
      firstFailure ??= res;
    }
    return firstFailure ?? { ok: false, reason: "jwt_invalid", text: TEXT.verification };
  }

  private async verifyWith(
    c: CompiledRule,
    token: string,
  ): Promise<{ ok: true; payload: JWTPayload } | Failed> {
    let keys: JWTVerifyGetKey;
    if (c.keys.kind === "broken") {
      this.logUnavailable(c, undefined, c.keys.error);
      return { ok: false, reason: "jwks_unavailable", text: TEXT.fetch };
    }
    if (c.keys.kind === "remote") {
      const got = await c.keys.source.lookup();
      if (!got.ok) {
        this.logUnavailable(c, c.keys.source.uri, got.error);
        return { ok: false, reason: "jwks_unavailable", text: TEXT.fetch };
      }
      keys = got.keys;
    } else {
      keys = c.keys.keys;
    }
    const options: JWTVerifyOptions = {
      issuer: c.rule.issuer,
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(this.now()),
    };
    const audiences = c.rule.audiences ?? [];
    if (audiences.length > 0) options.audience = audiences;
    try {
      const { payload } = await jwtVerify(token, keys, options);
      return { ok: true, payload };
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) return failureOf(err);
      // Several keys fit (no kid, same alg): like Envoy, try each.
      let last: unknown = err;
      for await (const key of err) {
        try {
          const { payload } = await jwtVerify(token, key, options);
          return { ok: true, payload };
        } catch (e) {
          // A claim error means the signature was good: that is the answer.
          if (e instanceof errors.JWTClaimValidationFailed) return failureOf(e);
          last = e;
        }
      }
      return failureOf(last);
    }
  }

  private logUnavailable(c: CompiledRule, uri: string | undefined, error: string): void {
    const key = `${c.policy}\n${uri ?? ""}`;
    const at = this.unavailableLoggedAt.get(key);
    const now = this.now();
    if (at !== undefined && now - at < UNAVAILABLE_LOG_EVERY_MS) return;
    this.unavailableLoggedAt.set(key, now);
    this.log.warn(
      { policy: c.policy, issuer: c.rule.issuer, jwksUri: uri, err: error },
      `rejecting tokens of issuer ${c.rule.issuer}: no keys for RequestAuthentication ${c.policy}${uri ? ` (${uri})` : ""}`,
    );
  }
}

function policyName(p: RequestAuthentication): string {
  return `${p.metadata.namespace ?? "default"}/${p.metadata.name}`;
}

function failureOf(err: unknown): Failed {
  if (err instanceof errors.JWTExpired) return { ok: false, reason: "jwt_expired", text: TEXT.expired };
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return { ok: false, reason: "jwt_audience", text: TEXT.audience };
    if (err.claim === "nbf") return { ok: false, reason: "jwt_invalid", text: TEXT.notYetValid };
    if (err.claim === "iss") return { ok: false, reason: "jwt_issuer_unknown", text: TEXT.unknownIssuer };
  }
  if (err instanceof errors.JWKSNoMatchingKey) return { ok: false, reason: "jwt_invalid", text: TEXT.noKey };
  return { ok: false, reason: "jwt_invalid", text: TEXT.verification };
}

/** Keeps client-controlled text out of the header value (quotes, backslashes, controls, non-ASCII). */
function quoteSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]|["\\]/g, "");
}

function reject(req: WaypointRequest, f: Failed): FilterOutcome {
  const q = req.path.indexOf("?");
  const path = q >= 0 ? req.path.slice(0, q) : req.path;
  return {
    action: "respond",
    status: 401,
    body: f.text,
    headers: {
      "www-authenticate": `Bearer realm="http://${quoteSafe(req.authority)}${quoteSafe(path)}", error="invalid_token"`,
    },
    reason: f.reason,
  };
}

function infoOf(payload: JWTPayload): JwtInfo {
  return {
    iss: typeof payload.iss === "string" ? payload.iss : "",
    sub: typeof payload.sub === "string" ? payload.sub : "",
    claims: { ...payload },
  };
}

function outputHeadersOf(rule: JwtRule): string[] {
  const out = (rule.outputClaimToHeaders ?? []).map((h) => h.header.toLowerCase());
  if (rule.outputPayloadToHeader) out.push(rule.outputPayloadToHeader.toLowerCase());
  return out;
}

function stripOutputHeaders(rules: CompiledRule[], headers: Map<string, string[]>): void {
  const tokenHeaders = new Set(
    rules.flatMap((r) => r.locations.flatMap((l) => (l.kind === "header" ? [l.name] : []))),
  );
  for (const r of rules) {
    for (const h of outputHeadersOf(r.rule)) if (!tokenHeaders.has(h)) headers.delete(h);
  }
}

/** A claim by name, or by a dotted path into nested objects ("realm.role"). */
function claimValue(payload: JWTPayload, claim: string): unknown {
  if (Object.prototype.hasOwnProperty.call(payload, claim)) return payload[claim];
  let v: unknown = payload;
  for (const part of claim.split(".")) {
    if (v === null || typeof v !== "object" || !Object.prototype.hasOwnProperty.call(v, part))
      return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

const HEADER_SAFE = /^[\t\x20-\x7e\x80-\xff]*$/;

function applyOutputs(v: Verified, headers: Map<string, string[]>): void {
  const rule = v.rule.rule;
  if (rule.outputPayloadToHeader) {
    // The token's own payload segment: base64url of the payload JSON, exactly as signed.
    const segment = v.found.token.split(".")[1] ?? "";
    headers.set(rule.outputPayloadToHeader.toLowerCase(), [segment]);
  }
  for (const { header, claim } of rule.outputClaimToHeaders ?? []) {
    const value = claimValue(v.payload, claim);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") continue;
    const text = String(value);
    if (HEADER_SAFE.test(text)) headers.set(header.toLowerCase(), [text]);
  }
  if (rule.forwardOriginalToken !== true && v.found.loc.kind === "header") {
    const name = v.found.loc.name;
    const kept = (headers.get(name) ?? []).filter((value) => !value.includes(v.found.token));
    if (kept.length > 0) headers.set(name, kept);
    else headers.delete(name);
  }
}
