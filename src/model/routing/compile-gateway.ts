// HTTPRoute and GRPCRoute → route entries for the Services they attach to (GAMMA: parentRefs of
// kind Service), ordered by Gateway API precedence, with Istio's translation of filters,
// backends, timeouts and retries.
import { gwDurationMs, type HeaderFilter, type HTTPRouteFilter } from "../resources/gateway.js";
import type { GRPCRoute, HTTPRoute } from "../resources/registry.js";
import {
  exact,
  pathPrefix,
  regex,
  trimPrefix,
  type CompiledMatch,
  type HeaderTest,
  type QueryTest,
} from "./match.js";
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
  HeaderModifier,
  InvalidBackend,
  Mirror,
  Redirect,
  RetryPolicy,
  RouteBackend,
  RouteDecision,
  ServiceInfo,
} from "./types.js";

type GatewayRoute = HTTPRoute | GRPCRoute;

/** Gateway API's precedence key for one match (Istio's sortHTTPRoutes). */
interface Precedence {
  /** 0 for routes in the waypoint's namespace (consumer override), 1 for the Service's own. */
  group: number;
  /** Exact 3 > prefix 2 > regex 1 > no path -1. */
  rank: number;
  length: number;
  method: number;
  headers: number;
  query: number;
  created: number;
  id: string;
  rule: number;
  match: number;
}

interface Ranked extends RouteEntry {
  precedence: Precedence;
  /** Service ports the route attached to; null = every port. */
  ports: ReadonlySet<number> | null;
}

function compare(a: Precedence, b: Precedence): number {
  return (
    a.group - b.group ||
    b.rank - a.rank ||
    b.length - a.length ||
    b.method - a.method ||
    b.headers - a.headers ||
    b.query - a.query ||
    (a.created === b.created ? 0 : a.created < b.created ? -1 : 1) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) ||
    a.rule - b.rule ||
    a.match - b.match
  );
}

const resourceName = (r: GatewayRoute): string =>
  `${r.kind} ${r.metadata.namespace ?? ""}/${r.metadata.name}`;

/** The Services (and ports) a route attaches to, with Istio's waypoint namespace rule. */
function attachments(
  r: GatewayRoute,
  services: Services,
  waypointNamespace: string | undefined,
  problems: Problems,
): Map<ServiceInfo, Set<number> | null> {
  const out = new Map<ServiceInfo, Set<number> | null>();
  const ns = r.metadata.namespace ?? "default";
  (r.spec.parentRefs ?? []).forEach((ref, i) => {
    if (ref.group !== "" || ref.kind !== "Service") return; // Gateways are ingress parents, not ours
    const at = `spec.parentRefs[${i}]`;
    const svcNs = ref.namespace ?? ns;
    const svc = services.byKey.get(serviceKey(svcNs, ref.name));
    if (!svc) {
      problems.add("NoMatchingParent", resourceName(r), at, `Service ${svcNs}/${ref.name} not found`);
      return;
    }
    if (ns !== svc.namespace && ns !== waypointNamespace) {
      problems.add(
        "ConsumerRouteIgnored",
        resourceName(r),
        at,
        `route in namespace ${ns} targets Service ${svcNs}/${ref.name}: waypoints apply only routes in the Service's namespace or the waypoint's own`,
      );
      return;
    }
    let port: number | undefined;
    if (ref.port !== undefined) {
      if (!svc.ports.some((p) => p.port === ref.port)) {
        problems.add(
          "NoMatchingParent",
          resourceName(r),
          at,
          `Service ${svcNs}/${ref.name} has no port ${ref.port}`,
        );
        return;
      }
      port = ref.port;
    } else if (ref.sectionName !== undefined) {
      const p = svc.ports.find((x) => x.name === ref.sectionName);
      if (!p) {
        problems.add(
          "NoMatchingParent",
          resourceName(r),
          at,
          `Service ${svcNs}/${ref.name} has no port named ${ref.sectionName}`,
        );
        return;
      }
      port = p.port;
    }
    const prev = out.get(svc);
    if (port === undefined || prev === null) out.set(svc, null);
    else out.set(svc, new Set([...(prev ?? []), port]));
  });
  return out;
}

function modifier(f: HeaderFilter | undefined): HeaderModifier | undefined {
  if (!f) return undefined;
  return headerModifier(
    (f.set ?? []).map((h) => [h.name, h.value]),
    (f.add ?? []).map((h) => [h.name, h.value]),
    f.remove ?? [],
  );
}

interface BackendRefLike {
  group: string;
  kind: string;
  name: string;
  namespace?: string | undefined;
  port?: number | undefined;
}

type Resolved = { ok: true; service: ServiceInfo; port: number } | { ok: false; reason: string };

function resolveBackend(
  ref: BackendRefLike,
  routeNs: string,
  services: Services,
  problems: Problems,
  resource: string,
  at: string,
): Resolved {
  if (ref.group !== "" || ref.kind !== "Service") {
    problems.add(
      "InvalidKind",
      resource,
      at,
      `backend kind ${ref.group || "core"}/${ref.kind} is not supported (only Service)`,
    );
    return { ok: false, reason: "invalid_backend_kind" };
  }
  const ns = ref.namespace ?? routeNs;
  const svc = services.byKey.get(serviceKey(ns, ref.name));
  if (!svc) {
    problems.add("BackendNotFound", resource, at, `Service ${ns}/${ref.name} not found`);
    return { ok: false, reason: "backend_not_found" };
  }
  const port = ref.port ?? 0;
  if (!svc.ports.some((p) => p.port === port)) {
    problems.add("BackendNotFound", resource, at, `Service ${ns}/${ref.name} has no port ${port}`);
    return { ok: false, reason: "backend_not_found" };
  }
  return { ok: true, service: svc, port };
}

interface RuleAction {
  requestHeaders?: HeaderModifier | undefined;
  responseHeaders?: HeaderModifier | undefined;
  redirect?: Omit<Redirect, "path"> & { pathSpec?: { type: string; value: string } };
  rewrite?: { hostname?: string; pathSpec?: { type: string; value: string } };
  mirrors: Mirror[];
}

function filterActions(
  filters: readonly HTTPRouteFilter[] | undefined,
  routeNs: string,
  services: Services,
  problems: Problems,
  resource: string,
  at: string,
): RuleAction {
  const out: RuleAction = { mirrors: [] };
  (filters ?? []).forEach((f, i) => {
    const fat = `${at}.filters[${i}]`;
    switch (f.type) {
      case "RequestHeaderModifier":
        out.requestHeaders = modifier(f.requestHeaderModifier);
        break;
      case "ResponseHeaderModifier":
        out.responseHeaders = modifier(f.responseHeaderModifier);
        break;
      case "RequestMirror": {
        const m = f.requestMirror;
        if (!m) break;
        const res = resolveBackend(
          m.backendRef,
          routeNs,
          services,
          problems,
          resource,
          `${fat}.requestMirror.backendRef`,
        );
        if (!res.ok) break; // Istio drops a mirror it cannot resolve
        const percent = m.fraction
          ? (100 * m.fraction.numerator) / m.fraction.denominator
          : (m.percent ?? 100);
        if (percent > 0)
          out.mirrors.push({
            backend: {
              service: { namespace: res.service.namespace, name: res.service.name },
              host: res.service.host,
              port: res.port,
            },
            percent,
          });
        break;
      }
      case "RequestRedirect": {
        const r = f.requestRedirect;
        if (!r) break;
        out.redirect = compact({
          scheme: r.scheme,
          hostname: r.hostname,
          port: r.port,
          // "When empty, the port of the request is used"; a new scheme brings its default port.
          derivePort:
            r.port !== undefined
              ? undefined
              : r.scheme
                ? ("FROM_PROTOCOL_DEFAULT" as const)
                : ("FROM_REQUEST_PORT" as const),
          statusCode: r.statusCode,
          pathSpec: r.path
            ? {
                type: r.path.type,
                value:
                  (r.path.type === "ReplaceFullPath" ? r.path.replaceFullPath : r.path.replacePrefixMatch) ??
                  "",
              }
            : undefined,
        });
        break;
      }
      case "URLRewrite": {
        const r = f.urlRewrite;
        if (!r) break;
        out.rewrite = compact({
          hostname: r.hostname,
          pathSpec: r.path
            ? {
                type: r.path.type,
                value:
                  (r.path.type === "ReplaceFullPath" ? r.path.replaceFullPath : r.path.replacePrefixMatch) ??
                  "",
              }
            : undefined,
        });
        break;
      }
      case "CORS":
        break; // not implemented at the waypoint yet; the route still applies
      case "ExtensionRef":
        problems.add(
          "UnsupportedValue",
          resource,
          fat,
          "ExtensionRef filters are not supported; filter ignored",
        );
        break;
    }
  });
  return out;
}

function pathRewrite(spec: { type: string; value: string } | undefined, matchedPrefix: string) {
  if (!spec) return undefined;
  return spec.type === "ReplaceFullPath"
    ? ({ type: "ReplaceFullPath", value: spec.value } as const)
    : ({ type: "ReplacePrefixMatch", value: spec.value, matchedPrefix } as const);
}

interface BackendLike extends BackendRefLike {
  weight: number;
  filters?:
    | readonly {
        type: string;
        requestHeaderModifier?: HeaderFilter | undefined;
        responseHeaderModifier?: HeaderFilter | undefined;
      }[]
    | undefined;
}

function backends(
  refs: readonly BackendLike[] | undefined,
  routeNs: string,
  services: Services,
  problems: Problems,
  resource: string,
  at: string,
): { valid: RouteBackend[]; invalid: InvalidBackend[]; total: number } {
  const valid: RouteBackend[] = [];
  const invalid: InvalidBackend[] = [];
  let total = 0;
  (refs ?? []).forEach((b, i) => {
    if (b.weight === 0) return; // weight 0 sends nothing; not even resolved, as in Istio
    total += b.weight;
    const res = resolveBackend(b, routeNs, services, problems, resource, `${at}.backendRefs[${i}]`);
    if (!res.ok) {
      // Gateway API: requests that would have gone to an invalid backend get a 500.
      invalid.push({ weight: b.weight, status: 500, reason: res.reason });
      return;
    }
    let requestHeaders: HeaderModifier | undefined;
    let responseHeaders: HeaderModifier | undefined;
    for (const f of b.filters ?? []) {
      if (f.type === "RequestHeaderModifier") requestHeaders = modifier(f.requestHeaderModifier);
      else if (f.type === "ResponseHeaderModifier") responseHeaders = modifier(f.responseHeaderModifier);
    }
    valid.push(
      compact({
        service: { namespace: res.service.namespace, name: res.service.name },
        host: res.service.host,
        port: res.port,
        weight: b.weight,
        requestHeaders,
        responseHeaders,
      }),
    );
  });
  return { valid, invalid, total };
}

interface RuleTiming {
  timeouts?: { requestMs?: number; backendRequestMs?: number };
  retries?: RetryPolicy;
}

function timing(rule: HTTPRoute["spec"]["rules"][number] | undefined): RuleTiming {
  const requestMs = rule?.timeouts?.request ? gwDurationMs(rule.timeouts.request) : 0;
  const backendRequestMs = rule?.timeouts?.backendRequest ? gwDurationMs(rule.timeouts.backendRequest) : 0;
  const timeouts = compact({
    requestMs: requestMs > 0 ? requestMs : undefined,
    backendRequestMs: backendRequestMs > 0 ? backendRequestMs : undefined,
  });
  const perTry = timeouts.backendRequestMs;
  let retries: RetryPolicy | undefined;
  const r = rule?.retry;
  if (!r) retries = defaultRetries(perTry);
  else {
    const attempts = r.attempts ?? 2;
    const codes = r.codes ?? [];
    // Istio: a retry stanza retries connection errors, plus the listed codes.
    retries =
      attempts === 0
        ? undefined
        : compact({
            attempts,
            retryOn: [
              "connect-failure",
              "refused-stream",
              "unavailable",
              "cancelled",
              ...(codes.length > 0 ? ["retriable-status-codes"] : []),
            ],
            retriableStatusCodes: codes,
            retryIgnorePreviousHosts: true,
            perTryTimeoutMs: perTry,
            backoffMs: r.backoff ? gwDurationMs(r.backoff) : undefined,
          });
  }
  return compact({ timeouts: Object.keys(timeouts).length > 0 ? timeouts : undefined, retries });
}

function httpMatch(
  m: HTTPRoute["spec"]["rules"][number]["matches"][number],
  problems: Problems,
  resource: string,
  at: string,
): { match: CompiledMatch; rank: number; length: number; matchedPrefix: string } {
  let path: CompiledMatch["path"];
  let rank = 2;
  let matchedPrefix = "";
  if (m.path.type === "Exact") {
    path = exact(m.path.value);
    rank = 3;
  } else if (m.path.type === "PathPrefix") {
    path = pathPrefix(m.path.value);
    matchedPrefix = trimPrefix(m.path.value);
  } else {
    rank = 1;
    path = regex(m.path.value) ?? undefined;
    if (!path) {
      problems.add(
        "UnsupportedValue",
        resource,
        `${at}.path.value`,
        `regex "${m.path.value}" cannot be evaluated; match disabled`,
      );
      path = () => false;
    }
  }
  const length = m.path.type === "PathPrefix" ? matchedPrefix.length : m.path.value.length;
  const headers: HeaderTest[] = (m.headers ?? []).map((h, i) => ({
    name: h.name.toLowerCase(),
    test: valueTest(h.type, h.value, problems, resource, `${at}.headers[${i}].value`),
    invert: false,
  }));
  const query: QueryTest[] = (m.queryParams ?? []).map((q, i) => ({
    name: q.name,
    test: valueTest(q.type, q.value, problems, resource, `${at}.queryParams[${i}].value`),
  }));
  return {
    match: compact({ path, method: m.method ? exact(m.method) : undefined, headers, query }),
    rank,
    length,
    matchedPrefix,
  };
}

function valueTest(type: string, value: string, problems: Problems, resource: string, at: string) {
  if (type !== "RegularExpression") return exact(value);
  const t = regex(value);
  if (t) return t;
  problems.add("UnsupportedValue", resource, at, `regex "${value}" cannot be evaluated; match disabled`);
  return () => false;
}

/** gRPC method matches as Istio turns them into path matches on /package.Service/Method. */
function grpcPath(
  m: NonNullable<NonNullable<GRPCRoute["spec"]["rules"]>[number]["matches"]>[number]["method"],
): { test?: (v: string) => boolean; rank: number; length: number; source: string } {
  if (!m) return { rank: -1, length: 0, source: "" };
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  if (m.type === "Exact") {
    if (m.method === undefined) {
      const p = `/${m.service ?? ""}/`;
      return { test: (v) => v.startsWith(p), rank: 2, length: p.length, source: p };
    }
    if (m.service === undefined) {
      const src = `/[^/]+/${esc(m.method)}`;
      return { test: regex(src) ?? undefined, rank: 1, length: src.length, source: src };
    }
    const p = `/${m.service}/${m.method}`;
    return { test: exact(p), rank: 3, length: p.length, source: p };
  }
  const src =
    m.method === undefined
      ? `/${m.service ?? ""}/.+`
      : m.service === undefined
        ? `/[^/]+/${m.method}`
        : `/${m.service}/${m.method}`;
  return { test: regex(src) ?? (() => false), rank: 1, length: src.length, source: src };
}

interface CompiledRoute {
  route: GatewayRoute;
  entries: { entry: RouteEntry; rank: number; length: number; rule: number; match: number }[];
}

function compileHttpRoute(r: HTTPRoute, services: Services, problems: Problems): CompiledRoute {
  const ns = r.metadata.namespace ?? "default";
  const resource = resourceName(r);
  const out: CompiledRoute = { route: r, entries: [] };
  r.spec.rules.forEach((rule, ri) => {
    const at = `spec.rules[${ri}]`;
    const name = `HTTPRoute/${ns}/${r.metadata.name}#${ri}`;
    const act = filterActions(rule.filters, ns, services, problems, resource, at);
    const be = backends(rule.backendRefs, ns, services, problems, resource, at);
    const t = timing(rule);
    rule.matches.forEach((m, mi) => {
      const hm = httpMatch(m, problems, resource, `${at}.matches[${mi}]`);
      const decision: RouteDecision = compact({
        route: name,
        kind: "HTTPRoute" as const,
        backends: be.valid,
        invalidBackends: be.invalid,
        requestHeaders: act.requestHeaders,
        responseHeaders: act.responseHeaders,
        mirrors: act.mirrors,
      });
      if (act.redirect) {
        const { pathSpec, ...rest } = act.redirect;
        decision.redirect = compact({ ...rest, path: pathRewrite(pathSpec, hm.matchedPrefix) });
        decision.backends = [];
        decision.invalidBackends = [];
        decision.mirrors = [];
      } else {
        if (be.total === 0) {
          // Gateway API: no backend with weight > 0 and nothing else answering → 500.
          decision.directResponse = { status: 500, reason: "no_backends" };
          decision.mirrors = [];
        } else {
          if (t.timeouts) decision.timeouts = t.timeouts;
          if (t.retries) decision.retries = t.retries;
        }
        if (act.rewrite) {
          const { pathSpec, hostname } = act.rewrite;
          decision.rewrite = compact({ hostname, path: pathRewrite(pathSpec, hm.matchedPrefix) });
        }
      }
      out.entries.push({
        entry: { match: hm.match, decision: Object.freeze(decision) },
        rank: hm.rank,
        length: hm.length,
        rule: ri,
        match: mi,
      });
    });
  });
  return out;
}

function compileGrpcRoute(r: GRPCRoute, services: Services, problems: Problems): CompiledRoute {
  const ns = r.metadata.namespace ?? "default";
  const resource = resourceName(r);
  const out: CompiledRoute = { route: r, entries: [] };
  (r.spec.rules ?? [{}]).forEach((rule, ri) => {
    const at = `spec.rules[${ri}]`;
    const name = `GRPCRoute/${ns}/${r.metadata.name}#${ri}`;
    const act = filterActions(rule.filters, ns, services, problems, resource, at);
    const be = backends(rule.backendRefs, ns, services, problems, resource, at);
    const t = timing(undefined);
    const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [{}];
    matches.forEach((m, mi) => {
      const gp = grpcPath("method" in m ? m.method : undefined);
      const headers: HeaderTest[] = (("headers" in m ? m.headers : undefined) ?? []).map((h, i) => ({
        name: h.name.toLowerCase(),
        test: valueTest(h.type, h.value, problems, resource, `${at}.matches[${mi}].headers[${i}].value`),
        invert: false,
      }));
      const decision: RouteDecision = compact({
        route: name,
        kind: "GRPCRoute" as const,
        backends: be.valid,
        invalidBackends: be.invalid,
        requestHeaders: act.requestHeaders,
        responseHeaders: act.responseHeaders,
        mirrors: act.mirrors,
      });
      if (be.total === 0) {
        decision.directResponse = { status: 500, reason: "no_backends" };
        decision.mirrors = [];
      } else if (t.retries) decision.retries = t.retries;
      out.entries.push({
        entry: { match: compact({ path: gp.test, headers, query: [] }), decision: Object.freeze(decision) },
        rank: gp.rank,
        length: gp.length,
        rule: ri,
        match: mi,
      });
    });
  });
  return out;
}

/**
 * Entries per Service and port from every attached HTTPRoute and GRPCRoute, sorted by Gateway
 * API precedence (routes in the waypoint's namespace first, as Istio's consumer override).
 */
export function compileGatewayRoutes(
  httpRoutes: readonly HTTPRoute[],
  grpcRoutes: readonly GRPCRoute[],
  services: Services,
  waypointNamespace: string | undefined,
  problems: Problems,
): Map<string, Map<number, RouteEntry[]>> {
  const ranked = new Map<ServiceInfo, Ranked[]>();
  const all: GatewayRoute[] = [...httpRoutes, ...grpcRoutes];
  for (const r of all) {
    const attached = attachments(r, services, waypointNamespace, problems);
    if (attached.size === 0) continue;
    const compiled =
      r.kind === "HTTPRoute"
        ? compileHttpRoute(r, services, problems)
        : compileGrpcRoute(r, services, problems);
    const ns = r.metadata.namespace ?? "default";
    for (const [svc, ports] of attached) {
      const list = ranked.get(svc) ?? [];
      for (const e of compiled.entries) {
        const m = e.entry.match;
        list.push({
          ...e.entry,
          ports,
          precedence: {
            group: ns === svc.namespace ? 1 : 0,
            rank: e.rank,
            length: e.length,
            method: m.method ? 1 : 0,
            headers: m.headers.length,
            query: m.query.length,
            created: createdAt(r.metadata.creationTimestamp),
            id: `${ns}/${r.metadata.name}`,
            rule: e.rule,
            match: e.match,
          },
        });
      }
      ranked.set(svc, list);
    }
  }
  const out = new Map<string, Map<number, RouteEntry[]>>();
  for (const [svc, list] of ranked) {
    list.sort((a, b) => compare(a.precedence, b.precedence));
    const byPort = new Map<number, RouteEntry[]>();
    for (const p of svc.ports) {
      const entries = list
        .filter((e) => e.ports === null || e.ports.has(p.port))
        .map(({ match, decision }) => ({ match, decision }));
      if (entries.length > 0) byPort.set(p.port, entries);
    }
    out.set(serviceKey(svc.namespace, svc.name), byPort);
  }
  return out;
}
