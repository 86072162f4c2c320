// L4 authorization over the wire form the node proxy receives (`istio.security.Authorization`,
// as istiod converts AuthorizationPolicy and PeerAuthentication for ztunnel), with ztunnel's
// semantics (src/rbac.rs, src/state.rs assert_rbac, src/state/policy.rs):
// - the policies that apply to a destination workload are the NAMESPACE ones of its namespace,
//   the GLOBAL ones (whatever namespace they were written in) and the ones it lists by
//   "namespace/name" in `authorizationPolicies` (a listed name that is not known is skipped);
// - any matching DENY denies; with no ALLOW policy the connection is allowed; otherwise an ALLOW
//   policy must match. Dry-run policies are reported, never enforced;
// - a policy with no rules matches nothing; a rule matches when all its clauses do (none: it
//   matches); a clause when any of its matches does, except that a clause with no matches at all
//   matches; a match with no field set never matches; otherwise a match holds when each set
//   positive field has a hit and no set negative field has one;
// - StringMatch entries without a match type and prefixes that do not decode are dropped before
//   the emptiness checks (ztunnel filters them on conversion);
// - principals are compared on the SPIFFE ID without "spiffe://" and never match a plaintext peer;
//   namespaces on the peer's namespace ("" for a plaintext peer); service accounts need an identity.
//   An IPv4-mapped IPv6 peer address counts as IPv4 (ztunnel canonicalizes socket addresses);
//   a peer or destination address that does not parse is denied (ztunnel never sees one).
// Pure: compiled once per policy set (index by scope, namespace and name; strings, prefixes and
// ports precompiled, prefixes to integer ranges), exception-free and allocation-light per
// connection. The conformance tier checks it against the resource-level engine on every shared case.
import ipaddr from "ipaddr.js";
import type { Decision, PolicyNote } from "./types.js";
import type {
  Authorization,
  AuthorizationAction,
  AuthorizationScope,
  IpPrefix,
  Match,
  ServiceAccountMatch,
  StringMatch,
} from "./wire-types.js";

/** The message the evaluator compiles (decoded `istio.security.Authorization`). */
export type WireAuthorization = Authorization;
export type WireStringMatch = StringMatch;
export type WireIpPrefix = IpPrefix;
export type WireServiceAccountMatch = ServiceAccountMatch;
export type WireMatch = Match;

/** One connection as the destination's node proxy sees it. */
export interface WireConnection {
  source: {
    /** The peer's SPIFFE ID ("spiffe://td/ns/x/sa/y") when it authenticated with mTLS; null for plaintext. */
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
// Addresses: IPv4 as one unsigned 32-bit integer, IPv6 as four; prefixes as (network, mask).

interface Addr {
  v6: boolean;
  /** IPv4: w0 only. IPv6: w0..w3, most significant first. */
  w0: number;
  w1: number;
  w2: number;
  w3: number;
}

interface Cidr {
  v6: boolean;
  n0: number;
  n1: number;
  n2: number;
  n3: number;
  m0: number;
  m1: number;
  m2: number;
  m3: number;
  text: string;
}

function maskWord(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

function wordsOf(bytes: ArrayLike<number>, at: number): number {
  return (
    (((bytes[at] ?? 0) << 24) |
      ((bytes[at + 1] ?? 0) << 16) |
      ((bytes[at + 2] ?? 0) << 8) |
      (bytes[at + 3] ?? 0)) >>>
    0
  );
}

/** ztunnel: 4 or 16 address bytes, prefix length as u8 and at most the address width; else dropped. */
function compileCidr(p: IpPrefix | null | undefined): Cidr | null {
  const bytes = p?.address;
  if (bytes == null || (bytes.length !== 4 && bytes.length !== 16)) return null;
  const v6 = bytes.length === 16;
  const max = v6 ? 128 : 32;
  const len = (Number(p?.length ?? 0) >>> 0) & 0xff;
  if (len > max) return null;
  const m = [0, 1, 2, 3].map((i) => (v6 ? maskWord(len - 32 * i) : i === 0 ? maskWord(len) : 0));
  const n = [0, 1, 2, 3].map((i) => (i === 0 || v6 ? wordsOf(bytes, 4 * i) & (m[i] ?? 0) : 0) >>> 0);
  let text: string;
  try {
    text = `${ipaddr.fromByteArray([...bytes]).toString()}/${len}`;
  } catch {
    text = `?/${len}`;
  }
  return {
    v6,
    n0: n[0] ?? 0,
    n1: n[1] ?? 0,
    n2: n[2] ?? 0,
    n3: n[3] ?? 0,
    m0: m[0] ?? 0,
    m1: m[1] ?? 0,
    m2: m[2] ?? 0,
    m3: m[3] ?? 0,
    text,
  };
}

function inCidr(a: Addr, c: Cidr): boolean {
  if (a.v6 !== c.v6) return false;
  if ((a.w0 & c.m0) >>> 0 !== c.n0) return false;
  if (!a.v6) return true;
  return (a.w1 & c.m1) >>> 0 === c.n1 && (a.w2 & c.m2) >>> 0 === c.n2 && (a.w3 & c.m3) >>> 0 === c.n3;
}

function anyCidr(a: Addr, list: readonly Cidr[]): boolean {
  for (const c of list) if (inCidr(a, c)) return true;
  return false;
}

/** Dotted-quad fast path; anything else through ipaddr.js. IPv4-mapped IPv6 counts as IPv4. */
function parseAddr(text: string): Addr | null {
  let w = 0;
  let octet = -1;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch >= 48 && ch <= 57) {
      octet = octet < 0 ? ch - 48 : octet * 10 + (ch - 48);
      if (octet > 255) return parseOther(text);
    } else if (ch === 46 && octet >= 0 && dots < 3) {
      w = w * 256 + octet;
      octet = -1;
      dots++;
    } else {
      return parseOther(text);
    }
  }
  if (dots !== 3 || octet < 0) return parseOther(text);
  return { v6: false, w0: (w * 256 + octet) >>> 0, w1: 0, w2: 0, w3: 0 };
}

function parseOther(text: string): Addr | null {
  try {
    const b = ipaddr.process(text).toByteArray();
    if (b.length === 4) return { v6: false, w0: wordsOf(b, 0), w1: 0, w2: 0, w3: 0 };
    return { v6: true, w0: wordsOf(b, 0), w1: wordsOf(b, 4), w2: wordsOf(b, 8), w3: wordsOf(b, 12) };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Strings, service accounts

const EXACT = 0;
const PREFIX = 1;
const SUFFIX = 2;
const PRESENCE = 3;

interface Str {
  kind: number;
  value: string;
}

/** ztunnel: the oneof member decides; a StringMatch with none is dropped. */
function compileString(m: StringMatch | null | undefined): Str | null {
  if (m == null) return null;
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
            : undefined);
  switch (kind) {
    case "exact":
      return { kind: EXACT, value: m.exact ?? "" };
    case "prefix":
      return { kind: PREFIX, value: m.prefix ?? "" };
    case "suffix":
      return { kind: SUFFIX, value: m.suffix ?? "" };
    case "presence":
      return { kind: PRESENCE, value: "" };
    default:
      return null;
  }
}

function strHit(s: Str, v: string): boolean {
  switch (s.kind) {
    case EXACT:
      return v === s.value;
    case PREFIX:
      return v.startsWith(s.value);
    case SUFFIX:
      return v.endsWith(s.value);
    default:
      return v !== "";
  }
}

function anyStr(list: readonly Str[], v: string): boolean {
  for (const s of list) if (strHit(s, v)) return true;
  return false;
}

function showStr(s: Str): string {
  switch (s.kind) {
    case EXACT:
      return s.value;
    case PREFIX:
      return `${s.value}*`;
    case SUFFIX:
      return `*${s.value}`;
    default:
      return "*";
  }
}

interface Sa {
  namespace: string;
  serviceAccount: string;
}

// ---------------------------------------------------------------------------------------------
// Matches, policies

/** One `Match` with every list precompiled; null where the field is unset (after dropping). */
interface CompiledMatch {
  empty: boolean;
  ports: readonly number[] | null;
  notPorts: readonly number[] | null;
  principals: readonly Str[] | null;
  notPrincipals: readonly Str[] | null;
  namespaces: readonly Str[] | null;
  notNamespaces: readonly Str[] | null;
  sas: readonly Sa[] | null;
  notSas: readonly Sa[] | null;
  src: readonly Cidr[] | null;
  notSrc: readonly Cidr[] | null;
  dst: readonly Cidr[] | null;
  notDst: readonly Cidr[] | null;
  /** What the match requires, for reasons ("principals=[...], destinationPorts=[8080]"). */
  text: string;
}

const NONE: readonly never[] = [];
/** A repeated field as an array, whatever the message holds there (decoded messages may hold null). */
const list = <T>(v: readonly T[] | null | undefined): readonly T[] =>
  Array.isArray(v) ? (v as readonly T[]) : NONE;
const nonEmpty = <T>(v: T[]): T[] | null => (v.length > 0 ? v : null);

function compileMatch(m: Match | null | undefined): CompiledMatch {
  const strs = (v: readonly StringMatch[] | undefined): Str[] | null =>
    nonEmpty(
      list(v)
        .map(compileString)
        .filter((s): s is Str => s !== null),
    );
  const cidrs = (v: readonly IpPrefix[] | undefined): Cidr[] | null =>
    nonEmpty(
      list(v)
        .map(compileCidr)
        .filter((c): c is Cidr => c !== null),
    );
  const sas = (v: readonly ServiceAccountMatch[] | undefined): Sa[] | null =>
    nonEmpty(
      list(v).map((s) => ({ namespace: s?.namespace ?? "", serviceAccount: s?.serviceAccount ?? "" })),
    );
  // ztunnel reads ports as u16 (`*p as u16`).
  const ports = (v: readonly number[] | undefined): number[] | null =>
    nonEmpty(list(v).map((p) => (Number(p) >>> 0) & 0xffff));
  const c = {
    ports: ports(m?.destinationPorts),
    notPorts: ports(m?.notDestinationPorts),
    principals: strs(m?.principals),
    notPrincipals: strs(m?.notPrincipals),
    namespaces: strs(m?.namespaces),
    notNamespaces: strs(m?.notNamespaces),
    sas: sas(m?.serviceAccounts),
    notSas: sas(m?.notServiceAccounts),
    src: cidrs(m?.sourceIps),
    notSrc: cidrs(m?.notSourceIps),
    dst: cidrs(m?.destinationIps),
    notDst: cidrs(m?.notDestinationIps),
  };
  const parts: string[] = [];
  const show = <T>(name: string, v: readonly T[] | null, f: (x: T) => string): void => {
    if (v) parts.push(`${name}=[${v.map(f).join(", ")}]`);
  };
  show("principals", c.principals, showStr);
  show("notPrincipals", c.notPrincipals, showStr);
  show("namespaces", c.namespaces, showStr);
  show("notNamespaces", c.notNamespaces, showStr);
  const showSa = (s: Sa): string => `${s.namespace}/${s.serviceAccount}`;
  show("serviceAccounts", c.sas, showSa);
  show("notServiceAccounts", c.notSas, showSa);
  const showCidr = (x: Cidr): string => x.text;
  show("sourceIps", c.src, showCidr);
  show("notSourceIps", c.notSrc, showCidr);
  show("destinationIps", c.dst, showCidr);
  show("notDestinationIps", c.notDst, showCidr);
  show("destinationPorts", c.ports, String);
  show("notDestinationPorts", c.notPorts, String);
  // One literal with a fixed key order: every compiled match shares one hidden class (an object
  // spread here made matchHolds ~30x slower).
  return {
    empty: parts.length === 0,
    ports: c.ports,
    notPorts: c.notPorts,
    principals: c.principals,
    notPrincipals: c.notPrincipals,
    namespaces: c.namespaces,
    notNamespaces: c.notNamespaces,
    sas: c.sas,
    notSas: c.notSas,
    src: c.src,
    notSrc: c.notSrc,
    dst: c.dst,
    notDst: c.notDst,
    text: parts.join(", "),
  };
}

/** What the evaluator knows about a connection (computed once per decision). */
interface Facts {
  /** SPIFFE ID without "spiffe://"; null for a plaintext peer. */
  principal: string | null;
  /** The peer's namespace; "" for a plaintext peer (as ztunnel). */
  namespace: string;
  serviceAccount: string | null;
  src: Addr;
  dst: Addr;
  port: number;
}

function anyPort(list: readonly number[], port: number): boolean {
  for (const p of list) if (p === port) return true;
  return false;
}

function anySa(list: readonly Sa[], f: Facts): boolean {
  if (f.serviceAccount === null) return false;
  for (const s of list) if (s.namespace === f.namespace && s.serviceAccount === f.serviceAccount) return true;
  return false;
}

function principalHit(list: readonly Str[], f: Facts): boolean {
  return f.principal !== null && anyStr(list, f.principal);
}

function matchHolds(m: CompiledMatch, f: Facts): boolean {
  if (m.empty) return false;
  if (m.ports !== null && !anyPort(m.ports, f.port)) return false;
  if (m.notPorts !== null && anyPort(m.notPorts, f.port)) return false;
  if (m.principals !== null && !principalHit(m.principals, f)) return false;
  if (m.notPrincipals !== null && principalHit(m.notPrincipals, f)) return false;
  if (m.namespaces !== null && !anyStr(m.namespaces, f.namespace)) return false;
  if (m.notNamespaces !== null && anyStr(m.notNamespaces, f.namespace)) return false;
  if (m.sas !== null && !anySa(m.sas, f)) return false;
  if (m.notSas !== null && anySa(m.notSas, f)) return false;
  if (m.src !== null && !anyCidr(f.src, m.src)) return false;
  if (m.notSrc !== null && anyCidr(f.src, m.notSrc)) return false;
  if (m.dst !== null && !anyCidr(f.dst, m.dst)) return false;
  if (m.notDst !== null && anyCidr(f.dst, m.notDst)) return false;
  return true;
}

/** Index of the first match of a clause that holds; -1 when none; -2 for a clause with no matches. */
function clauseHit(clause: readonly CompiledMatch[], f: Facts): number {
  if (clause.length === 0) return -2;
  for (let i = 0; i < clause.length; i++) if (matchHolds(clause[i] as CompiledMatch, f)) return i;
  return -1;
}

interface CompiledWirePolicy {
  /** "namespace/name". */
  readonly key: string;
  readonly namespace: string;
  readonly scope: AuthorizationScope;
  readonly action: AuthorizationAction;
  readonly dryRun: boolean;
  /** rules → clauses → matches. */
  readonly rules: readonly (readonly (readonly CompiledMatch[])[])[];
}

/** Index of the first rule that matches, or -1 (always -1 for a policy with no rules). */
function firstRule(p: CompiledWirePolicy, f: Facts): number {
  rules: for (let r = 0; r < p.rules.length; r++) {
    for (const clause of p.rules[r] as (readonly CompiledMatch[])[]) {
      if (clauseHit(clause, f) === -1) continue rules;
    }
    return r;
  }
  return -1;
}

/** "rule 0 matched (clause 0: principals=[...]; clause 1: destinationPorts=[8080])". */
function explain(p: CompiledWirePolicy, r: number, f: Facts): string {
  const rule = p.rules[r] ?? [];
  if (rule.length === 0) return `rule ${r} matched (it has no conditions)`;
  const parts = rule.map((clause, i) => {
    const hit = clauseHit(clause, f);
    return hit < 0 ? `clause ${i}: no conditions` : `clause ${i}: ${clause[hit]?.text ?? ""}`;
  });
  return `rule ${r} matched (${parts.join("; ")})`;
}

const SCOPES: readonly AuthorizationScope[] = ["GLOBAL", "NAMESPACE", "WORKLOAD_SELECTOR"];
const ACTIONS: readonly AuthorizationAction[] = ["ALLOW", "DENY"];

/** proto3 enum: unset is the zero value; a number is its index; anything else is rejected (ztunnel NACKs). */
function enumOf<T extends string>(v: unknown, values: readonly T[]): T | null {
  if (v == null) return values[0] ?? null;
  if (typeof v === "number") return values[v] ?? null;
  return values.find((x) => x === v) ?? null;
}

function compilePolicy(a: Authorization): CompiledWirePolicy | string {
  const scope = enumOf(a.scope, SCOPES);
  if (scope === null) return `unknown scope ${String(a.scope)}`;
  const action = enumOf(a.action, ACTIONS);
  if (action === null) return `unsupported action ${String(a.action)}`;
  const namespace = a.namespace ?? "";
  return {
    key: `${namespace}/${a.name ?? ""}`,
    namespace,
    scope,
    action,
    dryRun: a.dryRun === true,
    rules: list(a.rules).map((r) => list(r?.clauses).map((c) => list(c?.matches).map(compileMatch))),
  };
}

/** Policies of one bucket split by role, so a decision scans only what it needs. */
interface Bucket {
  deny: CompiledWirePolicy[];
  allow: CompiledWirePolicy[];
  dryRun: CompiledWirePolicy[];
}

const emptyBucket = (): Bucket => ({ deny: [], allow: [], dryRun: [] });

function place(b: Bucket, p: CompiledWirePolicy): void {
  if (p.dryRun) b.dryRun.push(p);
  else if (p.action === "DENY") b.deny.push(p);
  else b.allow.push(p);
}

export interface WirePolicySet {
  readonly rootNamespace: string;
  /** GLOBAL-scope policies (ztunnel keys them by scope alone, not by their namespace). */
  readonly global: Readonly<Bucket>;
  /** NAMESPACE-scope policies by namespace. */
  readonly byNamespace: ReadonlyMap<string, Readonly<Bucket>>;
  /** Every accepted policy by "namespace/name" (what a workload's authorizationPolicies name). */
  readonly byKey: ReadonlyMap<string, CompiledWirePolicy>;
  /** Accepted policies. */
  readonly size: number;
  /** Policies ztunnel would refuse (unknown scope or action), with why; they never apply. */
  readonly rejected: readonly { policy: string; reason: string }[];
}

/**
 * Compile the Authorization messages a node holds, once per push. A later message with the same
 * "namespace/name" replaces an earlier one (as an xDS resource does). Never throws.
 */
export function compileWirePolicies(
  policies: Iterable<Authorization>,
  opts: { rootNamespace?: string } = {},
): WirePolicySet {
  const byKey = new Map<string, CompiledWirePolicy>();
  const rejected: { policy: string; reason: string }[] = [];
  for (const a of policies) {
    if (a == null) continue;
    const p = compilePolicy(a);
    if (typeof p === "string") {
      const key = `${a.namespace ?? ""}/${a.name ?? ""}`;
      byKey.delete(key);
      rejected.push({ policy: key, reason: p });
    } else {
      byKey.set(p.key, p);
    }
  }
  const global = emptyBucket();
  const byNamespace = new Map<string, Bucket>();
  for (const p of byKey.values()) {
    if (p.scope === "GLOBAL") place(global, p);
    else if (p.scope === "NAMESPACE") {
      let b = byNamespace.get(p.namespace);
      if (!b) byNamespace.set(p.namespace, (b = emptyBucket()));
      place(b, p);
    }
  }
  return {
    rootNamespace: opts.rootNamespace ?? "istio-system",
    global,
    byNamespace,
    byKey,
    size: byKey.size,
    rejected,
  };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function factsOf(conn: WireConnection, src: Addr, dst: Addr): Facts {
  const id = conn.source.identity;
  let principal: string | null = null;
  let namespace = "";
  let serviceAccount: string | null = null;
  if (id != null && id.startsWith("spiffe://")) {
    principal = id.slice(9);
    const parts = principal.split("/");
    if (parts.length === 5 && parts[1] === "ns" && parts[3] === "sa") {
      namespace = parts[2] ?? "";
      serviceAccount = parts[4] ?? "";
    }
  }
  return { principal, namespace, serviceAccount, src, dst, port: conn.destination.port };
}

const NO_POLICIES: readonly string[] = [];
/** How many unmatched ALLOW policies a denial's reason names. */
const REASON_NAMES = 5;

/** The listed policies that are not already in the namespace or global buckets. */
function listed(set: WirePolicySet, conn: WireConnection): CompiledWirePolicy[] | null {
  const keys = conn.destination.authorizationPolicies ?? NO_POLICIES;
  let out: CompiledWirePolicy[] | null = null;
  for (const key of keys) {
    const p = set.byKey.get(key);
    if (p === undefined) continue; // not (yet) received: ztunnel skips it
    if (p.scope === "GLOBAL" || (p.scope === "NAMESPACE" && p.namespace === conn.destination.namespace))
      continue; // already applies
    if (out === null) out = [];
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

function decision(
  verdict: "ALLOW" | "DENY",
  policy: string | null,
  reason: string,
  dryRun: PolicyNote[],
): Decision {
  return { decision: verdict, policy, reason, audit: [], dryRun, custom: [] };
}

/** The L4 decision for one connection, naming the deciding policy and what matched. Never throws. */
export function authorizeWire(set: WirePolicySet, conn: WireConnection): Decision {
  const src = parseAddr(conn.source.ip);
  const dst = parseAddr(conn.destination.ip);
  if (src === null || dst === null) {
    const which =
      src === null ? `source address "${conn.source.ip}"` : `destination address "${conn.destination.ip}"`;
    return decision("DENY", null, `denied: the ${which} is not an IP address`, []);
  }
  const f = factsOf(conn, src, dst);
  const ns = set.byNamespace.get(conn.destination.namespace);
  const extra = listed(set, conn);
  const buckets: readonly Readonly<Bucket>[] = ns ? [ns, set.global] : [set.global];

  // Dry-run policies: reported with what they would have done, never enforced.
  const dryRun: PolicyNote[] = [];
  const note = (p: CompiledWirePolicy): void => {
    dryRun.push({ policy: p.key, action: p.action, matched: firstRule(p, f) >= 0, dryRun: true });
  };
  for (const b of buckets) for (const p of b.dryRun) note(p);
  if (extra) for (const p of extra) if (p.dryRun) note(p);

  const deny = (p: CompiledWirePolicy): Decision | null => {
    const r = firstRule(p, f);
    return r < 0
      ? null
      : decision("DENY", p.key, `denied by DENY policy ${p.key}: ${explain(p, r, f)}`, dryRun);
  };
  for (const b of buckets) {
    for (const p of b.deny) {
      const d = deny(p);
      if (d) return d;
    }
  }
  if (extra) {
    for (const p of extra) {
      if (p.dryRun || p.action !== "DENY") continue;
      const d = deny(p);
      if (d) return d;
    }
  }

  // A denial's reason names the first few ALLOW policies that applied and counts the rest.
  const allows: string[] = [];
  let allowCount = 0;
  const allow = (p: CompiledWirePolicy): Decision | null => {
    const r = firstRule(p, f);
    if (r >= 0)
      return decision("ALLOW", p.key, `allowed by ALLOW policy ${p.key}: ${explain(p, r, f)}`, dryRun);
    if (allowCount++ < REASON_NAMES) allows.push(p.key);
    return null;
  };
  for (const b of buckets) {
    for (const p of b.allow) {
      const d = allow(p);
      if (d) return d;
    }
  }
  if (extra) {
    for (const p of extra) {
      if (p.dryRun || p.action !== "ALLOW") continue;
      const d = allow(p);
      if (d) return d;
    }
  }
  const target = `workload ${conn.destination.namespace}/${conn.destination.name}`;
  if (allowCount === 0)
    return decision("ALLOW", null, `allowed: no ALLOW policy applies to ${target}`, dryRun);
  const n = allowCount;
  const more = n > allows.length ? ` and ${n - allows.length} more` : "";
  return decision(
    "DENY",
    null,
    `denied: no ALLOW policy matched ${target} (${n === 1 ? "1 ALLOW policy applies" : `${n} ALLOW policies apply`}: ${allows.join(", ")}${more})`,
    dryRun,
  );
}
