// DestinationRule lookup as istiod does it for a proxy, and the merge of the rule's traffic
// policy for one port and subset. Pure: no I/O.
//
// Lookup (for a client namespace and a service FQDN): rules in the client's namespace first
// (all of them, whatever their exportTo), then rules in the service's namespace exported to the
// client, then rules in the root namespace exported to the client. Within a namespace an exact
// host wins over wildcards, the longest wildcard over shorter ones. Several rules of one
// namespace for the same host are merged as istiod does: the first (oldest; input order when
// creation times are equal or missing) supplies the traffic policy, the subsets of all are
// joined, the first definition of a subset name winning. Short hosts ("reviews") are qualified
// with the rule's namespace and the mesh domain. Rules with a workloadSelector apply to the
// selected sidecars only and are not used by the waypoint. exportTo: unset or "*" everyone,
// "." the rule's namespace, a name that namespace ("~" is not valid for DestinationRules).
//
// Policy merge (istiod's MergeTrafficPolicy): the top-level fields, each overridden by the
// top-level portLevelSettings entry for the port, then by the subset's top-level fields, then by
// the subset's portLevelSettings entry for the port. Each of loadBalancer, connectionPool,
// outlierDetection and tls is replaced whole, never merged field by field.
import type { DestinationRule } from "../resources/registry.js";
import type { Subset, TrafficPolicy } from "../resources/networking/destination-rule.js";
import { clusterPolicyOf, type ClusterPolicy, type PolicyFields } from "./policy.js";

interface CompiledRule {
  /** "namespace/name" of the first rule merged. */
  id: string;
  namespace: string;
  host: string;
  exportTo: string[];
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
}

interface NamespaceRules {
  exact: Map<string, CompiledRule>;
  /** Wildcard rules, longest host first. */
  wildcards: CompiledRule[];
}

export interface DestinationIndex {
  readonly rootNamespace: string;
  readonly domain: string;
  readonly byNamespace: ReadonlyMap<string, NamespaceRules>;
}

export interface DestinationQuery {
  /** FQDN of the service, e.g. reviews.default.svc.cluster.local. */
  host: string;
  clientNamespace: string;
  port: number;
  subset?: string;
}

/** Qualify a DestinationRule host as istiod does: names without a dot are short names. */
export function qualifyHost(host: string, namespace: string, domain: string): string {
  if (host === "*" || host.includes(".")) return host.toLowerCase();
  return `${host}.${namespace}.svc.${domain}`.toLowerCase();
}

function creationTime(r: DestinationRule): number {
  const t = r.metadata.creationTimestamp;
  const ms = typeof t === "string" ? Date.parse(t) : NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

export function compileDestinationRules(
  rules: readonly DestinationRule[],
  opts: { rootNamespace: string; domain: string },
): DestinationIndex {
  // Oldest first; a stable sort keeps input order among equals.
  const ordered = rules
    .map((r, i) => ({ r, i, t: creationTime(r) }))
    .sort((a, b) => (a.t === b.t ? a.i - b.i : a.t < b.t ? -1 : 1))
    .map((x) => x.r);
  const byNamespace = new Map<string, NamespaceRules>();
  const merged = new Map<string, CompiledRule>();
  for (const r of ordered) {
    if (r.spec.workloadSelector) continue;
    const namespace = r.metadata.namespace ?? "default";
    const host = qualifyHost(r.spec.host, namespace, opts.domain);
    const key = `${namespace}\u0000${host}`;
    const existing = merged.get(key);
    if (existing) {
      if (!existing.trafficPolicy && r.spec.trafficPolicy) existing.trafficPolicy = r.spec.trafficPolicy;
      for (const s of r.spec.subsets ?? []) {
        if (!existing.subsets.some((e) => e.name === s.name)) existing.subsets.push(s);
      }
      continue;
    }
    const compiled: CompiledRule = {
      id: `${namespace}/${r.metadata.name}`,
      namespace,
      host,
      exportTo: r.spec.exportTo && r.spec.exportTo.length > 0 ? r.spec.exportTo : ["*"],
      subsets: [...(r.spec.subsets ?? [])],
      ...(r.spec.trafficPolicy ? { trafficPolicy: r.spec.trafficPolicy } : {}),
    };
    merged.set(key, compiled);
    let ns = byNamespace.get(namespace);
    if (!ns) {
      ns = { exact: new Map(), wildcards: [] };
      byNamespace.set(namespace, ns);
    }
    if (host.startsWith("*")) ns.wildcards.push(compiled);
    else ns.exact.set(host, compiled);
  }
  for (const ns of byNamespace.values()) ns.wildcards.sort((a, b) => b.host.length - a.host.length);
  return { rootNamespace: opts.rootNamespace, domain: opts.domain, byNamespace };
}

function wildcardMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
  return host.endsWith(pattern.slice(1));
}

function visibleTo(rule: CompiledRule, clientNamespace: string): boolean {
  return rule.exportTo.some(
    (e) => e === "*" || (e === "." && rule.namespace === clientNamespace) || e === clientNamespace,
  );
}

function findIn(
  index: DestinationIndex,
  namespace: string,
  host: string,
  clientNamespace: string | null,
): CompiledRule | undefined {
  const ns = index.byNamespace.get(namespace);
  if (!ns) return undefined;
  const ok = (r: CompiledRule) => clientNamespace === null || visibleTo(r, clientNamespace);
  const exact = ns.exact.get(host);
  if (exact && ok(exact)) return exact;
  return ns.wildcards.find((r) => wildcardMatches(r.host, host) && ok(r));
}

/** The namespace of a Kubernetes service FQDN (name.namespace.svc.domain), if it is one. */
export function serviceNamespaceOf(host: string, domain: string): string | undefined {
  const suffix = `.svc.${domain}`;
  if (!host.endsWith(suffix)) return undefined;
  const parts = host.slice(0, -suffix.length).split(".");
  return parts.length === 2 ? parts[1] : undefined;
}

/** The DestinationRule that applies, by istiod's precedence; undefined when none. */
export function findDestinationRule(
  index: DestinationIndex,
  host: string,
  clientNamespace: string,
): { id: string; namespace: string; host: string } | undefined {
  const r = lookupRule(index, host.toLowerCase(), clientNamespace);
  return r ? { id: r.id, namespace: r.namespace, host: r.host } : undefined;
}

function lookupRule(
  index: DestinationIndex,
  host: string,
  clientNamespace: string,
): CompiledRule | undefined {
  // 1. The client's own namespace: its rules apply to it whatever their exportTo.
  const local = findIn(index, clientNamespace, host, null);
  if (local) return local;
  // 2. The service's namespace, rules exported to the client.
  const svcNs = serviceNamespaceOf(host, index.domain);
  if (svcNs !== undefined && svcNs !== clientNamespace) {
    const r = findIn(index, svcNs, host, clientNamespace);
    if (r) return r;
  }
  // 3. The root namespace, rules exported to the client.
  if (index.rootNamespace !== clientNamespace && index.rootNamespace !== svcNs) {
    return findIn(index, index.rootNamespace, host, clientNamespace);
  }
  return undefined;
}

function override(base: PolicyFields, over: PolicyFields | undefined): PolicyFields {
  if (!over) return base;
  return {
    loadBalancer: over.loadBalancer ?? base.loadBalancer,
    connectionPool: over.connectionPool ?? base.connectionPool,
    outlierDetection: over.outlierDetection ?? base.outlierDetection,
    tls: over.tls ?? base.tls,
  };
}

function forPort(policy: TrafficPolicy | undefined, port: number): PolicyFields {
  if (!policy) return {};
  const top: PolicyFields = {
    loadBalancer: policy.loadBalancer,
    connectionPool: policy.connectionPool,
    outlierDetection: policy.outlierDetection,
    tls: policy.tls,
  };
  const portLevel = policy.portLevelSettings?.find((p) => p.port?.number === port);
  return override(top, portLevel);
}

/** Merge a rule's top-level and subset traffic policies for one port (istiod's order). */
export function mergeTrafficPolicy(
  top: TrafficPolicy | undefined,
  subsetPolicy: TrafficPolicy | undefined,
  port: number,
): PolicyFields {
  const base = forPort(top, port);
  if (!subsetPolicy) return base;
  return override(base, forPort(subsetPolicy, port));
}

/** The effective policy for a request to host:port (and subset) from a client namespace. */
export function resolveDestination(index: DestinationIndex, q: DestinationQuery): ClusterPolicy {
  const rule = lookupRule(index, q.host.toLowerCase(), q.clientNamespace);
  if (!rule) {
    const policy = clusterPolicyOf(undefined);
    if (q.subset !== undefined) policy.unknownSubset = true;
    return policy;
  }
  if (q.subset === undefined) {
    return { ...clusterPolicyOf(mergeTrafficPolicy(rule.trafficPolicy, undefined, q.port)), rule: rule.id };
  }
  const subset = rule.subsets.find((s) => s.name === q.subset);
  if (!subset) {
    return {
      ...clusterPolicyOf(mergeTrafficPolicy(rule.trafficPolicy, undefined, q.port)),
      rule: rule.id,
      unknownSubset: true,
    };
  }
  return {
    ...clusterPolicyOf(mergeTrafficPolicy(rule.trafficPolicy, subset.trafficPolicy, q.port)),
    rule: rule.id,
    subsetLabels: { ...(subset.labels ?? {}) },
  };
}

/** Whether an endpoint's labels satisfy a subset's (all subset labels present and equal). */
export function matchesSubset(
  endpointLabels: Readonly<Record<string, string>>,
  subsetLabels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (!subsetLabels) return true;
  return Object.entries(subsetLabels).every(([k, v]) => endpointLabels[k] === v);
}
