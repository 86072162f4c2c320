// VirtualService → route entries for the Services its hosts name, the way Istio's waypoint
// builds its inbound routes: http routes in order, matches Istio drops at waypoints dropped,
// destinations resolved (short names in the VirtualService's namespace), Istio's defaults.
import { durationMs } from "../resources/common.js";
import type {
  Headers,
  HTTPMatchRequest,
  HTTPRoute as VsHttpRoute,
  StringMatch,
} from "../resources/networking.js";
import type { VirtualService } from "../resources/registry.js";
import {
  exact,
  prefix,
  regex,
  type CompiledMatch,
  type HeaderTest,
  type QueryTest,
  type StringTest,
} from "./match.js";
import { compileRe2 } from "./regex.js";
import {
  compact,
  createdAt,
  defaultRetries,
  headerModifier,
  serviceKey,
  type Problems,
  type RouteEntry,
  type Services,
} from "./shared.js";
import type {
  Fault,
  HeaderModifier,
  InvalidBackend,
  Mirror,
  PathRewrite,
  Redirect,
  RetryPolicy,
  RouteBackend,
  RouteDecision,
  ServiceInfo,
} from "./types.js";

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Istio's short-name rule: a host without a dot is "name.<namespace>.svc.<domain>". */
export function resolveHost(host: string, namespace: string, domain: string): string {
  const h = host.toLowerCase();
  if (h === "*" || h.includes(".") || h.includes(":") || IPV4.test(h)) return h;
  return `${h}.${namespace}.svc.${domain}`;
}

/** Istio's host.Name.Matches for a concrete Service host. */
function hostMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*")) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

function stringTest(m: StringMatch, ignoreCase = false): StringTest | null | "bad" {
  if (m.exact !== undefined) return exact(m.exact, ignoreCase);
  if (m.prefix !== undefined) return prefix(m.prefix, ignoreCase);
  if (m.regex !== undefined) return regex(m.regex) ?? "bad";
  return null; // {}: presence only
}

function isAuthority(name: string): boolean {
  const n = name.toLowerCase();
  return n === "host" || n === ":authority";
}

/** Istio header operations; set/add of Host or :authority become an authority rewrite. */
function operations(ops: NonNullable<Headers["request"]> | undefined): {
  mod?: HeaderModifier;
  authority?: string;
} {
  if (!ops) return {};
  let authority: string | undefined;
  const keep = (rec: Record<string, string> | undefined): [string, string][] =>
    Object.entries(rec ?? {}).filter(([k, v]) => {
      if (!isAuthority(k)) return true;
      authority = v;
      return false;
    });
  const set = keep(ops.set);
  const add = keep(ops.add);
  return compact({ mod: headerModifier(set, add, ops.remove ?? []), authority });
}

interface Ctx {
  vs: VirtualService;
  services: Services;
  problems: Problems;
  resource: string;
  listenPort: number;
  report: boolean;
}

function destination(
  ctx: Ctx,
  d: { host: string; subset?: string | undefined; port?: { number: number } | undefined },
  at: string,
): { ok: true; svc: ServiceInfo; port: number } | { ok: false; reason: string } {
  const ns = ctx.vs.metadata.namespace ?? "default";
  const host = resolveHost(d.host, ns, ctx.services.domain);
  const svc = ctx.services.byHost.get(host);
  if (!svc) {
    if (ctx.report) ctx.problems.add("BackendNotFound", ctx.resource, at, `no Service with host ${host}`);
    return { ok: false, reason: "backend_not_found" };
  }
  // Istio: the destination's port, else the Service's only port, else the port the request came on.
  const port = d.port?.number ?? (svc.ports.length === 1 ? (svc.ports[0]?.port ?? 0) : ctx.listenPort);
  if (!svc.ports.some((p) => p.port === port)) {
    if (ctx.report)
      ctx.problems.add("BackendNotFound", ctx.resource, at, `Service ${host} has no port ${port}`);
    return { ok: false, reason: "backend_not_found" };
  }
  return { ok: true, svc, port };
}

function retries(r: VsHttpRoute["retries"]): RetryPolicy | undefined {
  if (!r) return defaultRetries();
  if ((r.attempts ?? 0) <= 0) return undefined; // attempts 0 disables retries
  let retryOn: string[] = [...defaultRetries().retryOn];
  let codes: number[] = [];
  if (r.retryOn) {
    const parts = r.retryOn
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "");
    codes = parts.filter((p) => /^\d{3}$/.test(p)).map(Number);
    retryOn = parts.filter((p) => !/^\d{3}$/.test(p));
    if (codes.length > 0 && !retryOn.includes("retriable-status-codes"))
      retryOn.push("retriable-status-codes");
  }
  return compact({
    attempts: r.attempts ?? 0,
    retryOn,
    retriableStatusCodes: codes,
    perTryTimeoutMs: r.perTryTimeout ? durationMs(r.perTryTimeout) : undefined,
    backoffMs: r.backoff ? durationMs(r.backoff) : undefined,
    retryIgnorePreviousHosts: r.retryIgnorePreviousHosts ?? true,
  });
}

function fault(f: VsHttpRoute["fault"]): Fault | undefined {
  if (!f) return undefined;
  const out: Fault = {};
  // Unset percentages inject nothing (Istio's documented default).
  if (f.delay?.fixedDelay)
    out.delay = {
      ms: durationMs(f.delay.fixedDelay),
      percent: f.delay.percentage?.value ?? f.delay.percent ?? 0,
    };
  if (f.abort && (f.abort.httpStatus !== undefined || f.abort.grpcStatus !== undefined))
    out.abort = compact({
      httpStatus: f.abort.httpStatus,
      grpcStatus: f.abort.grpcStatus,
      percent: f.abort.percentage?.value ?? 0,
    });
  return out.delay || out.abort ? out : undefined;
}

function mirrors(ctx: Ctx, r: VsHttpRoute, at: string): Mirror[] {
  const out: Mirror[] = [];
  const add = (d: NonNullable<VsHttpRoute["mirror"]>, percent: number, where: string): void => {
    if (percent <= 0) return;
    const res = destination(ctx, d, where);
    if (!res.ok) return;
    out.push({
      backend: compact({
        service: { namespace: res.svc.namespace, name: res.svc.name },
        host: res.svc.host,
        port: res.port,
        subset: d.subset,
      }),
      percent,
    });
  };
  if (r.mirror) add(r.mirror, r.mirrorPercentage?.value ?? r.mirrorPercent ?? 100, `${at}.mirror`);
  (r.mirrors ?? []).forEach((m, i) =>
    add(m.destination, m.percentage?.value ?? 100, `${at}.mirrors[${i}].destination`),
  );
  return out;
}

/** The match's path condition and the prefix a rewrite replaces (Envoy: "/" when none). */
function uriPart(m: HTTPMatchRequest | undefined): {
  test?: StringTest;
  matched: string | null;
  bad: boolean;
} {
  const uri = m?.uri;
  if (!uri) return { matched: "/", bad: false };
  const ic = m?.ignoreUriCase ?? false;
  if (uri.exact !== undefined) return { test: exact(uri.exact, ic), matched: null, bad: false };
  if (uri.prefix !== undefined) return { test: prefix(uri.prefix, ic), matched: uri.prefix, bad: false };
  const t = regex(uri.regex ?? "", ic);
  return t ? { test: t, matched: null, bad: false } : { test: () => false, matched: null, bad: true };
}

function compileMatch(ctx: Ctx, m: HTTPMatchRequest | undefined, at: string): CompiledMatch {
  const bad = (where: string): void => {
    if (ctx.report)
      ctx.problems.add("UnsupportedValue", ctx.resource, where, "regex cannot be evaluated; match disabled");
  };
  const str = (s: StringMatch | undefined, where: string): StringTest | undefined => {
    if (!s) return undefined;
    const t = stringTest(s);
    if (t === "bad") {
      bad(where);
      return () => false;
    }
    return t ?? undefined;
  };
  const uri = uriPart(m);
  if (uri.bad) bad(`${at}.uri`);
  const headers: HeaderTest[] = [];
  for (const [field, invert] of [
    ["headers", false],
    ["withoutHeaders", true],
  ] as const) {
    for (const [name, sm] of Object.entries(m?.[field] ?? {})) {
      let t = invert && sm.regex === "*" ? null : stringTest(sm);
      if (t === "bad") {
        bad(`${at}.${field}["${name}"]`);
        t = () => false;
      }
      headers.push({ name: name.toLowerCase(), test: t, invert });
    }
  }
  const query: QueryTest[] = [];
  for (const [name, sm] of Object.entries(m?.queryParams ?? {})) {
    let t = stringTest(sm);
    if (t === "bad") {
      bad(`${at}.queryParams["${name}"]`);
      t = () => false;
    }
    query.push({ name, test: t });
  }
  return compact({
    path: uri.test,
    method: str(m?.method, `${at}.method`),
    authority: str(m?.authority, `${at}.authority`),
    scheme: str(m?.scheme, `${at}.scheme`),
    port: m?.port,
    headers,
    query,
  });
}

function decisionFor(
  ctx: Ctx,
  r: VsHttpRoute,
  index: number,
  m: HTTPMatchRequest | undefined,
): RouteDecision {
  const ns = ctx.vs.metadata.namespace ?? "default";
  const at = `spec.http[${index}]`;
  const req = operations(r.headers?.request);
  const res = operations(r.headers?.response);
  const d: RouteDecision = compact({
    route: `VirtualService/${ns}/${ctx.vs.metadata.name}#${index}`,
    kind: "VirtualService" as const,
    backends: [] as RouteBackend[],
    invalidBackends: [] as InvalidBackend[],
    mirrors: [] as Mirror[],
    requestHeaders: req.mod,
    responseHeaders: res.mod,
    fault: fault(r.fault),
  });
  const matched = uriPart(m).matched;
  if (r.redirect) {
    const rd = r.redirect;
    let path: PathRewrite | undefined;
    if (rd.uri) path = { type: "ReplaceFullPath", value: rd.uri };
    else if (rd.prefixRewrite)
      path = { type: "ReplacePrefix", value: rd.prefixRewrite, matchedPrefix: matched ?? "/" };
    const redirect: Redirect = compact({
      scheme: rd.scheme,
      hostname: rd.authority,
      port: rd.port,
      derivePort: rd.derivePort,
      path,
      statusCode: rd.redirectCode,
    });
    d.redirect = redirect;
    return Object.freeze(d);
  }
  if (r.directResponse) {
    const b = r.directResponse.body;
    const body =
      b?.string ?? (b?.bytes !== undefined ? Buffer.from(b.bytes, "base64").toString("utf8") : undefined);
    d.directResponse = compact({ status: r.directResponse.status, body, reason: "direct_response" });
    return Object.freeze(d);
  }
  const dests = r.route ?? [];
  const single = dests.length === 1;
  dests.forEach((dst, i) => {
    const weight = single ? 1 : (dst.weight ?? 0);
    if (weight === 0) return; // Istio drops zero-weight destinations when there are several
    const where = `${at}.route[${i}].destination`;
    const res = destination(ctx, dst.destination, where);
    if (!res.ok) {
      // Envoy answers 503 for a cluster that does not exist (VirtualService semantics).
      (d.invalidBackends as InvalidBackend[]).push({ weight, status: 503, reason: res.reason });
      return;
    }
    const dreq = operations(dst.headers?.request);
    const dres = operations(dst.headers?.response);
    (d.backends as RouteBackend[]).push(
      compact({
        service: { namespace: res.svc.namespace, name: res.svc.name },
        host: res.svc.host,
        port: res.port,
        weight,
        subset: dst.destination.subset,
        requestHeaders: dreq.mod,
        responseHeaders: dres.mod,
        hostRewrite: dreq.authority,
      }),
    );
  });
  let path: PathRewrite | undefined;
  if (r.rewrite?.uriRegexRewrite?.match) {
    const re = compileRe2(r.rewrite.uriRegexRewrite.match);
    if (re) {
      const g = new RegExp(re.source.slice(4, -2), `${re.flags}g`); // drop the ^(?: )$ anchoring
      path = {
        type: "RegexReplace",
        pattern: g,
        substitution: (r.rewrite.uriRegexRewrite.rewrite ?? "").replace(/\\(\d)/g, "$$$1"),
      };
    } else if (ctx.report) {
      ctx.problems.add(
        "UnsupportedValue",
        ctx.resource,
        `${at}.rewrite.uriRegexRewrite.match`,
        "regex cannot be evaluated; rewrite ignored",
      );
    }
  } else if (r.rewrite?.uri) {
    path =
      matched === null
        ? { type: "ReplaceFullPath", value: r.rewrite.uri }
        : { type: "ReplacePrefix", value: r.rewrite.uri, matchedPrefix: matched };
  }
  const hostname = r.rewrite?.authority ?? req.authority;
  if (path || hostname) d.rewrite = compact({ hostname, path });
  const requestMs = r.timeout ? durationMs(r.timeout) : 0;
  if (requestMs > 0) d.timeouts = { requestMs };
  const rt = retries(r.retries);
  if (rt) d.retries = rt;
  d.mirrors = mirrors(ctx, r, at);
  return Object.freeze(d);
}

function isCatchAll(m: CompiledMatch, uri: StringMatch | undefined): boolean {
  const noUri = !uri || uri.prefix === "/" || uri.prefix === "";
  return (
    noUri &&
    !m.method &&
    !m.authority &&
    !m.scheme &&
    m.port === undefined &&
    m.headers.length === 0 &&
    m.query.length === 0
  );
}

/** A VirtualService's entries for one Service port (Istio's waypointInboundRoute). */
function vsEntries(ctx: Ctx, waypointNamespace: string | undefined): RouteEntry[] {
  const out: RouteEntry[] = [];
  const http = ctx.vs.spec.http ?? [];
  for (const [i, r] of http.entries()) {
    if (r.delegate) {
      if (ctx.report)
        ctx.problems.add(
          "UnsupportedValue",
          ctx.resource,
          `spec.http[${i}].delegate`,
          "delegation is not supported at waypoints; route ignored",
        );
      continue;
    }
    if (!r.match || r.match.length === 0) {
      out.push({ match: { headers: [], query: [] }, decision: decisionFor(ctx, r, i, undefined) });
      return out; // a catch-all: nothing after it can match
    }
    for (const [j, m] of r.match.entries()) {
      if (m.port !== undefined && m.port !== ctx.listenPort) continue;
      if (m.gateways && m.gateways.length > 0 && !m.gateways.includes("mesh")) continue;
      // Source labels are not supported in ambient; sourceNamespace compares with the waypoint's.
      if (m.sourceLabels && Object.keys(m.sourceLabels).length > 0) continue;
      if (m.sourceNamespace && m.sourceNamespace !== waypointNamespace) continue;
      const cm = compileMatch(ctx, m, `spec.http[${i}].match[${j}]`);
      out.push({ match: cm, decision: decisionFor(ctx, r, i, m) });
      if (isCatchAll(cm, m.uri)) return out;
    }
  }
  return out;
}

function visibleTo(vs: VirtualService, ns: string | undefined): boolean {
  const exportTo = vs.spec.exportTo ?? [];
  if (ns === undefined || exportTo.length === 0 || exportTo.includes("*")) return true;
  return exportTo.includes(ns) || (exportTo.includes(".") && vs.metadata.namespace === ns);
}

/**
 * Entries per Service and port from the VirtualServices whose hosts name the Service, merged
 * in creation order (oldest first, then namespace/name), as Istio merges them at waypoints.
 */
export function compileVirtualServices(
  virtualServices: readonly VirtualService[],
  services: Services,
  waypointNamespace: string | undefined,
  problems: Problems,
): Map<string, { byPort: Map<number, RouteEntry[]>; sources: string[] }> {
  const sorted = [...virtualServices].sort((a, b) => {
    const ta = createdAt(a.metadata.creationTimestamp);
    const tb = createdAt(b.metadata.creationTimestamp);
    if (ta !== tb) return ta < tb ? -1 : 1;
    const ka = `${a.metadata.namespace ?? ""}/${a.metadata.name}`;
    const kb = `${b.metadata.namespace ?? ""}/${b.metadata.name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  const out = new Map<string, { byPort: Map<number, RouteEntry[]>; sources: string[] }>();
  for (const vs of sorted) {
    const gateways = vs.spec.gateways ?? [];
    if (gateways.length > 0 && !gateways.includes("mesh")) continue;
    if (!vs.spec.http?.length || !visibleTo(vs, waypointNamespace)) continue;
    const ns = vs.metadata.namespace ?? "default";
    const hosts = (vs.spec.hosts ?? []).map((h) => resolveHost(h, ns, services.domain));
    const resource = `VirtualService ${ns}/${vs.metadata.name}`;
    let reported = false;
    for (const svc of services.byKey.values()) {
      if (ns !== svc.namespace && ns !== waypointNamespace) continue;
      if (!hosts.some((h) => hostMatches(h, svc.host.toLowerCase()))) continue;
      const key = serviceKey(svc.namespace, svc.name);
      const slot = out.get(key) ?? { byPort: new Map<number, RouteEntry[]>(), sources: [] };
      slot.sources.push(resource);
      svc.ports.forEach((p, pi) => {
        const ctx: Ctx = {
          vs,
          services,
          problems,
          resource,
          listenPort: p.port,
          report: !reported && pi === 0,
        };
        const entries = vsEntries(ctx, waypointNamespace);
        if (entries.length > 0) slot.byPort.set(p.port, [...(slot.byPort.get(p.port) ?? []), ...entries]);
      });
      reported = true;
      out.set(key, slot);
    }
  }
  return out;
}
