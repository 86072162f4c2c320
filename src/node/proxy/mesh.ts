// The node proxy's view of the mesh, rebuilt from the xDS resources it holds: workloads and
// services indexed by address, each service's endpoints, the compiled L4 policies and the
// revocation list. Immutable once built, so a connection keeps one consistent view.
import ipaddr from "ipaddr.js";
import type {
  Address,
  Authorization,
  GatewayAddress,
  LoadBalancing,
  Locality,
  Port,
  RevocationListMessage,
} from "../../api/xds-types.js";
import { compileWirePolicies, type WirePolicySet } from "../../model/authz/index.js";
import { RevocationList, type Revocation } from "../../model/revocation.js";

export interface MeshWorkload {
  uid: string;
  name: string;
  namespace: string;
  serviceAccount: string;
  trustDomain: string;
  /** spiffe://td/ns/NS/sa/SA */
  spiffeId: string;
  ips: string[];
  node: string;
  /** Enrolled in the mesh (tunnel protocol HBONE). */
  hbone: boolean;
  healthy: boolean;
  canonicalName: string;
  canonicalRevision: string;
  workloadName: string;
  clusterId: string;
  network: string;
  locality: Locality;
  /** Service key ("namespace/hostname") → the ports it serves on this workload. */
  services: ReadonlyMap<string, readonly Port[]>;
  authorizationPolicies: readonly string[];
  waypoint: GatewayAddress | null;
}

export interface MeshService {
  /** "namespace/hostname", istiod's resource name. */
  key: string;
  name: string;
  namespace: string;
  hostname: string;
  vips: string[];
  ports: readonly Port[];
  waypoint: GatewayAddress | null;
  loadBalancing: LoadBalancing | null;
}

/** Decoded xDS resources the snapshot is built from. */
export interface MeshInput {
  addresses: Iterable<Address>;
  authorizations: Iterable<Authorization>;
  revocations: RevocationListMessage | undefined;
  rootNamespace: string;
}

/** An IP in canonical text form ("10.0.0.1", "fd00::1"); IPv4-mapped IPv6 becomes IPv4. */
export function canonicalIp(text: string | undefined): string {
  if (text === undefined) return "";
  try {
    return ipaddr.process(text).toString();
  } catch {
    return "";
  }
}

export function ipFromBytes(bytes: Uint8Array | undefined): string {
  if (bytes === undefined || (bytes.length !== 4 && bytes.length !== 16)) return "";
  try {
    return ipaddr.fromByteArray([...bytes]).toString();
  } catch {
    return "";
  }
}

const TRUST_DOMAIN_DEFAULT = "cluster.local";

function toWorkload(w: NonNullable<Address["workload"]>): MeshWorkload {
  const trustDomain = w.trustDomain || TRUST_DOMAIN_DEFAULT;
  const namespace = w.namespace ?? "";
  const serviceAccount = w.serviceAccount || "default";
  const services = new Map<string, readonly Port[]>();
  for (const [key, list] of Object.entries(w.services ?? {})) services.set(key, list.ports ?? []);
  return {
    uid: w.uid ?? "",
    name: w.name ?? "",
    namespace,
    serviceAccount,
    trustDomain,
    spiffeId: `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`,
    ips: (w.addresses ?? []).map(ipFromBytes).filter((ip) => ip !== ""),
    node: w.node ?? "",
    hbone: w.tunnelProtocol === "HBONE",
    healthy: (w.status ?? "HEALTHY") === "HEALTHY",
    canonicalName: w.canonicalName || w.name || "unknown",
    canonicalRevision: w.canonicalRevision || "latest",
    workloadName: w.workloadName || w.name || "unknown",
    clusterId: w.clusterId ?? "",
    network: w.network ?? "",
    locality: w.locality ?? {},
    services,
    authorizationPolicies: w.authorizationPolicies ?? [],
    waypoint: w.waypoint ?? null,
  };
}

function toService(s: NonNullable<Address["service"]>): MeshService {
  const namespace = s.namespace ?? "";
  const hostname = s.hostname ?? "";
  return {
    key: `${namespace}/${hostname}`,
    name: s.name ?? "",
    namespace,
    hostname,
    vips: (s.addresses ?? []).map((a) => ipFromBytes(a.address)).filter((ip) => ip !== ""),
    ports: s.ports ?? [],
    waypoint: s.waypoint ?? null,
    loadBalancing: s.loadBalancing ?? null,
  };
}

export class MeshSnapshot {
  readonly workloads = new Map<string, MeshWorkload>();
  readonly services = new Map<string, MeshService>();
  private readonly workloadByIp = new Map<string, MeshWorkload>();
  private readonly serviceByVip = new Map<string, MeshService>();
  private readonly endpoints = new Map<string, MeshWorkload[]>();
  readonly policies: WirePolicySet;
  readonly authorizations: readonly Authorization[];
  readonly revocations: RevocationList;

  constructor(input: MeshInput) {
    for (const a of input.addresses) {
      if (a.workload) {
        const w = toWorkload(a.workload);
        this.workloads.set(w.uid, w);
        for (const ip of w.ips) this.workloadByIp.set(ip, w);
        for (const key of w.services.keys()) {
          const list = this.endpoints.get(key);
          if (list) list.push(w);
          else this.endpoints.set(key, [w]);
        }
      } else if (a.service) {
        const s = toService(a.service);
        this.services.set(s.key, s);
        for (const ip of s.vips) this.serviceByVip.set(ip, s);
      }
    }
    for (const list of this.endpoints.values()) list.sort((x, y) => (x.uid < y.uid ? -1 : 1));
    this.authorizations = [...input.authorizations];
    this.policies = compileWirePolicies(this.authorizations, { rootNamespace: input.rootNamespace });
    const entries: Revocation[] = (input.revocations?.revocations ?? []).map((r) => ({
      ...(r.identity ? { identity: r.identity } : {}),
      ...(r.serial ? { serial: r.serial } : {}),
      reason: r.reason ?? "",
      revokedAt: r.revokedAt ?? "",
    }));
    this.revocations = new RevocationList(entries);
  }

  workloadAt(ip: string): MeshWorkload | undefined {
    return this.workloadByIp.get(ip);
  }

  serviceAt(ip: string): MeshService | undefined {
    return this.serviceByVip.get(ip);
  }

  /** Workloads that back a service, in a stable order. */
  endpointsOf(serviceKey: string): readonly MeshWorkload[] {
    return this.endpoints.get(serviceKey) ?? [];
  }

  serviceByHost(namespace: string, hostname: string): MeshService | undefined {
    return this.services.get(`${namespace}/${hostname}`);
  }

  /** Workloads scheduled on a node. */
  workloadsOn(node: string): MeshWorkload[] {
    return [...this.workloads.values()].filter((w) => w.node === node);
  }
}
