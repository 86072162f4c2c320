// L4 authorization over the wire form the node proxy receives (`istio.security.Authorization`,
// as istiod converts AuthorizationPolicy and PeerAuthentication for ztunnel), with ztunnel's
// semantics: the policies that apply to a destination workload are the GLOBAL ones, the
// NAMESPACE ones of its namespace and the WORKLOAD_SELECTOR ones it lists; any matching DENY
// denies; with no ALLOW policy the connection is allowed, otherwise one must match. A policy
// matches when any rule does, a rule when all its clauses do, a clause when any of its matches
// does, a match when every positive field it sets matches and no negative one does.
// Pure, precompiled once per policy set, exception-free per connection. The conformance tier
// checks this against the resource-level engine on every shared L4 case.
import ipaddr from "ipaddr.js";
import { parseSpiffeId } from "../spiffe.js";
import type { Decision } from "./types.js";

// Structural wire shapes (the proto-loader decoding of istio.security.*); api/xds-types.ts
// declares the same messages for the transport.
export interface WireStringMatch {
  exact?: string | null;
  prefix?: string | null;
  suffix?: string | null;
  presence?: object | null;
  matchType?: string | null;
}
export interface WireIpPrefix {
  address?: Uint8Array | null;
  length?: number | null;
}
export interface WireServiceAccountMatch {
  namespace?: string | null;
  serviceAccount?: string | null;
}
export interface WireMatch {
  namespaces?: WireStringMatch[] | null;
  notNamespaces?: WireStringMatch[] | null;
  serviceAccounts?: WireServiceAccountMatch[] | null;
  notServiceAccounts?: WireServiceAccountMatch[] | null;
  principals?: WireStringMatch[] | null;
  notPrincipals?: WireStringMatch[] | null;
  sourceIps?: WireIpPrefix[] | null;
  notSourceIps?: WireIpPrefix[] | null;
  destinationIps?: WireIpPrefix[] | null;
  notDestinationIps?: WireIpPrefix[] | null;
  destinationPorts?: number[] | null;
  notDestinationPorts?: number[] | null;
}
export interface WireAuthorization {
  name?: string | null;
  namespace?: string | null;
  scope?: string | null;
  action?: string | null;
  rules?: { clauses?: { matches?: WireMatch[] | null }[] | null }[] | null;
  dryRun?: boolean | null;
}

/** One connection as the destination's node proxy sees it. */
export interface WireConnection {
  source: {
    /** The peer's SPIFFE ID when it authenticated with mTLS; null for plaintext. */
    identity: string | null;
    ip: string;
  };
  destination: {
    ip: string;
    port: number;
    namespace: string;
    name: string;
    /** "namespace/name" of the WORKLOAD_SELECTOR policies that select the workload. */
    authorizationPolicies: readonly string[];
  };
}

// ---------------------------------------------------------------------------------------------
// Compilation

type Str = (v: string) => boolean;
type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

interface Facts {
  principal: string | null;
  namespace: string | null;
  serviceAccount: string | null;
  src: ipaddr.IPv4 | ipaddr.IPv6 | null;
  dst: ipaddr.IPv4 | ipaddr.IPv6 | null;
  port: number;
}

type Pred = (f: Facts) => boolean;

function compileString(m: WireStringMatch): Str {
  const kind =
    m.matchType ??
    (m.exact != null
      ? "exact"
      : m.prefix != null
        ? "prefix"
        : m.suffix != null
          ? "suffix"
          : m.presence != null
            ? "presence"
            : "");
  switch (kind) {
    case "exact": {
      const x = m.exact ?? "";
      return (v) => v === x;
    }
    case "prefix": {
      const x = m.prefix ?? "";
      return (v) => v.startsWith(x);
    }
    case "suffix": {
      const x = m.suffix ?? "";
      return (v) => v.endsWith(x);
    }
    case "presence":
      return (v) => v !== "";
    default:
      return () => false;
  }
}

function compileCidr(p: WireIpPrefix): Cidr | null {
  const bytes = p.address;
  if (!bytes || (bytes.length !== 4 && bytes.length !== 16)) return null;
  try {
    const addr = ipaddr.fromByteArray([...bytes]);
    const max = addr.kind() === "ipv4" ? 32 : 128;
    const len = p.length ?? max;
    return [addr, Math.min(Math.max(len, 0), max)];
  } catch {
    return null;
  }
}

function inCidrs(ip: ipaddr.IPv4 | ipaddr.IPv6 | null, cidrs: readonly Cidr[]): boolean {
  if (ip === null) return false;
  for (const [addr, len] of cidrs) {
    if (addr.kind() === ip.kind() && ip.match(addr, len)) return true;
  }
  return false;
}

/** A positive/negative field pair: set positives must match, no negative may. */
function field<T>(
  pos: readonly T[] | null | undefined,
  neg: readonly T[] | null | undefined,
  test: (items: readonly T[], f: Facts) => boolean,
  out: Pred[],
): void {
  if (pos && pos.length > 0) out.push((f) => test(pos, f));
  if (neg && neg.length > 0) out.push((f) => !test(neg, f));
}

function strings(
  values: readonly WireStringMatch[],
  get: (f: Facts) => string | null,
): (items: readonly WireStringMatch[], f: Facts) => boolean {
  const compiled = values.map(compileString);
  return (_items, f) => {
    const v = get(f);
    if (v === null) return false;
    for (const c of compiled) if (c(v)) return true;
    return false;
  };
}

function compileMatch(m: WireMatch): Pred {
  const preds: Pred[] = [];
  const str = (
    pos: WireStringMatch[] | null | undefined,
    neg: WireStringMatch[] | null | undefined,
    get: (f: Facts) => string | null,
  ): void => {
    if (pos && pos.length > 0) {
      const t = strings(pos, get);
      preds.push((f) => t(pos, f));
    }
    if (neg && neg.length > 0) {
      const t = strings(neg, get);
      preds.push((f) => !t(neg, f));
    }
  };
  str(m.namespaces, m.notNamespaces, (f) => f.namespace);
  str(m.principals, m.notPrincipals, (f) => f.principal);
  field(
    m.serviceAccounts,
    m.notServiceAccounts,
    (items, f) =>
      items.some(
        (sa) =>
          f.namespace !== null && sa.namespace === f.namespace && sa.serviceAccount === f.serviceAccount,
      ),
    preds,
  );
  const cidrs = (list: WireIpPrefix[] | null | undefined): Cidr[] | undefined =>
    list ? list.map(compileCidr).filter((c): c is Cidr => c !== null) : undefined;
  const srcPos = cidrs(m.sourceIps);
  const srcNeg = cidrs(m.notSourceIps);
  const dstPos = cidrs(m.destinationIps);
  const dstNeg = cidrs(m.notDestinationIps);
  // A field whose every entry failed to parse still counts as set (and matches nothing).
  if (m.sourceIps && m.sourceIps.length > 0) preds.push((f) => inCidrs(f.src, srcPos ?? []));
  if (m.notSourceIps && m.notSourceIps.length > 0) preds.push((f) => !inCidrs(f.src, srcNeg ?? []));
  if (m.destinationIps && m.destinationIps.length > 0) preds.push((f) => inCidrs(f.dst, dstPos ?? []));
  if (m.notDestinationIps && m.notDestinationIps.length > 0) preds.push((f) => !inCidrs(f.dst, dstNeg ?? []));
  field(m.destinationPorts, m.notDestinationPorts, (items, f) => items.includes(f.port), preds);
  return (f) => {
    for (const p of preds) if (!p(f)) return false;
    return true;
  };
}

interface CompiledWirePolicy {
  key: string;
  namespace: string;
  action: "ALLOW" | "DENY";
  dryRun: boolean;
  /** Index of the first matching rule, or -1. */
  firstMatch(f: Facts): number;
}

function compilePolicy(a: WireAuthorization): CompiledWirePolicy {
  const rules = (a.rules ?? []).map((r) => (r.clauses ?? []).map((c) => (c.matches ?? []).map(compileMatch)));
  return {
    key: `${a.namespace ?? ""}/${a.name ?? ""}`,
    namespace: a.namespace ?? "",
    action: a.action === "DENY" ? "DENY" : "ALLOW",
    dryRun: a.dryRun === true,
    firstMatch(f: Facts): number {
      rules: for (let i = 0; i < rules.length; i++) {
        for (const clause of rules[i] ?? []) {
          let any = false;
          for (const m of clause) {
            if (m(f)) {
              any = true;
              break;
            }
          }
          if (!any) continue rules;
        }
        return i;
      }
      return -1;
    },
  };
}

export interface WirePolicySet {
  readonly rootNamespace: string;
  readonly global: readonly CompiledWirePolicy[];
  readonly byNamespace: ReadonlyMap<string, readonly CompiledWirePolicy[]>;
  readonly byKey: ReadonlyMap<string, CompiledWirePolicy>;
  readonly size: number;
}

export function compileWirePolicies(
  policies: Iterable<WireAuthorization>,
  opts: { rootNamespace?: string } = {},
): WirePolicySet {
  const global: CompiledWirePolicy[] = [];
  const byNamespace = new Map<string, CompiledWirePolicy[]>();
  const byKey = new Map<string, CompiledWirePolicy>();
  let size = 0;
  for (const a of policies) {
    const p = compilePolicy(a);
    size++;
    if (a.scope === "GLOBAL") global.push(p);
    else if (a.scope === "NAMESPACE") {
      const list = byNamespace.get(p.namespace);
      if (list) list.push(p);
      else byNamespace.set(p.namespace, [p]);
    } else byKey.set(p.key, p);
  }
  return { rootNamespace: opts.rootNamespace ?? "istio-system", global, byNamespace, byKey, size };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function parseIp(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  try {
    return ipaddr.process(text);
  } catch {
    return null;
  }
}

function factsOf(conn: WireConnection): Facts {
  let principal: string | null = null;
  let namespace: string | null = null;
  let serviceAccount: string | null = null;
  if (conn.source.identity !== null) {
    const id = parseSpiffeId(conn.source.identity);
    if (id.ok) {
      principal = `${id.identity.trustDomain}/ns/${id.identity.namespace}/sa/${id.identity.serviceAccount}`;
      namespace = id.identity.namespace;
      serviceAccount = id.identity.serviceAccount;
    } else principal = conn.source.identity.replace(/^spiffe:\/\//, "");
  }
  return {
    principal,
    namespace,
    serviceAccount,
    src: parseIp(conn.source.ip),
    dst: parseIp(conn.destination.ip),
    port: conn.destination.port,
  };
}

function applicable(set: WirePolicySet, conn: WireConnection): CompiledWirePolicy[] {
  const out: CompiledWirePolicy[] = [...set.global];
  for (const p of set.byNamespace.get(conn.destination.namespace) ?? []) out.push(p);
  for (const key of conn.destination.authorizationPolicies) {
    const p = set.byKey.get(key);
    if (p) out.push(p);
  }
  return out;
}

/** The L4 decision for one connection, naming the deciding policy. */
export function authorizeWire(set: WirePolicySet, conn: WireConnection): Decision {
  const f = factsOf(conn);
  const policies = applicable(set, conn);
  const dryRun: Decision["dryRun"] = [];
  const decide = (decision: "ALLOW" | "DENY", policy: string | null, reason: string): Decision => ({
    decision,
    policy,
    reason,
    audit: [],
    dryRun,
    custom: [],
  });
  for (const p of policies) {
    if (!p.dryRun) continue;
    dryRun.push({ policy: p.key, action: p.action, matched: p.firstMatch(f) >= 0, dryRun: true });
  }
  for (const p of policies) {
    if (p.dryRun || p.action !== "DENY") continue;
    const i = p.firstMatch(f);
    if (i >= 0) return decide("DENY", p.key, `denied by DENY policy ${p.key}: rule ${i} matched`);
  }
  let allows = 0;
  let names = "";
  for (const p of policies) {
    if (p.dryRun || p.action !== "ALLOW") continue;
    const i = p.firstMatch(f);
    if (i >= 0) return decide("ALLOW", p.key, `allowed by ALLOW policy ${p.key}: rule ${i} matched`);
    allows++;
    names = allows === 1 ? p.key : `${names}, ${p.key}`;
  }
  const target = `workload ${conn.destination.namespace}/${conn.destination.name}`;
  if (allows === 0) return decide("ALLOW", null, `allowed: no ALLOW policy applies to ${target}`);
  return decide(
    "DENY",
    null,
    `denied: no ALLOW policy matched (${allows === 1 ? "1 ALLOW policy applies" : `${allows} ALLOW policies apply`}: ${names})`,
  );
}
