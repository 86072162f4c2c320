// `ambit waypoint`: the L7 proxy for one Gateway (class istio-waypoint). Runs beside a node (the
// lab starts it in the waypoint pod's netns); asks the CA for the Gateway's service-account
// certificate with the node's credentials (the CA's node rule admits it because the waypoint's
// Pod is on that node), follows the control plane's Delta xDS (addresses, revocations and the
// user's L7 resources), accepts HBONE on 15008 and serves HTTP services at L7, TCP ones at L4.
// Keeps serving its last good config while the control plane is unreachable.
import type * as http from "node:http";
import type * as net from "node:net";
import { adsServiceClient } from "../api/protos.js";
import { DeltaXdsClient, type XdsResource } from "../api/xds-client.js";
import {
  ADDRESS_TYPE_URL,
  decodeAny,
  REVOCATION_LIST_TYPE_URL,
  WAYPOINT_RESOURCE_TYPE_URL,
  type Address,
  type RevocationListMessage,
  type WaypointResourceMessage,
} from "../api/xds-types.js";
import type { Logger } from "../core/log.js";
import { createRegistry } from "../core/metrics.js";
import { CertificateManager } from "../identity/cert-manager.js";
import { validateDocument } from "../model/resources/load.js";
import type { AnyResource } from "../model/resources/registry.js";
import { formatSpiffeId, type Identity } from "../model/spiffe.js";
import { NodeCredentialsKeeper } from "../node/credentials.js";
import { startAdmin, startMetrics, startReadiness, type AdminSource } from "../node/proxy/admin.js";
import { HbonePool } from "../node/proxy/hbone-pool.js";
import { canonicalIp, MeshSnapshot, type MeshWorkload } from "../node/proxy/mesh.js";
import { LoopbackNetwork, type LocalPod } from "../node/proxy/network.js";
import { WorkloadTls } from "../node/proxy/workload-tls.js";
import type { ExtensionContext } from "./auth-stage.js";
import { Clusters } from "./cluster.js";
import { WaypointHbone, type HbonePeer } from "./hbone-in.js";
import { passThrough } from "./l4.js";
import { WaypointL7, type L7Filters } from "./l7.js";
import { defaultPlanner, type Planner } from "./route-stage.js";
import { Router } from "./router.js";
import { WaypointSnapshot, type GatewayRef } from "./snapshot.js";
import { WaypointTelemetry } from "./telemetry.js";
import { TunnelSocket } from "./tunnel-socket.js";
import { Upstreams } from "./upstream.js";
import type * as http2 from "node:http2";
import type { Destination } from "../node/proxy/route.js";

const TYPES = [ADDRESS_TYPE_URL, REVOCATION_LIST_TYPE_URL, WAYPOINT_RESOURCE_TYPE_URL] as const;

export interface HostPort {
  host: string;
  port: number;
}

export interface WaypointOptions {
  controlPlane: HostPort;
  credentialsDir: string;
  gateway: GatewayRef;
  /** The service account (Istio's default: the Gateway's name). */
  serviceAccount?: string;
  /** The address to accept HBONE on (the waypoint pod's IP) and to dial from. */
  listen: HostPort;
  admin: HostPort;
  metrics: HostPort;
  readiness: HostPort;
  trustDomain?: string;
  rootNamespace?: string;
  domain?: string;
  /** Send x-forwarded-client-cert to applications. Default true. */
  xfcc?: boolean;
  connectTimeoutMs?: number;
  drainMs?: number;
  handshakeTimeoutMs?: number;
  log: Logger;
  accessLog: Logger;
}

/** Hooks the filter modules plug into: they are compiled from each snapshot. */
export interface WaypointExtensions {
  /** Called once the waypoint's registry and upstream connections exist, before any config. */
  init?(ctx: ExtensionContext): void;
  planner(snapshot: WaypointSnapshot): Planner;
  filters(snapshot: WaypointSnapshot): L7Filters;
  close?(): void;
}

export class Waypoint implements AdminSource {
  private keeper!: NodeCredentialsKeeper;
  private manager!: CertificateManager;
  private tls!: WorkloadTls;
  private xds!: DeltaXdsClient;
  private hbone!: WaypointHbone;
  private l7!: WaypointL7;
  private upstreams!: Upstreams;
  private clusters!: Clusters;
  private telemetry!: WaypointTelemetry;
  private listener!: net.Server;
  private readonly httpServers: http.Server[] = [];
  private readonly registry = createRegistry("waypoint");
  private readonly decoded = new Map<string, Map<string, unknown>>();
  private readonly receivedTypes = new Set<string>();
  private snapshot: WaypointSnapshot;
  private planner: Planner = defaultPlanner;
  private filters: L7Filters = {};
  private readonly identity: Identity;
  private certError: string | null = "no certificate yet";
  private draining = false;
  private readonly problems = new Map<string, string>();

  private constructor(
    private readonly opts: WaypointOptions,
    private readonly ext: WaypointExtensions | undefined,
  ) {
    for (const t of TYPES) this.decoded.set(t, new Map());
    this.identity = {
      trustDomain: opts.trustDomain ?? "cluster.local",
      namespace: opts.gateway.namespace,
      serviceAccount: opts.serviceAccount ?? opts.gateway.name,
    };
    this.snapshot = this.build();
  }

  static async start(opts: WaypointOptions, ext?: WaypointExtensions): Promise<Waypoint> {
    const w = new Waypoint(opts, ext);
    await w.init();
    return w;
  }

  get spiffeId(): string {
    return formatSpiffeId(this.identity);
  }

  private pod(): LocalPod {
    return {
      uid: `waypoint:${this.opts.gateway.namespace}/${this.opts.gateway.name}`,
      ip: this.opts.listen.host,
    };
  }

  /** The waypoint as a mesh workload (from the pushed Pod when present). */
  private self(): MeshWorkload {
    const pushed = this.snapshot.mesh.workloadAt(canonicalIp(this.opts.listen.host));
    if (pushed) return pushed;
    const { trustDomain, namespace, serviceAccount } = this.identity;
    return {
      uid: this.pod().uid,
      name: this.opts.gateway.name,
      namespace,
      serviceAccount,
      trustDomain,
      spiffeId: this.spiffeId,
      ips: [this.opts.listen.host],
      node: "",
      hbone: true,
      healthy: true,
      canonicalName: this.opts.gateway.name,
      canonicalRevision: "latest",
      workloadName: this.opts.gateway.name,
      clusterId: "Kubernetes",
      network: "",
      locality: {},
      services: new Map(),
      authorizationPolicies: [],
      waypoint: null,
    };
  }

  private async init(): Promise<void> {
    const { opts } = this;
    const controlPlane = `${opts.controlPlane.host}:${opts.controlPlane.port}`;
    this.keeper = await NodeCredentialsKeeper.start({
      dir: opts.credentialsDir,
      controlPlane,
      trustDomain: this.identity.trustDomain,
      log: opts.log,
    });
    this.manager = new CertificateManager({ fetcher: this.keeper.caClient() });
    this.tls = new WorkloadTls(this.manager, () => this.keeper.credentials().rootsPem);
    this.telemetry = new WaypointTelemetry(this.registry, opts.accessLog);
    const network = new LoopbackNetwork();
    const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    const pool = new HbonePool({
      tls: this.tls,
      network,
      revocations: () => this.snapshot.mesh.revocations,
      log: opts.log,
      connectTimeoutMs,
    });
    this.upstreams = new Upstreams({
      pool,
      network,
      self: () => ({ pod: this.pod(), workload: this.self() }),
      connectTimeoutMs,
    });
    this.clusters = new Clusters(() => this.snapshot, { registry: this.registry, log: opts.log });
    const router = new Router({ upstreams: this.upstreams, chooser: this.clusters, log: opts.log });
    this.ext?.init?.({ registry: this.registry, connect: (e) => this.upstreams.connect(e) });
    this.l7 = new WaypointL7({
      snapshot: () => this.snapshot,
      router,
      planner: () => this.planner,
      filters: () => this.filters,
      telemetry: this.telemetry,
      log: opts.log,
      selfId: () => this.spiffeId,
      xfcc: opts.xfcc ?? true,
    });
    this.hbone = new WaypointHbone({
      trustDomain: this.identity.trustDomain,
      revocations: () => this.snapshot.mesh.revocations,
      onStream: (stream, peer, dst) => this.onStream(stream, peer, dst),
      onRefused: (reason, detail) => this.telemetry.refused(reason, detail),
      ...(opts.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: opts.handshakeTimeoutMs } : {}),
    });
    this.manager.on("issued", (e) => void this.onCertificate(e.spiffeId));
    this.manager.on("rotated", (e) => void this.onCertificate(e.spiffeId));
    this.manager.on("failed", (e) => {
      this.certError = String(e.error);
      opts.log.warn(
        { identity: e.spiffeId, err: e.error, retryAt: e.retryAt },
        "waypoint certificate fetch failed",
      );
    });
    this.httpServers.push(
      await startAdmin(this, opts.admin.host, opts.admin.port),
      await startMetrics(this.registry, opts.metrics.host, opts.metrics.port),
      await startReadiness(this, opts.readiness.host, opts.readiness.port),
    );
    this.listener = await network.listen(
      this.pod(),
      opts.listen.port,
      (socket) => this.hbone.accept(socket),
      false,
    );
    this.xds = new DeltaXdsClient({
      address: controlPlane,
      credentials: () => this.keeper.credentials(),
      service: adsServiceClient(),
      typeUrls: TYPES,
      validate: (typeUrl, name, r) => this.validate(typeUrl, name, r),
      onUpdate: (typeUrl, current) => this.onUpdate(typeUrl, current),
      log: opts.log,
    });
    this.xds.start();
    this.manager.track(this.identity);
    void this.onCertificate(this.spiffeId);
    opts.log.info(
      {
        gateway: `${opts.gateway.namespace}/${opts.gateway.name}`,
        identity: this.spiffeId,
        listen: opts.listen,
      },
      "waypoint started",
    );
  }

  private async onCertificate(spiffeId: string): Promise<void> {
    if (spiffeId !== this.spiffeId) return;
    try {
      const m = await this.tls.context(this.identity);
      this.hbone.useCertificate(m.cert, this.keeper.credentials().rootsPem);
      this.certError = null;
    } catch (err) {
      this.certError = (err as Error).message;
      this.opts.log.warn({ err, identity: spiffeId }, "could not adopt the waypoint certificate");
    }
  }

  // -------------------------------------------------------------------------------------------
  // Config

  private validate(typeUrl: string, name: string, r: XdsResource): string | undefined {
    if (r.resource.typeUrl !== typeUrl) return `resource of type ${r.resource.typeUrl} sent under ${typeUrl}`;
    let message: unknown;
    try {
      message = decodeAny(r.resource);
    } catch (err) {
      return `does not decode as ${typeUrl}: ${(err as Error).message}`;
    }
    if (typeUrl === WAYPOINT_RESOURCE_TYPE_URL) {
      const m = message as WaypointResourceMessage;
      let value: unknown;
      try {
        value = JSON.parse(m.json ?? "");
      } catch (err) {
        return `${m.kind ?? "?"} ${name}: not JSON: ${(err as Error).message}`;
      }
      const v = validateDocument({ file: `xds:${name}`, index: 0, value });
      if (!v.resource) {
        const why = v.problems.map((p) => p.message).join("; ");
        this.problems.set(name, why);
        return why || "invalid resource";
      }
      this.problems.delete(name);
      message = v.resource;
    }
    this.decoded.get(typeUrl)?.set(name, message);
    return undefined;
  }

  private onUpdate(typeUrl: string, current: ReadonlyMap<string, XdsResource>): void {
    const table = this.decoded.get(typeUrl);
    if (table) for (const name of [...table.keys()]) if (!current.has(name)) table.delete(name);
    this.receivedTypes.add(typeUrl);
    this.snapshot = this.build();
    this.clusters.sync();
    this.reportRouteProblems();
    if (this.ext) {
      try {
        this.planner = this.ext.planner(this.snapshot);
        this.filters = this.ext.filters(this.snapshot);
      } catch (err) {
        // A compile bug must not take the data path down: keep the previous filters.
        this.opts.log.error({ err }, "compiling the waypoint's filters failed; keeping the previous ones");
      }
    }
  }

  private routeProblems = new Set<string>();

  /** Each route problem is logged once, when it appears (the rest of the routes keep working). */
  private reportRouteProblems(): void {
    const now = new Set<string>();
    for (const p of this.snapshot.routes.problems) {
      const key = `${p.resource} ${p.path}: ${p.message}`;
      now.add(key);
      if (!this.routeProblems.has(key))
        this.opts.log.warn(
          { resource: p.resource, field: p.path, reason: p.reason },
          `route ignored: ${key}`,
        );
    }
    this.routeProblems = now;
  }

  private values<T>(typeUrl: string): T[] {
    return [...(this.decoded.get(typeUrl)?.values() ?? [])] as T[];
  }

  private build(): WaypointSnapshot {
    const revocations = this.values<RevocationListMessage>(REVOCATION_LIST_TYPE_URL);
    const mesh = new MeshSnapshot({
      addresses: this.values<Address>(ADDRESS_TYPE_URL),
      authorizations: [],
      revocations: { revocations: revocations.flatMap((r) => r.revocations ?? []) },
      rootNamespace: this.opts.rootNamespace ?? "istio-system",
    });
    return new WaypointSnapshot({
      mesh,
      resources: this.values<AnyResource>(WAYPOINT_RESOURCE_TYPE_URL),
      gateway: this.opts.gateway,
      trustDomain: this.identity.trustDomain,
      rootNamespace: this.opts.rootNamespace ?? "istio-system",
      domain: this.opts.domain ?? "cluster.local",
    });
  }

  // -------------------------------------------------------------------------------------------
  // Traffic

  private onStream(stream: http2.ServerHttp2Stream, peer: HbonePeer, dst: Destination): void {
    const snap = this.snapshot;
    const service = snap.serviceAt(dst.ip);
    if (!service) {
      this.telemetry.refused("no_service", { peer: peer.identity, authority: `${dst.ip}:${dst.port}` });
      try {
        stream.respond({ ":status": 400 }, { endStream: true });
      } catch {
        stream.destroy();
      }
      return;
    }
    const protocol = snap.portInfo(service, dst.port).protocol;
    const ctx = { peer, dst, service, protocol };
    if (protocol === "tcp") {
      void passThrough(stream, ctx, {
        clusters: this.clusters,
        upstreams: this.upstreams,
        telemetry: this.telemetry,
        log: this.opts.log,
      });
      return;
    }
    stream.respond({ ":status": 200 });
    this.l7.serve(new TunnelSocket(stream, { remoteAddress: peer.ip, remotePort: peer.port }), ctx);
  }

  // -------------------------------------------------------------------------------------------
  // Admin

  configDump(): unknown {
    const s = this.snapshot;
    return {
      gateway: this.opts.gateway,
      identity: this.spiffeId,
      resources: s.resources.map((r) => `${r.kind}/${r.metadata.namespace ?? ""}/${r.metadata.name}`),
      rejected: Object.fromEntries(this.problems),
      policies: s.policies.policyCount,
      clusters: this.clusters.dump(),
    };
  }

  connections(): unknown {
    return { upstreams: "pooled" };
  }

  loggers(): Logger[] {
    return [this.opts.log, this.opts.accessLog];
  }

  ready(): { ready: boolean; reason: string } {
    if (this.draining) return { ready: false, reason: "draining" };
    if (!this.hbone.ready) return { ready: false, reason: `certificate: ${this.certError ?? "pending"}` };
    for (const t of TYPES)
      if (!this.receivedTypes.has(t)) return { ready: false, reason: `waiting for ${t}` };
    return { ready: true, reason: "ready" };
  }

  async close(): Promise<void> {
    this.draining = true;
    this.hbone.drain();
    await new Promise<void>((r) => this.listener.close(() => r()));
    const ms = this.opts.drainMs ?? 5_000;
    await new Promise((r) => setTimeout(r, Math.min(ms, 200)).unref());
    this.hbone.close();
    this.l7.close();
    this.clusters.close();
    this.ext?.close?.();
    this.upstreams.close();
    this.xds.close();
    this.manager.close();
    this.keeper.close();
    for (const s of this.httpServers) s.close();
  }
}
