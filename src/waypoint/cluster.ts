// Endpoint choice for the router, per Envoy-style cluster (service host, port, subset): the
// backend Service's ready endpoints (its load-balancing settings honoured), narrowed to the
// subset's labels, minus those outlier detection ejected, then the DestinationRule's load
// balancer; the connection pool's circuit breakers refuse excess requests (503 UO). Each cluster
// is compiled from the DestinationRule that applies to the waypoint (looked up from the
// waypoint's namespace, as istiod does for a waypoint proxy) and the merged port-level policy.
// A cluster's state (in-flight counts, ejections, balancer cursor) is kept across config pushes
// while its policy is unchanged, reset when it changes, and dropped when its Service goes away.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../core/log.js";
import {
  compileDestinationRules,
  ConnectionLimiter,
  createBalancer,
  MAX_UINT32,
  hashKeyFor,
  matchesSubset,
  OutlierDetector,
  OVERFLOW_BODY,
  OVERFLOW_FLAG,
  resolveDestination,
  type Balancer,
  type ClusterPolicy,
  type DestinationIndex,
  type Outcome,
  type Release,
} from "../model/destination/index.js";
import type { MeshService, MeshWorkload } from "../node/proxy/mesh.js";
import type { PlannedBackend } from "./plan.js";
import type { PortProtocol } from "./protocol.js";
import type { AttemptFailureKind, EndpointChooser } from "./router.js";
import type { WaypointSnapshot } from "./snapshot.js";
import { endpointKey, serviceEndpoints, type Endpoint } from "./upstream.js";

export interface ClustersOptions {
  registry: Registry;
  log: Logger;
  /** Wall-clock ms (ejection times are shown as dates). */
  now?: () => number;
  random?: () => number;
}

interface ClusterState {
  name: string;
  serviceKey: string;
  port: number;
  subset: string | undefined;
  protocol: PortProtocol;
  policy: ClusterPolicy;
  /** The policy as JSON: a push that leaves it equal keeps the state. */
  signature: string;
  balancer: Balancer;
  inFlight: Map<string, number>;
  /** Circuit-breaker slots taken by choose(), claimed by started() (same tick). */
  slots: Map<string, Release[]>;
  timers: Set<NodeJS.Timeout>;
  dropped: boolean;
  /** The endpoints as of one snapshot (they change only with the config): built once per push. */
  members: Members | null;
}

interface Members {
  snapshot: WaypointSnapshot;
  all: Endpoint[];
  keys: string[];
  byKey: Map<string, Endpoint>;
}

type ChooseCtx = Parameters<EndpointChooser["choose"]>[1];
type ChooseResult = ReturnType<EndpointChooser["choose"]>;

/** Envoy's cluster name: outbound|port|subset|host. */
export function clusterName(svc: MeshService, port: number, subset: string | undefined): string {
  return `outbound|${port}|${subset ?? ""}|${svc.hostname}`;
}

function queryOf(path: string | undefined): URLSearchParams {
  if (!path) return new URLSearchParams();
  const q = path.indexOf("?");
  return new URLSearchParams(q >= 0 ? path.slice(q + 1) : "");
}

function outcomeOf(o: { status?: number; failure?: AttemptFailureKind }): Outcome {
  if (o.status !== undefined) return { status: o.status };
  if (o.failure !== undefined) return { localOriginFailure: true };
  return {};
}

export class Clusters implements EndpointChooser {
  private readonly clusters = new Map<string, ClusterState>();
  private readonly limiter = new ConnectionLimiter();
  private readonly outlier = new OutlierDetector();
  private syncedFor: WaypointSnapshot | null = null;
  private index: DestinationIndex | null = null;
  /** "Pod/ns/name" or "WorkloadEntry/ns/name" → labels (subset selection). */
  private labels = new Map<string, Record<string, string>>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly ejections: Counter<string>;
  private readonly returns: Counter<string>;
  private readonly overflows: Counter<string>;
  private readonly noCluster: Counter<string>;
  private readonly warnedSubsets = new Set<string>();

  constructor(
    private readonly snapshot: () => WaypointSnapshot,
    private readonly opts: ClustersOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    const registers = [opts.registry];
    this.ejections = new Counter({
      name: "ambit_waypoint_outlier_ejections_total",
      help: "Endpoints ejected by outlier detection, by cluster and detector",
      labelNames: ["cluster", "reason"],
      registers,
    });
    this.returns = new Counter({
      name: "ambit_waypoint_outlier_returns_total",
      help: "Ejected endpoints returned to their cluster after the ejection time",
      labelNames: ["cluster"],
      registers,
    });
    this.overflows = new Counter({
      name: "ambit_waypoint_upstream_overflow_total",
      help: "Requests refused by a cluster's connection-pool limits (503 UO), by cluster",
      labelNames: ["cluster"],
      registers,
    });
    this.noCluster = new Counter({
      name: "ambit_waypoint_no_cluster_total",
      help: "Requests to a DestinationRule subset that no rule defines (503 NC), by cluster",
      labelNames: ["cluster"],
      registers,
    });
    const ejectedNow = (): [string, number][] => {
      const now = this.now();
      return [...this.clusters.values()].map((c) => [
        c.name,
        this.endpointsOf(c).filter((e) => this.outlier.isEjected(c.name, endpointKey(e), now)).length,
      ]);
    };
    new Gauge({
      name: "ambit_waypoint_outlier_ejected",
      help: "Endpoints currently ejected, by cluster",
      labelNames: ["cluster"],
      registers,
      collect() {
        this.reset();
        for (const [cluster, n] of ejectedNow()) this.set({ cluster }, n);
      },
    });
  }

  // -------------------------------------------------------------------------------------------
  // Config

  /** Bring the clusters up to the current snapshot (cheap when it has not changed). */
  sync(): void {
    const snap = this.snapshot();
    if (snap === this.syncedFor) return;
    this.syncedFor = snap;
    this.index = compileDestinationRules(snap.ofKind("DestinationRule"), {
      rootNamespace: snap.rootNamespace,
      domain: snap.domain,
    });
    const labels = new Map<string, Record<string, string>>();
    for (const p of snap.ofKind("Pod"))
      labels.set(`Pod/${p.metadata.namespace ?? "default"}/${p.metadata.name}`, p.metadata.labels ?? {});
    for (const w of snap.ofKind("WorkloadEntry"))
      labels.set(`WorkloadEntry/${w.metadata.namespace ?? "default"}/${w.metadata.name}`, {
        ...(w.metadata.labels ?? {}),
        ...(w.spec.labels ?? {}),
      });
    this.labels = labels;
    for (const c of [...this.clusters.values()]) {
      const svc = this.service(c.serviceKey);
      if (!svc) {
        this.drop(c, "its Service is gone");
        continue;
      }
      const policy = this.resolve(svc, c.port, c.subset);
      const signature = JSON.stringify(policy);
      if (signature === c.signature) continue;
      this.drop(c, "its policy changed");
      this.create(svc, c.port, c.subset, c.protocol, policy, signature);
    }
  }

  private service(serviceKey: string): MeshService | undefined {
    const slash = serviceKey.indexOf("/");
    return this.snapshot().mesh.serviceByHost(serviceKey.slice(0, slash), serviceKey.slice(slash + 1));
  }

  private resolve(svc: MeshService, port: number, subset: string | undefined): ClusterPolicy {
    const snap = this.snapshot();
    // A waypoint is configured as a proxy of its own namespace (istiod's ConfigNamespace).
    return resolveDestination(this.index ?? compileDestinationRules([], snap), {
      host: svc.hostname,
      clientNamespace: snap.gateway.namespace,
      port,
      ...(subset !== undefined ? { subset } : {}),
    });
  }

  private create(
    svc: MeshService,
    port: number,
    subset: string | undefined,
    protocol: PortProtocol,
    policy: ClusterPolicy,
    signature: string,
  ): ClusterState {
    const name = clusterName(svc, port, subset);
    const c: ClusterState = {
      name,
      serviceKey: svc.key,
      port,
      subset,
      protocol,
      policy,
      signature,
      balancer: createBalancer(policy),
      inFlight: new Map(),
      slots: new Map(),
      timers: new Set(),
      dropped: false,
      members: null,
    };
    this.clusters.set(name, c);
    // HTTP/2 upstreams multiplex on one connection: only max requests applies (as in Envoy,
    // where pending requests and the connection count are HTTP/1.1 and TCP limits).
    const h2 = protocol === "http2" || protocol === "grpc";
    this.limiter.configure(
      name,
      h2
        ? { ...policy.connectionPool, maxConnections: MAX_UINT32, http1MaxPendingRequests: MAX_UINT32 }
        : policy.connectionPool,
    );
    this.outlier.configure(name, policy.outlier);
    if (policy.unknownSubset && !this.warnedSubsets.has(name)) {
      this.warnedSubsets.add(name);
      this.opts.log.warn(
        { cluster: name, destinationRule: policy.rule ?? null, subset },
        `subset "${subset ?? ""}" of ${svc.hostname} is defined by no DestinationRule visible to the waypoint: requests to it get 503 NC`,
      );
    }
    if (policy.rule)
      this.opts.log.info(
        { cluster: name, destinationRule: policy.rule, lb: policy.lb.kind, outlier: policy.outlier !== null },
        "cluster configured from DestinationRule",
      );
    return c;
  }

  private drop(c: ClusterState, why: string): void {
    c.dropped = true;
    for (const t of c.timers) clearTimeout(t);
    c.timers.clear();
    this.clusters.delete(c.name);
    this.outlier.configure(c.name, null);
    this.limiter.remove(c.name);
    this.opts.log.debug({ cluster: c.name, why }, "cluster state dropped");
  }

  private cluster(
    svc: MeshService,
    port: number,
    subset: string | undefined,
    protocol: PortProtocol,
  ): ClusterState {
    this.sync();
    const existing = this.clusters.get(clusterName(svc, port, subset));
    if (existing && existing.serviceKey === svc.key) return existing;
    const policy = this.resolve(svc, port, subset);
    return this.create(svc, port, subset, protocol, policy, JSON.stringify(policy));
  }

  // -------------------------------------------------------------------------------------------
  // Endpoints

  private labelsOf(w: MeshWorkload): Record<string, string> {
    const kind = w.uid.includes("/WorkloadEntry/") ? "WorkloadEntry" : "Pod";
    return this.labels.get(`${kind}/${w.namespace}/${w.name}`) ?? {};
  }

  /** The cluster's endpoints: ready endpoints of the Service, narrowed to the subset. */
  private endpointsOf(c: ClusterState): Endpoint[] {
    const svc = this.service(c.serviceKey);
    if (!svc || c.policy.unknownSubset) return [];
    const mesh = this.snapshot().mesh;
    const subset = c.policy.subsetLabels;
    const perConnection = c.policy.connectionPool.maxRequestsPerConnection;
    return serviceEndpoints(mesh, svc, c.port).flatMap((e) =>
      matchesSubset(this.labelsOf(e.workload), subset)
        ? [perConnection > 0 ? { ...e, maxRequestsPerConnection: perConnection } : e]
        : [],
    );
  }

  /** endpointsOf(c) with their keys, computed once per snapshot. */
  private members(c: ClusterState): Members {
    const snapshot = this.snapshot();
    if (c.members?.snapshot === snapshot) return c.members;
    const all = this.endpointsOf(c);
    const keys = all.map(endpointKey);
    const byKey = new Map<string, Endpoint>();
    all.forEach((e, i) => {
      const k = keys[i] as string;
      if (!byKey.has(k)) byKey.set(k, e);
    });
    c.members = { snapshot, all, keys, byKey };
    return c.members;
  }

  endpoints(backend: PlannedBackend): Endpoint[] {
    if (!backend.service) return [];
    return this.endpointsOf(this.cluster(backend.service, backend.port, backend.subset, backend.protocol));
  }

  choose(backend: PlannedBackend, ctx: ChooseCtx): ChooseResult {
    const svc = backend.service;
    if (!svc) {
      return { ok: false, reply: { status: 500, body: backend.invalid ?? "invalid backend" }, flag: "NR" };
    }
    const c = this.cluster(svc, backend.port, backend.subset, backend.protocol);
    if (c.policy.unknownSubset) {
      // Envoy: the route names a cluster that does not exist.
      this.noCluster.inc({ cluster: c.name });
      return { ok: false, reply: { status: 503, body: "" }, flag: "NC" };
    }
    const now = this.now();
    const { keys, byKey } = this.members(c);
    this.outlier.setEndpoints(c.name, keys);
    const healthy = this.outlier.healthy(c.name, keys, now);
    if (healthy.length === 0)
      return { ok: false, reply: { status: 503, body: "no healthy upstream" }, flag: "UH" };

    const lb = c.policy.lb;
    let hash: { key: string | null; setCookie?: string } = { key: null };
    if (lb.kind === "RING_HASH" || lb.kind === "MAGLEV") {
      hash = hashKeyFor(lb.hash, { headers: ctx.headers, sourceIp: ctx.sourceIp, query: queryOf(ctx.path) });
    }
    const pickCtx = {
      hashKey: hash.key,
      inFlight: (k: string) => c.inFlight.get(k) ?? 0,
      random: this.random,
    };
    // A retry prefers endpoints not tried yet (Envoy's previous-hosts predicate).
    const fresh = healthy.filter((k) => !ctx.exclude.has(k));
    let key: string | null;
    if (hash.key !== null || lb.kind === "RING_HASH" || lb.kind === "MAGLEV") {
      // Hash over the whole healthy set (so a key keeps its endpoint); on a retry that lands on
      // an endpoint already tried, any fresh one.
      key = c.balancer.pick(healthy, pickCtx);
      if (key !== null && ctx.exclude.has(key) && fresh.length > 0)
        key = fresh[Math.min(fresh.length - 1, Math.floor(this.random() * fresh.length))] ?? key;
    } else {
      key = c.balancer.pick(fresh.length > 0 ? fresh : healthy, pickCtx);
    }
    const endpoint = key === null ? undefined : byKey.get(key);
    if (!endpoint || key === null)
      return { ok: false, reply: { status: 503, body: "no healthy upstream" }, flag: "UH" };

    // Circuit breakers: a TCP cluster counts connections, an HTTP one requests.
    const load = this.limiter.load(c.name);
    const tcpFull = backend.protocol === "tcp" && load.requests >= c.policy.connectionPool.maxConnections;
    const release = tcpFull
      ? null
      : this.limiter.tryAcquire(c.name, ctx.exclude.size > 0 ? "retry" : "request");
    if (!release) {
      this.overflows.inc({ cluster: c.name });
      this.opts.log.debug({ cluster: c.name, load }, "connection pool overflow");
      return {
        ok: false,
        reply: { status: 503, body: OVERFLOW_BODY, headers: { "x-envoy-overloaded": "true" } },
        flag: OVERFLOW_FLAG,
      };
    }
    const list = c.slots.get(key) ?? [];
    list.push(release);
    c.slots.set(key, list);
    // A caller that never starts the attempt must not leak the slot.
    queueMicrotask(() => {
      const i = list.indexOf(release);
      if (i < 0) return;
      list.splice(i, 1);
      if (list.length === 0 && c.slots.get(key) === list) c.slots.delete(key);
      release();
    });
    return {
      ok: true,
      endpoint,
      key,
      ...(hash.setCookie !== undefined ? { responseHeaders: { "set-cookie": hash.setCookie } } : {}),
    };
  }

  started(
    backend: PlannedBackend,
    key: string,
  ): (outcome: { status?: number; failure?: AttemptFailureKind }) => void {
    if (!backend.service) return () => undefined;
    const c = this.cluster(backend.service, backend.port, backend.subset, backend.protocol);
    const list = c.slots.get(key);
    const slot = list?.shift();
    if (list && list.length === 0) c.slots.delete(key);
    c.inFlight.set(key, (c.inFlight.get(key) ?? 0) + 1);
    let done = false;
    return (o) => {
      if (done) return;
      done = true;
      const n = (c.inFlight.get(key) ?? 1) - 1;
      if (n <= 0) c.inFlight.delete(key);
      else c.inFlight.set(key, n);
      slot?.();
      if (!c.dropped) this.record(c, key, outcomeOf(o));
    };
  }

  private record(c: ClusterState, key: string, outcome: Outcome): void {
    if (!c.policy.outlier) return;
    const now = this.now();
    const r = this.outlier.record(c.name, key, outcome, now);
    if (r.capped) {
      this.opts.log.debug(
        { cluster: c.name, endpoint: key, reason: r.reason },
        "ejection capped by maxEjectionPercent",
      );
    }
    if (!r.ejected) return;
    const until = this.outlier.ejectedUntil(c.name, key, now) ?? now;
    this.ejections.inc({ cluster: c.name, reason: r.reason ?? "unknown" });
    this.opts.log.info(
      { cluster: c.name, endpoint: key, reason: r.reason, until: new Date(until).toISOString() },
      "outlier detection ejected an endpoint",
    );
    const t = setTimeout(
      () => {
        c.timers.delete(t);
        if (c.dropped || this.outlier.isEjected(c.name, key, this.now())) return;
        this.returns.inc({ cluster: c.name });
        this.opts.log.info({ cluster: c.name, endpoint: key }, "ejected endpoint returned to the cluster");
      },
      Math.max(0, until - now) + 5,
    );
    t.unref();
    c.timers.add(t);
  }

  // -------------------------------------------------------------------------------------------
  // Admin

  /** Every cluster in use: policy, endpoints with requests in flight and ejections. */
  dump(): unknown[] {
    this.sync();
    const now = this.now();
    return [...this.clusters.values()].map((c) => {
      const p = c.policy;
      return {
        name: c.name,
        service: c.serviceKey,
        port: c.port,
        subset: c.subset ?? null,
        destinationRule: p.rule ?? null,
        unknownSubset: p.unknownSubset === true,
        policy: {
          lb: p.lb,
          connectionPool: p.connectionPool,
          outlierDetection: p.outlier,
          subsetLabels: p.subsetLabels ?? null,
        },
        load: this.limiter.load(c.name),
        endpoints: this.endpointsOf(c).map((e) => {
          const key = endpointKey(e);
          const until = this.outlier.ejectedUntil(c.name, key, now);
          return {
            address: `${e.ip}:${e.port}`,
            workload: `${e.workload.namespace}/${e.workload.name}`,
            inFlight: c.inFlight.get(key) ?? 0,
            ejected: until !== null,
            ejectedUntil: until !== null ? new Date(until).toISOString() : null,
            ejections: this.outlier.ejectionCount(c.name, key, now),
          };
        }),
      };
    });
  }

  close(): void {
    for (const c of [...this.clusters.values()]) this.drop(c, "shutdown");
  }
}
