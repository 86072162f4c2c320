// The facts one decision needs, derived once per request: the peer identity split into namespace
// and service account, and addresses, path, host and headers computed on first use.
import { parseIp, type IpAddress } from "./match.js";
import { normalizePath } from "./path.js";
import type { AuthzRequest, JwtInfo } from "./types.js";

export interface ParsedPrincipal {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** "td/ns/<ns>/sa/<sa>" (optionally with "spiffe://") → its parts; null for anything else. */
export function parsePrincipal(principal: string): ParsedPrincipal | null {
  const s = principal.startsWith("spiffe://") ? principal.slice(9) : principal;
  const ns = namespaceStart(s);
  if (ns < 0) return null;
  const sa = s.indexOf("/sa/", ns);
  return { trustDomain: s.slice(0, ns - 4), namespace: s.slice(ns, sa), serviceAccount: s.slice(sa + 4) };
}

/** Where the namespace starts in "td/ns/<ns>/sa/<sa>", or -1 when the shape is wrong. */
function namespaceStart(s: string): number {
  const ns = s.indexOf("/ns/");
  if (ns <= 0 || s.indexOf("/") !== ns) return -1;
  const sa = s.indexOf("/sa/", ns + 4);
  if (sa <= ns + 4 || s.indexOf("/", ns + 4) !== sa) return -1;
  if (sa + 4 >= s.length || s.indexOf("/", sa + 4) >= 0) return -1;
  return ns + 4;
}

const UNSET = Symbol("unset");

export class EvalContext {
  /** The mTLS peer identity without "spiffe://"; null for a plaintext peer (no identity at all). */
  readonly principal: string | null;
  /** Index of the namespace in `principal`; -1 when there is no parseable identity. */
  private nsAtCache = -2;
  readonly port: number;
  readonly jwt: JwtInfo | null;
  readonly method: string;
  private readonly req: AuthzRequest;
  private identityKey: string | null | typeof UNSET = UNSET;
  private identityNs: string | null | typeof UNSET = UNSET;
  private srcIp: IpAddress | null | typeof UNSET = UNSET;
  private dstIp: IpAddress | null | typeof UNSET = UNSET;
  private normalized: string | null | typeof UNSET = UNSET;
  private lowerHost: string | undefined;
  private headerMap: Map<string, string> | undefined;

  constructor(req: AuthzRequest) {
    this.req = req;
    const principal = req.source.principal;
    this.principal =
      principal === null ? null : principal.startsWith("spiffe://") ? principal.slice(9) : principal;
    this.port = req.destination.port;
    const http = req.http;
    this.jwt = http === null ? null : http.jwt;
    this.method = http === null ? "" : http.method;
  }

  // Parsed on first use: most decisions never look at the identity's parts.
  private nsAt(): number {
    if (this.nsAtCache === -2) this.nsAtCache = this.principal === null ? -1 : namespaceStart(this.principal);
    return this.nsAtCache;
  }

  /** Namespace of the peer identity; null without one (a plaintext peer has no namespace). */
  identityNamespace(): string | null {
    if (this.identityNs === UNSET) {
      const p = this.principal;
      const at = this.nsAt();
      this.identityNs =
        p === null ? null : at >= 0 ? p.slice(at, p.indexOf("/", at)) : this.req.source.namespace;
    }
    return this.identityNs;
  }

  /** "namespace/serviceAccount" of the peer identity, as serviceAccounts entries name it. */
  identity(): string | null {
    if (this.identityKey === UNSET) {
      const p = this.principal;
      const at = this.nsAt();
      const slash = at >= 0 && p !== null ? p.indexOf("/", at) : -1;
      this.identityKey = p === null || slash < 0 ? null : `${p.slice(at, slash)}/${p.slice(slash + 4)}`;
    }
    return this.identityKey;
  }

  sourceIp(): IpAddress | null {
    if (this.srcIp === UNSET) this.srcIp = parseIp(this.req.source.ip);
    return this.srcIp;
  }

  destinationIp(): IpAddress | null {
    if (this.dstIp === UNSET) this.dstIp = parseIp(this.req.destination.ip);
    return this.dstIp;
  }

  /** The normalized path; null when the request would be rejected before authorization. */
  path(): string | null {
    if (this.normalized === UNSET) this.normalized = normalizePath(this.req.http?.path ?? "");
    return this.normalized;
  }

  /** The :authority, lowercased (host matching is case-insensitive). */
  host(): string {
    if (this.lowerHost === undefined) this.lowerHost = (this.req.http?.host ?? "").toLowerCase();
    return this.lowerHost;
  }

  /** A request header by lowercased name (pseudo-headers included); undefined when absent. */
  header(lowerName: string): string | undefined {
    const http = this.req.http;
    if (http === null) return undefined;
    switch (lowerName) {
      case ":method":
        return http.method;
      case ":path":
        return http.path;
      case ":authority":
      case "host":
        // Envoy keeps Host as :authority.
        return http.host !== "" ? http.host : this.headerMapOf(http.headers).get("host");
    }
    return this.headerMapOf(http.headers).get(lowerName);
  }

  private headerMapOf(headers: Record<string, string>): Map<string, string> {
    if (this.headerMap === undefined) {
      const m = new Map<string, string>();
      for (const k in headers) {
        const v = headers[k];
        if (v === undefined) continue;
        const key = k.toLowerCase();
        const prev = m.get(key);
        // Envoy joins repeated headers with a comma before matching.
        m.set(key, prev === undefined ? v : `${prev},${v}`);
      }
      this.headerMap = m;
    }
    return this.headerMap;
  }
}
