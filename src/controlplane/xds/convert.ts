// Pure conversion of Ambit's validated resources into the Delta xDS resources istiod sends ztunnel:
// istio.workload.Address (Workload | Service), istio.security.Authorization, and Ambit's RevocationList.
import ipaddr from "ipaddr.js";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  REVOCATION_LIST_TYPE_URL,
  resourceVersionOf,
  type Address,
  type Authorization,
  type GatewayAddress,
  type LoadBalancing,
  type NetworkAddress,
  type Port,
  type PortList,
  type RevocationListMessage,
  type Service as ServiceMessage,
  type Workload,
  type WorkloadType,
} from "../../api/xds-types.js";
import type { Revocation } from "../../model/revocation.js";
import { podAddresses } from "../../model/resources/core.js";
import type {
  AnyResource,
  Gateway,
  Pod,
  Service,
  ServiceEntry,
  WorkloadEntry,
} from "../../model/resources/registry.js";
import { convertAuthorizationPolicy, PeerAuthnConversion, type ConvertedPolicy } from "./convert-authz.js";

export const DEFAULT_CLUSTER_ID = "Kubernetes";
export const DEFAULT_DOMAIN = "cluster.local";
export const HBONE_PORT = 15008;
export const REVOCATIONS_RESOURCE_NAME = "revocations";

const DATAPLANE_MODE = "istio.io/dataplane-mode";
const USE_WAYPOINT = "istio.io/use-waypoint";
const USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace";
const WAYPOINT_FOR = "istio.io/waypoint-for";
const TRAFFIC_DISTRIBUTION = "networking.istio.io/traffic-distribution";
/** Ambit's label naming the node a WorkloadEntry's workload runs on (see ARCHITECTURE.md). */
const NODE_LABEL = "ambit.io/node";

export interface SnapshotInput {
  resources: readonly AnyResource[];
  /** "namespace/name" of a Pod → its IPs (assigned by the lab). */
  podIps: ReadonlyMap<string, readonly string[]>;
  revocations: readonly Revocation[];
  rootNamespace?: string;
  trustDomain?: string;
  clusterId?: string;
  /** Kubernetes cluster DNS domain (default cluster.local). */
  domain?: string;
}

export interface Snapshot {
  /** Workloads keyed by uid, Services by "namespace/hostname" (istiod's resource names). */
  addresses: Map<string, Address>;
  /** Keyed by "namespace/name". */
  authorizations: Map<string, Authorization>;
  /** One entry, "revocations". */
  revocations: Map<string, RevocationListMessage>;
}

type Labels = Readonly<Record<string, string>>;

interface Context {
  clusterId: string;
  domain: string;
  trustDomain: string;
  rootNamespace: string;
  namespaces: Map<string, Labels>;
  /** "namespace/name" → waypoint Gateway. */
  waypoints: Map<string, Gateway>;
  services: Service[];
  serviceEntries: ServiceEntry[];
  /** Policies istiod sends, with their selectors. */
  policies: ConvertedPolicy[];
  peerAuthn: PeerAuthnConversion;
  /**
   * Indexes so that a workload looks only at candidates (10,000 workloads × 1,000 services must not
   * be a full cross product): Services with a selector by namespace, then by one "key=value" pair of
   * their selector (a selecting Service must match every pair, so any one finds it); ServiceEntries
   * with a workload selector, and policies with a selector, by namespace.
   */
  servicesByNs: Map<string, SelectorIndex<Service>>;
  serviceEntriesByNs: Map<string, ServiceEntry[]>;
  selectorPoliciesByNs: Map<string, SelectorIndex<ConvertedPolicy>>;
}

function pushTo<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/**
 * Items with label selectors, found by the labels they might select: an item is filed under one
 * "key=value" pair of its selector (a selected workload has every pair, so any one finds it), or
 * under "everything" when its selector is empty. Candidates still go through `selects`.
 */
class SelectorIndex<T> {
  private readonly byPair = new Map<string, T[]>();
  private readonly everything: T[] = [];

  add(selector: Labels, item: T): void {
    const first = Object.entries(selector)[0];
    if (first) pushTo(this.byPair, `${first[0]}=${first[1]}`, item);
    else this.everything.push(item);
  }

  candidates(labels: Labels): T[] {
    const out = [...this.everything];
    for (const [k, v] of Object.entries(labels)) {
      const list = this.byPair.get(`${k}=${v}`);
      if (list) out.push(...list);
    }
    // An item is filed once, under one pair, so it appears at most once here.
    return out;
  }
}

function indexIn<T>(m: Map<string, SelectorIndex<T>>, ns: string): SelectorIndex<T> {
  let ix = m.get(ns);
  if (!ix) {
    ix = new SelectorIndex<T>();
    m.set(ns, ix);
  }
  return ix;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function ipBytes(ip: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(ipaddr.parse(ip).toByteArray());
  } catch {
    return undefined;
  }
}

function selects(selector: Labels | undefined, labels: Labels): boolean {
  if (!selector) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function sortedRecord<V>(entries: Iterable<[string, V]>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const [k, v] of [...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) out[k] = v;
  return out;
}

function nsOf(r: { metadata: { namespace?: string } }): string {
  return r.metadata.namespace ?? "default";
}

export function serviceHostname(name: string, namespace: string, domain = DEFAULT_DOMAIN): string {
  return `${name}.${namespace}.svc.${domain}`;
}

/** istiod's pickTrustDomain: the default trust domain is elided (ztunnel assumes cluster.local). */
function wireTrustDomain(td: string): string {
  return td === "cluster.local" ? "" : td;
}

/** Ambient enrolment: the workload's own label wins ("none" opts out), then the namespace label. */
function isAmbient(labels: Labels, nsLabels: Labels): boolean {
  const own = labels[DATAPLANE_MODE];
  if (own !== undefined) return own === "ambient";
  return nsLabels[DATAPLANE_MODE] === "ambient";
}

/**
 * The waypoint named by `istio.io/use-waypoint` on the object, else on its namespace ("none" opts
 * out). It applies only if a Gateway of class istio-waypoint by that name exists and its
 * `istio.io/waypoint-for` (default "service") covers this kind of traffic.
 */
function waypointFor(
  ctx: Context,
  kind: "workload" | "service",
  labels: Labels,
  namespace: string,
): GatewayAddress | undefined {
  const nsLabels = ctx.namespaces.get(namespace) ?? {};
  const src = labels[USE_WAYPOINT] !== undefined ? labels : nsLabels;
  const name = src[USE_WAYPOINT];
  if (!name || name === "none") return undefined;
  const wpNs = src[USE_WAYPOINT_NAMESPACE] ?? namespace;
  const gw = ctx.waypoints.get(`${wpNs}/${name}`);
  if (!gw) return undefined;
  const forWhat = gw.metadata.labels?.[WAYPOINT_FOR] ?? "service";
  if (forWhat !== "all" && forWhat !== kind) return undefined;
  return {
    hostname: { namespace: wpNs, hostname: serviceHostname(name, wpNs, ctx.domain) },
    hboneMtlsPort: HBONE_PORT,
  };
}

/** Kubernetes' canonical service labels, with istiod's fallbacks. */
function canonical(labels: Labels, workloadName: string): { name: string; revision: string } {
  return {
    name:
      labels["service.istio.io/canonical-name"] ??
      labels["app.kubernetes.io/name"] ??
      labels["app"] ??
      workloadName,
    revision:
      labels["service.istio.io/canonical-revision"] ??
      labels["app.kubernetes.io/version"] ??
      labels["version"] ??
      "latest",
  };
}

/** The controller a Pod belongs to (ReplicaSet → its Deployment), as istiod derives it for telemetry. */
function podWorkload(pod: Pod): { name: string; type: WorkloadType } {
  const owners = pod.metadata.ownerReferences ?? [];
  const owner = owners.find((o) => o["controller"] === true) ?? owners[0];
  const kind = typeof owner?.["kind"] === "string" ? owner["kind"] : undefined;
  const name = typeof owner?.["name"] === "string" ? owner["name"] : undefined;
  if (!kind || !name) return { name: pod.metadata.name, type: "POD" };
  if (kind === "ReplicaSet") {
    const dash = name.lastIndexOf("-");
    return { name: dash > 0 ? name.slice(0, dash) : name, type: "DEPLOYMENT" };
  }
  if (kind === "Job") return { name, type: "JOB" };
  if (kind === "CronJob") return { name, type: "CRONJOB" };
  return { name, type: "POD" };
}

/** Selector-based policies selecting a workload, then the PeerAuthentication-derived names (istiod's order). */
function workloadPolicies(ctx: Context, namespace: string, labels: Labels): string[] {
  const candidates = [
    ...(ctx.selectorPoliciesByNs.get(namespace)?.candidates(labels) ?? []),
    ...(namespace === ctx.rootNamespace
      ? []
      : (ctx.selectorPoliciesByNs.get(ctx.rootNamespace)?.candidates(labels) ?? [])),
  ];
  const own = candidates
    .filter((p) => selects(p.selector, labels))
    .map((p) => `${p.authorization.namespace ?? ""}/${p.authorization.name ?? ""}`)
    .sort();
  return [...own, ...ctx.peerAuthn.workloadPolicyNames(namespace, labels)];
}

type PortResolver = (name: string) => number | undefined;

/** The ports of each Service / ServiceEntry selecting a workload, keyed "namespace/hostname". */
function workloadServices(
  ctx: Context,
  namespace: string,
  labels: Labels,
  resolveNamed: PortResolver,
): Record<string, PortList> {
  const out: [string, PortList][] = [];
  for (const svc of ctx.servicesByNs.get(namespace)?.candidates(labels) ?? []) {
    if (!selects(svc.spec.selector, labels)) continue;
    const ports: Port[] = [];
    for (const p of svc.spec.ports ?? []) {
      const tp = p.targetPort;
      const target = tp === undefined ? p.port : typeof tp === "number" ? tp : resolveNamed(tp);
      // istiod skips a port whose named targetPort the workload does not declare.
      if (target === undefined) continue;
      ports.push({ servicePort: p.port, targetPort: target });
    }
    out.push([`${namespace}/${serviceHostname(svc.metadata.name, namespace, ctx.domain)}`, { ports }]);
  }
  for (const se of ctx.serviceEntriesByNs.get(namespace) ?? []) {
    if (!se.spec.workloadSelector) continue;
    if (!selects(se.spec.workloadSelector.labels ?? {}, labels)) continue;
    const ports: Port[] = (se.spec.ports ?? []).map((p) => ({
      servicePort: p.number,
      targetPort: resolveNamed(p.name) ?? p.targetPort ?? p.number,
    }));
    for (const host of se.spec.hosts) out.push([`${namespace}/${host}`, { ports }]);
  }
  return sortedRecord(out);
}

// ---------------------------------------------------------------------------------------------
// Workloads

export function podUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}//Pod/${namespace}/${name}`;
}

export function workloadEntryUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}/networking.istio.io/WorkloadEntry/${namespace}/${name}`;
}

export function serviceEntryEndpointUid(
  clusterId: string,
  namespace: string,
  name: string,
  address: string,
): string {
  return `${clusterId}/networking.istio.io/ServiceEntry/${namespace}/${name}/${address}`;
}

function podToWorkload(ctx: Context, pod: Pod, ips: readonly string[]): Workload {
  const namespace = nsOf(pod);
  const labels = pod.metadata.labels ?? {};
  const nsLabels = ctx.namespaces.get(namespace) ?? {};
  const owner = podWorkload(pod);
  const canon = canonical(labels, owner.name);
  const containerPorts = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])].flatMap(
    (c) => c.ports ?? [],
  );
  const w: Workload = {
    uid: podUid(ctx.clusterId, namespace, pod.metadata.name),
    name: pod.metadata.name,
    namespace,
    addresses: ips.map(ipBytes).filter((b): b is Uint8Array => b !== undefined),
    network: "",
    tunnelProtocol: isAmbient(labels, nsLabels) ? "HBONE" : "NONE",
    trustDomain: wireTrustDomain(ctx.trustDomain),
    serviceAccount: pod.spec.serviceAccountName,
    node: pod.spec.nodeName ?? "",
    canonicalName: canon.name,
    canonicalRevision: canon.revision,
    workloadType: owner.type,
    workloadName: owner.name,
    services: workloadServices(
      ctx,
      namespace,
      labels,
      (name) => containerPorts.find((p) => p.name === name)?.containerPort,
    ),
    authorizationPolicies: workloadPolicies(ctx, namespace, labels),
    status: "HEALTHY",
    clusterId: ctx.clusterId,
    networkMode: pod.spec.hostNetwork ? "HOST_NETWORK" : "STANDARD",
  };
  const waypoint = waypointFor(ctx, "workload", labels, namespace);
  if (waypoint) w.waypoint = waypoint;
  return w;
}

function workloadEntryToWorkload(ctx: Context, we: WorkloadEntry): Workload {
  const namespace = nsOf(we);
  // The entry's spec labels select it; metadata labels carry the same meaning for enrolment/waypoints.
  const labels: Labels = { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) };
  const nsLabels = ctx.namespaces.get(namespace) ?? {};
  const canon = canonical(labels, we.metadata.name);
  const address = we.spec.address ? ipBytes(we.spec.address) : undefined;
  const w: Workload = {
    uid: workloadEntryUid(ctx.clusterId, namespace, we.metadata.name),
    name: we.metadata.name,
    namespace,
    addresses: address ? [address] : [],
    network: we.spec.network ?? "",
    tunnelProtocol: isAmbient(labels, nsLabels) ? "HBONE" : "NONE",
    trustDomain: wireTrustDomain(ctx.trustDomain),
    serviceAccount: we.spec.serviceAccount ?? "default",
    node: labels[NODE_LABEL] ?? "",
    canonicalName: canon.name,
    canonicalRevision: canon.revision,
    workloadType: "POD",
    workloadName: we.metadata.name,
    services: workloadServices(ctx, namespace, labels, (name) => we.spec.ports?.[name]),
    authorizationPolicies: workloadPolicies(ctx, namespace, labels),
    status: "HEALTHY",
    clusterId: ctx.clusterId,
  };
  // A WorkloadEntry whose address is a hostname is reached by name.
  if (we.spec.address && !address) w.hostname = we.spec.address;
  const waypoint = waypointFor(ctx, "workload", labels, namespace);
  if (waypoint) w.waypoint = waypoint;
  return w;
}

/** Inline ServiceEntry endpoints become workloads of that ServiceEntry's hosts. */
function serviceEntryEndpoints(ctx: Context, se: ServiceEntry): Workload[] {
  const namespace = nsOf(se);
  const nsLabels = ctx.namespaces.get(namespace) ?? {};
  return (se.spec.endpoints ?? []).flatMap((ep) => {
    if (!ep.address) return [];
    const labels: Labels = ep.labels ?? {};
    const bytes = ipBytes(ep.address);
    const ports: Port[] = (se.spec.ports ?? []).map((p) => ({
      servicePort: p.number,
      targetPort: ep.ports?.[p.name] ?? p.targetPort ?? p.number,
    }));
    const canon = canonical(labels, se.metadata.name);
    const w: Workload = {
      uid: serviceEntryEndpointUid(ctx.clusterId, namespace, se.metadata.name, ep.address),
      name: se.metadata.name,
      namespace,
      addresses: bytes ? [bytes] : [],
      network: ep.network ?? "",
      tunnelProtocol: isAmbient(labels, nsLabels) ? "HBONE" : "NONE",
      trustDomain: wireTrustDomain(ctx.trustDomain),
      serviceAccount: ep.serviceAccount ?? "default",
      canonicalName: canon.name,
      canonicalRevision: canon.revision,
      workloadType: "POD",
      workloadName: se.metadata.name,
      services: sortedRecord(se.spec.hosts.map((h): [string, PortList] => [`${namespace}/${h}`, { ports }])),
      authorizationPolicies: workloadPolicies(ctx, namespace, labels),
      status: "HEALTHY",
      clusterId: ctx.clusterId,
    };
    if (!bytes) w.hostname = ep.address;
    return [w];
  });
}

// ---------------------------------------------------------------------------------------------
// Services

const PREFER_CLOSE: LoadBalancing = {
  routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE"],
  mode: "FAILOVER",
};
const PREFER_NODE: LoadBalancing = {
  routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE", "NODE"],
  mode: "FAILOVER",
};

function loadBalancing(svc: Service): LoadBalancing | undefined {
  const td = svc.spec.trafficDistribution ?? svc.metadata.annotations?.[TRAFFIC_DISTRIBUTION];
  if (td === "PreferClose" || td === "PreferSameZone") return PREFER_CLOSE;
  if (td === "PreferSameNode" || td === "PreferNode") return PREFER_NODE;
  return undefined;
}

function networkAddresses(ips: readonly string[]): NetworkAddress[] {
  const out: NetworkAddress[] = [];
  for (const ip of ips) {
    const b = ipBytes(ip);
    if (b) out.push({ network: "", address: b });
  }
  return out;
}

function serviceToMessage(ctx: Context, svc: Service): ServiceMessage {
  const namespace = nsOf(svc);
  const spec = svc.spec;
  const ips =
    spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  const out: ServiceMessage = {
    name: svc.metadata.name,
    namespace,
    hostname: serviceHostname(svc.metadata.name, namespace, ctx.domain),
    addresses: networkAddresses(ips.filter((ip) => ip !== "None")),
    // A named targetPort is 0 here; each workload's services map carries the resolved number.
    ports: (spec.ports ?? []).map((p) => ({
      servicePort: p.port,
      targetPort: p.targetPort === undefined ? p.port : typeof p.targetPort === "number" ? p.targetPort : 0,
    })),
  };
  const families = spec.ipFamilies ?? [];
  if (families.length === 2) out.ipFamilies = "DUAL";
  else if (families[0] === "IPv4") out.ipFamilies = "IPV4_ONLY";
  else if (families[0] === "IPv6") out.ipFamilies = "IPV6_ONLY";
  const waypoint = waypointFor(ctx, "service", svc.metadata.labels ?? {}, namespace);
  if (waypoint) out.waypoint = waypoint;
  const lb = loadBalancing(svc);
  if (lb) out.loadBalancing = lb;
  return out;
}

function serviceEntryToMessages(ctx: Context, se: ServiceEntry): ServiceMessage[] {
  const namespace = nsOf(se);
  // CIDR addresses cannot be expressed as a single IP; istiod sends only plain addresses.
  const addresses = networkAddresses((se.spec.addresses ?? []).filter((a) => !a.includes("/")));
  const ports: Port[] = (se.spec.ports ?? []).map((p) => ({
    servicePort: p.number,
    targetPort: p.targetPort ?? 0,
  }));
  const waypoint = waypointFor(ctx, "service", se.metadata.labels ?? {}, namespace);
  return se.spec.hosts.map((hostname) => {
    const out: ServiceMessage = {
      name: se.metadata.name,
      namespace,
      hostname,
      addresses,
      ports,
      subjectAltNames: se.spec.subjectAltNames ?? [],
    };
    if (waypoint) out.waypoint = waypoint;
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Snapshot

function byKind<K extends AnyResource["kind"]>(
  rs: readonly AnyResource[],
  kind: K,
): Extract<AnyResource, { kind: K }>[] {
  return rs.filter((r): r is Extract<AnyResource, { kind: K }> => r.kind === kind);
}

function buildContext(input: SnapshotInput): Context {
  const rs = input.resources;
  const rootNamespace = input.rootNamespace ?? "istio-system";
  const namespaces = new Map<string, Labels>();
  for (const ns of byKind(rs, "Namespace")) namespaces.set(ns.metadata.name, ns.metadata.labels ?? {});
  const waypoints = new Map<string, Gateway>();
  for (const gw of byKind(rs, "Gateway")) {
    if (gw.spec.gatewayClassName === "istio-waypoint") waypoints.set(`${nsOf(gw)}/${gw.metadata.name}`, gw);
  }
  const policies: ConvertedPolicy[] = [];
  for (const ap of byKind(rs, "AuthorizationPolicy")) {
    const c = convertAuthorizationPolicy(ap, rootNamespace);
    if (c) policies.push(c);
  }
  const services = byKind(rs, "Service");
  const serviceEntries = byKind(rs, "ServiceEntry");
  const servicesByNs = new Map<string, SelectorIndex<Service>>();
  for (const svc of services) {
    // A Service without a selector (or with an empty one) has no endpoints derived from workloads.
    const selector = svc.spec.selector ?? {};
    if (Object.keys(selector).length > 0) indexIn(servicesByNs, nsOf(svc)).add(selector, svc);
  }
  const serviceEntriesByNs = new Map<string, ServiceEntry[]>();
  for (const se of serviceEntries) if (se.spec.workloadSelector) pushTo(serviceEntriesByNs, nsOf(se), se);
  const selectorPoliciesByNs = new Map<string, SelectorIndex<ConvertedPolicy>>();
  for (const p of policies)
    if (p.selector !== undefined)
      indexIn(selectorPoliciesByNs, p.authorization.namespace ?? "").add(p.selector, p);
  return {
    clusterId: input.clusterId ?? DEFAULT_CLUSTER_ID,
    domain: input.domain ?? DEFAULT_DOMAIN,
    trustDomain: input.trustDomain ?? "cluster.local",
    rootNamespace,
    namespaces,
    waypoints,
    services,
    serviceEntries,
    policies,
    servicesByNs,
    serviceEntriesByNs,
    selectorPoliciesByNs,
    peerAuthn: new PeerAuthnConversion(byKind(rs, "PeerAuthentication"), rootNamespace),
  };
}

function sortedMap<V>(entries: Iterable<[string, V]>): Map<string, V> {
  return new Map([...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/** Workloads (Pods with a node, WorkloadEntries, ServiceEntry endpoints) and Services, by resource name. */
export function convertAddresses(input: SnapshotInput, ctx = buildContext(input)): Map<string, Address> {
  const out: [string, Address][] = [];
  const add = (w: Workload): void => {
    out.push([w.uid ?? "", { workload: w }]);
  };
  for (const pod of byKind(input.resources, "Pod")) {
    if (!pod.spec.nodeName) continue;
    const ips = podAddresses(pod.status);
    add(
      podToWorkload(
        ctx,
        pod,
        ips.length > 0 ? ips : (input.podIps.get(`${nsOf(pod)}/${pod.metadata.name}`) ?? []),
      ),
    );
  }
  for (const we of byKind(input.resources, "WorkloadEntry")) add(workloadEntryToWorkload(ctx, we));
  for (const se of ctx.serviceEntries) for (const w of serviceEntryEndpoints(ctx, se)) add(w);
  for (const svc of ctx.services) {
    if (svc.spec.type === "ExternalName") continue;
    const m = serviceToMessage(ctx, svc);
    out.push([`${m.namespace ?? ""}/${m.hostname ?? ""}`, { service: m }]);
  }
  for (const se of ctx.serviceEntries) {
    for (const m of serviceEntryToMessages(ctx, se))
      out.push([`${m.namespace ?? ""}/${m.hostname ?? ""}`, { service: m }]);
  }
  return sortedMap(out);
}

/** AuthorizationPolicies istiod sends ztunnel, plus the PeerAuthentication-derived policies. */
export function convertAuthorizations(
  input: SnapshotInput,
  ctx = buildContext(input),
): Map<string, Authorization> {
  const out: [string, Authorization][] = ctx.policies.map((p) => [
    `${p.authorization.namespace ?? ""}/${p.authorization.name ?? ""}`,
    p.authorization,
  ]);
  out.push(...ctx.peerAuthn.policies);
  return sortedMap(out);
}

export function convertRevocations(revocations: readonly Revocation[]): Map<string, RevocationListMessage> {
  const list: RevocationListMessage = {
    revocations: revocations.map((r) => ({
      identity: r.identity ?? "",
      serial: r.serial ?? "",
      reason: r.reason,
      revokedAt: r.revokedAt,
    })),
  };
  return new Map([[REVOCATIONS_RESOURCE_NAME, list]]);
}

export function buildSnapshot(input: SnapshotInput): Snapshot {
  const ctx = buildContext(input);
  return {
    addresses: convertAddresses(input, ctx),
    authorizations: convertAuthorizations(input, ctx),
    revocations: convertRevocations(input.revocations),
  };
}

/** Which type URL a converted message belongs to. */
export function typeUrlOf(message: Address | Authorization | RevocationListMessage): string {
  if ("workload" in message || "service" in message) return ADDRESS_TYPE_URL;
  if ("revocations" in message) return REVOCATION_LIST_TYPE_URL;
  return AUTHORIZATION_TYPE_URL;
}

/** A stable version for a converted resource: a hash of its encoded bytes. */
export function resourceVersion(
  message: Address | Authorization | RevocationListMessage,
  typeUrl = typeUrlOf(message),
): string {
  return resourceVersionOf(typeUrl, message);
}
