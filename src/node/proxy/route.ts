// Where an outbound connection goes: a Service address picks a healthy endpoint (round robin,
// honouring the Service's locality preferences as Istio's Address type carries them) or the
// Service's waypoint; a workload address goes to that workload (or its waypoint); anything
// outside the mesh passes through as plain TCP.
import type { GatewayAddress, Port } from "../../api/xds-types.js";
import { ipFromBytes, type MeshService, type MeshSnapshot, type MeshWorkload } from "./mesh.js";

export const HBONE_PORT = 15008;

export interface Destination {
  ip: string;
  port: number;
}

export type Route =
  | {
      kind: "hbone";
      /** Where the tunnel goes: the endpoint's (or waypoint's) IP and HBONE port. */
      tunnel: Destination;
      /** CONNECT :authority. */
      authority: Destination;
      /** The SPIFFE ID the peer must present. */
      expectedIdentity: string;
      /** The workload that will receive the bytes (the waypoint when one is in the path). */
      peer: MeshWorkload;
      service: MeshService | null;
      viaWaypoint: boolean;
    }
  | { kind: "passthrough"; target: Destination; peer: MeshWorkload | null; service: MeshService | null }
  | { kind: "refuse"; reason: string; service: MeshService | null };

function servicePort(svc: MeshService, port: number): Port | undefined {
  return svc.ports.find((p) => p.servicePort === port);
}

/** The port an endpoint serves a service port on. */
export function targetPort(svc: MeshService, w: MeshWorkload, port: number): number {
  const own = w.services.get(svc.key)?.find((p) => p.servicePort === port)?.targetPort;
  if (own) return own;
  const declared = servicePort(svc, port)?.targetPort;
  return declared || port;
}

type Scope = NonNullable<NonNullable<MeshService["loadBalancing"]>["routingPreference"]>[number];

function sameScope(scope: Scope, a: MeshWorkload, b: MeshWorkload): boolean {
  switch (scope) {
    case "NETWORK":
      return a.network === b.network;
    case "REGION":
      return (a.locality.region ?? "") === (b.locality.region ?? "");
    case "ZONE":
      return (
        (a.locality.region ?? "") === (b.locality.region ?? "") &&
        (a.locality.zone ?? "") === (b.locality.zone ?? "")
      );
    case "SUBZONE":
      return (
        (a.locality.region ?? "") === (b.locality.region ?? "") &&
        (a.locality.zone ?? "") === (b.locality.zone ?? "") &&
        (a.locality.subzone ?? "") === (b.locality.subzone ?? "")
      );
    case "NODE":
      return a.node === b.node;
    case "CLUSTER":
      return a.clusterId === b.clusterId;
    default:
      return true;
  }
}

/** Endpoints eligible for a source under the service's load-balancing settings. */
export function eligibleEndpoints(
  svc: MeshService,
  endpoints: readonly MeshWorkload[],
  source: MeshWorkload | null,
): MeshWorkload[] {
  const lb = svc.loadBalancing;
  const allowUnhealthy = lb?.healthPolicy === "ALLOW_ALL";
  const candidates = endpoints.filter((w) => (allowUnhealthy || w.healthy) && w.ips.length > 0);
  const prefs = (lb?.routingPreference ?? []).filter((s) => s !== "UNSPECIFIED_SCOPE");
  const mode = lb?.mode ?? "UNSPECIFIED_MODE";
  if (source === null || prefs.length === 0 || mode === "UNSPECIFIED_MODE" || mode === "PASSTHROUGH")
    return candidates;
  const rank = (w: MeshWorkload): number => {
    let n = 0;
    for (const s of prefs) {
      if (!sameScope(s, source, w)) break;
      n++;
    }
    return n;
  };
  if (mode === "STRICT") return candidates.filter((w) => rank(w) === prefs.length);
  let best = -1;
  for (const w of candidates) best = Math.max(best, rank(w));
  return candidates.filter((w) => rank(w) === best);
}

/** Round-robin state per service; the one mutable piece of routing. */
export class Balancer {
  private readonly next = new Map<string, number>();

  pick(key: string, candidates: readonly MeshWorkload[]): MeshWorkload | undefined {
    if (candidates.length === 0) return undefined;
    const i = this.next.get(key) ?? 0;
    this.next.set(key, (i + 1) % 1_000_000_007);
    return candidates[i % candidates.length];
  }
}

/** The waypoint workload a GatewayAddress names, and the HBONE port to reach it on. */
function resolveWaypoint(
  mesh: MeshSnapshot,
  gw: GatewayAddress,
  balancer: Balancer,
): { workload: MeshWorkload; ip: string; port: number } | undefined {
  const port = gw.hboneMtlsPort || HBONE_PORT;
  if (gw.address?.address) {
    const ip = ipFromBytes(gw.address.address);
    const direct = mesh.workloadAt(ip);
    if (direct) return { workload: direct, ip, port };
    const svc = mesh.serviceAt(ip);
    if (!svc) return undefined;
    const w = balancer.pick(`waypoint:${svc.key}`, eligibleEndpoints(svc, mesh.endpointsOf(svc.key), null));
    return w && w.ips[0] ? { workload: w, ip: w.ips[0], port } : undefined;
  }
  const host = gw.hostname;
  if (host?.hostname) {
    const svc = mesh.serviceByHost(host.namespace ?? "", host.hostname);
    if (!svc) return undefined;
    const w = balancer.pick(`waypoint:${svc.key}`, eligibleEndpoints(svc, mesh.endpointsOf(svc.key), null));
    return w && w.ips[0] ? { workload: w, ip: w.ips[0], port } : undefined;
  }
  return undefined;
}

function toWaypoint(
  mesh: MeshSnapshot,
  gw: GatewayAddress,
  balancer: Balancer,
  source: MeshWorkload,
  authority: Destination,
  service: MeshService | null,
): Route | undefined {
  const wp = resolveWaypoint(mesh, gw, balancer);
  if (!wp) return undefined;
  // The waypoint's own traffic goes straight to the destination.
  if (wp.workload.uid === source.uid) return undefined;
  return {
    kind: "hbone",
    tunnel: { ip: wp.ip, port: wp.port },
    authority,
    expectedIdentity: wp.workload.spiffeId,
    peer: wp.workload,
    service,
    viaWaypoint: true,
  };
}

function toWorkload(w: MeshWorkload, ip: string, port: number, service: MeshService | null): Route {
  if (!w.hbone) return { kind: "passthrough", target: { ip, port }, peer: w, service };
  return {
    kind: "hbone",
    tunnel: { ip, port: HBONE_PORT },
    authority: { ip, port },
    expectedIdentity: w.spiffeId,
    peer: w,
    service,
    viaWaypoint: false,
  };
}

export function resolveRoute(
  mesh: MeshSnapshot,
  source: MeshWorkload,
  dst: Destination,
  balancer: Balancer,
): Route {
  const svc = mesh.serviceAt(dst.ip);
  if (svc) {
    if (svc.waypoint) {
      const r = toWaypoint(mesh, svc.waypoint, balancer, source, dst, svc);
      if (r) return r;
      if (source.uid !== resolveWaypoint(mesh, svc.waypoint, balancer)?.workload.uid) {
        // Istio ambient fails the connection rather than bypass a waypoint that is not ready.
        return {
          kind: "refuse",
          reason: `waypoint of service ${svc.key} has no ready endpoint`,
          service: svc,
        };
      }
    }
    if (!servicePort(svc, dst.port)) {
      return { kind: "refuse", reason: `service ${svc.key} has no port ${dst.port}`, service: svc };
    }
    const w = balancer.pick(svc.key, eligibleEndpoints(svc, mesh.endpointsOf(svc.key), source));
    const ip = w?.ips[0];
    if (!w || ip === undefined) {
      return { kind: "refuse", reason: `service ${svc.key} has no healthy endpoint`, service: svc };
    }
    return toWorkload(w, ip, targetPort(svc, w, dst.port), svc);
  }
  const w = mesh.workloadAt(dst.ip);
  if (w) {
    if (w.waypoint) {
      const r = toWaypoint(mesh, w.waypoint, balancer, source, dst, null);
      if (r) return r;
    }
    return toWorkload(w, dst.ip, dst.port, null);
  }
  return { kind: "passthrough", target: dst, peer: null, service: null };
}
