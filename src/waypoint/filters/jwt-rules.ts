// RequestAuthentication for a waypoint, the pure half: which policies attach to this waypoint,
// and where each jwtRule looks for its token. No I/O, no cryptography.
//
// Attachment (Istio ambient, istio.io "Use Layer 7 features": RequestAuthentication attaches to a
// waypoint by targetRefs). A waypoint honours only policies whose targetRefs (or targetRef) name:
//   - kind Gateway (group gateway.networking.k8s.io) = this waypoint, in the policy's namespace;
//   - kind GatewayClass istio-waypoint, from the root namespace (every waypoint);
//   - kind Service / ServiceEntry in the policy's namespace: only requests addressed to it.
// Policies with a selector, and selector-less policies without targetRefs (namespace-wide, or
// mesh-wide in the root namespace), are deliberately NOT applied here: in ambient they bind
// workloads (sidecars, gateways), not waypoints, and the authorization engine
// (src/model/authz/evaluate.ts) makes the same choice for AuthorizationPolicy at L7.
import type { PolicyTargetRef } from "../../model/resources/common.js";
import type { RequestAuthentication } from "../../model/resources/registry.js";
import type { JwtRule } from "../../model/resources/security.js";

const GATEWAY_API = "gateway.networking.k8s.io";
const WAYPOINT_CLASS = "istio-waypoint";

export type TokenLocation =
  | { kind: "header"; name: string; prefix: string; ignoreCase: boolean }
  | { kind: "param"; name: string }
  | { kind: "cookie"; name: string };

/** Where a rule finds tokens: Authorization "Bearer " and ?access_token= unless told otherwise. */
export function locationsOf(rule: JwtRule): TokenLocation[] {
  const out: TokenLocation[] = [];
  for (const h of rule.fromHeaders ?? []) {
    out.push({ kind: "header", name: h.name.toLowerCase(), prefix: h.prefix ?? "", ignoreCase: false });
  }
  for (const p of rule.fromParams ?? []) out.push({ kind: "param", name: p });
  for (const c of rule.fromCookies ?? []) out.push({ kind: "cookie", name: c });
  if (out.length > 0) return out;
  return [
    // RFC 6750: the auth-scheme is case-insensitive.
    { kind: "header", name: "authorization", prefix: "Bearer ", ignoreCase: true },
    { kind: "param", name: "access_token" },
  ];
}

export function locationKey(l: TokenLocation): string {
  return l.kind === "header" ? `header:${l.name}:${l.prefix}` : `${l.kind}:${l.name}`;
}

function cookies(headers: Map<string, string[]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of headers.get("cookie") ?? []) {
    for (const part of line.split(";")) {
      const eq = part.indexOf("=");
      if (eq <= 0) continue;
      const name = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (!out.has(name)) out.set(name, value);
    }
  }
  return out;
}

/** The tokens a request carries at one location (empty strings are no token). */
export function extract(
  loc: TokenLocation,
  headers: Map<string, string[]>,
  query: URLSearchParams,
): string[] {
  switch (loc.kind) {
    case "header": {
      const out: string[] = [];
      for (const raw of headers.get(loc.name) ?? []) {
        const v = raw.trim();
        const head = v.slice(0, loc.prefix.length);
        const has = loc.ignoreCase ? head.toLowerCase() === loc.prefix.toLowerCase() : head === loc.prefix;
        if (!has) continue;
        const token = v.slice(loc.prefix.length).trim();
        if (token !== "") out.push(token);
      }
      return out;
    }
    case "param":
      return query.getAll(loc.name).filter((t) => t !== "");
    case "cookie": {
      const t = cookies(headers).get(loc.name);
      return t === undefined || t === "" ? [] : [t];
    }
  }
}

function refsOf(p: RequestAuthentication): PolicyTargetRef[] {
  const s = p.spec;
  if (s === undefined) return [];
  if (s.targetRefs && s.targetRefs.length > 0) return s.targetRefs;
  return s.targetRef ? [s.targetRef] : [];
}

export interface Attachment {
  /** Applies to every request through this waypoint. */
  waypoint: boolean;
  /** Applies to requests addressed to these Services ("namespace/name"). */
  services: string[];
}

/** How a policy attaches to the waypoint `gateway` (see the header comment for the rules). */
export function attachmentOf(
  p: RequestAuthentication,
  gateway: { namespace: string; name: string },
  rootNamespace: string,
): Attachment {
  const ns = p.metadata.namespace ?? "default";
  const out: Attachment = { waypoint: false, services: [] };
  if (p.spec?.selector) return out;
  for (const ref of refsOf(p)) {
    const group = ref.group === undefined || ref.group === "" ? "core" : ref.group;
    // Attachment never crosses namespaces: a reference names the policy's own namespace.
    if (ref.namespace !== undefined && ref.namespace !== "" && ref.namespace !== ns) continue;
    switch (ref.kind) {
      case "Gateway":
        if (group === GATEWAY_API && ref.name === gateway.name && ns === gateway.namespace)
          out.waypoint = true;
        break;
      case "GatewayClass":
        if (group === GATEWAY_API && ref.name === WAYPOINT_CLASS && ns === rootNamespace) out.waypoint = true;
        break;
      case "Service":
        if (group === "core") out.services.push(`${ns}/${ref.name}`);
        break;
      case "ServiceEntry":
        if (group === "networking.istio.io") out.services.push(`${ns}/${ref.name}`);
        break;
      default:
        break;
    }
  }
  return out;
}
