// The waypoint's authentication and CUSTOM authorization, compiled from each config snapshot:
// RequestAuthentication → one JwtFilter (kept across pushes so JWKS caches survive), the istio
// ConfigMap's MeshConfig `extensionProviders` → one ExtAuthzClient per provider (kept while its
// config is unchanged, closed when it changes or goes), CUSTOM AuthorizationPolicies → their
// provider names. Counts JWT and ext_authz outcomes in the waypoint's registry.
//
// Reaching an authorizer: a provider `service` that names a mesh Service (its hostname, with or
// without the `namespace/` qualifier, or its VIP) is reached through the mesh like any call the
// waypoint makes: HBONE to the endpoint's node proxy with the waypoint's own identity (plain TCP
// for endpoints outside the mesh). grpc-js cannot take a custom socket, so each such Service gets
// a forwarder on 127.0.0.1 (port 0; the waypoint pod's own loopback in the lab) that tunnels each
// accepted connection to one of its endpoints, round robin. Any other host (an IP, a DNS name) is
// dialled directly.
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { Counter, Histogram, type Registry } from "prom-client";
import type { Logger } from "../core/log.js";
import { MESH_CONFIG_NAME, MESH_CONFIG_NAMESPACE } from "../model/resources/configmap.js";
import { parseMeshConfig, type ExtAuthzProvider } from "../model/resources/mesh-config.js";
import type { MeshService } from "../node/proxy/mesh.js";
import { splice } from "../node/proxy/splice.js";
import { ExtAuthzClient } from "./filters/ext-authz.js";
import { JwtFilter } from "./filters/jwt.js";
import { CONTINUE, type FilterOutcome, type WaypointRequest } from "./filters/types.js";
import type { AuthzHeaders, L7Filters } from "./l7.js";
import type { WaypointSnapshot } from "./snapshot.js";
import { serviceEndpoints, type Endpoint } from "./upstream.js";

/** What the waypoint lends its extensions once it is up. */
export interface ExtensionContext {
  registry: Registry;
  /** An upstream connection to a mesh endpoint, as the router opens it (HBONE for mesh workloads). */
  connect(e: Endpoint): Promise<Duplex>;
}

/** Connections one authorizer forwarder carries at once; more are refused. */
const MAX_FORWARDED_CONNECTIONS = 256;

interface ProviderClient {
  /** The provider's config as JSON: a changed config gets a new client. */
  key: string;
  client: ExtAuthzClient;
}

/** Tunnels local connections to a mesh Service's endpoints (see the module comment). */
class MeshForwarder {
  private readonly server: net.Server;
  readonly listening: Promise<number>;
  private next = 0;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    readonly label: string,
    private readonly endpoints: () => Endpoint[],
    private readonly connect: (e: Endpoint) => Promise<Duplex>,
    private readonly log: Logger,
  ) {
    this.server = net.createServer((s) => this.accept(s));
    this.server.maxConnections = MAX_FORWARDED_CONNECTIONS;
    this.listening = new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve((this.server.address() as net.AddressInfo).port));
    });
    this.listening.catch(() => undefined);
  }

  private accept(local: net.Socket): void {
    this.sockets.add(local);
    local.once("close", () => this.sockets.delete(local));
    local.on("error", () => undefined);
    const all = this.endpoints();
    const e = all[this.next++ % Math.max(1, all.length)];
    if (!e) {
      this.log.warn({ authorizer: this.label }, "ext_authz: the authorizer Service has no ready endpoint");
      return void local.destroy();
    }
    local.pause();
    this.connect(e).then(
      (up) => {
        if (local.destroyed) return void up.destroy();
        splice(local, up, { a: "ext_authz client", b: "authorizer" }, () => undefined);
      },
      (err: unknown) => {
        this.log.warn(
          { authorizer: this.label, endpoint: `${e.ip}:${e.port}`, err: (err as Error).message },
          "ext_authz: connecting to the authorizer through the mesh failed",
        );
        local.destroy();
      },
    );
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

export class AuthStage {
  private readonly jwt: JwtFilter;
  private clients = new Map<string, ProviderClient>();
  private readonly forwarders = new Map<string, MeshForwarder>();
  private snapshot: WaypointSnapshot | null = null;
  private ctx: ExtensionContext | null = null;
  private meshConfigProblems = "";
  private jwtOutcomes: Counter<string> | null = null;
  private checks: Counter<string> | null = null;
  private checkMs: Histogram<string> | null = null;

  constructor(private readonly log: Logger) {
    this.jwt = new JwtFilter({ log });
  }

  init(ctx: ExtensionContext): void {
    this.ctx = ctx;
    this.jwtOutcomes = new Counter({
      name: "ambit_waypoint_jwt_authn_total",
      help: "Requests seen by the JWT filter, by result: valid, absent, or the rejection reason",
      labelNames: ["result"],
      registers: [ctx.registry],
    });
    this.checks = new Counter({
      name: "ambit_waypoint_ext_authz_total",
      help: "CUSTOM authorization checks, by provider and result (allowed, denied, error, timeout, failed_open, unknown_provider)",
      labelNames: ["provider", "result"],
      registers: [ctx.registry],
    });
    this.checkMs = new Histogram({
      name: "ambit_waypoint_ext_authz_duration_milliseconds",
      help: "Time to an ext_authz answer (or failure), ms",
      labelNames: ["provider"],
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000],
      registers: [ctx.registry],
    });
  }

  /** The filters for one snapshot. */
  compile(snap: WaypointSnapshot): L7Filters {
    this.snapshot = snap;
    this.jwt.update(snap.ofKind("RequestAuthentication"), snap.gateway, snap.rootNamespace);
    this.updateProviders(snap);
    const custom = new Map<string, string>();
    for (const p of snap.ofKind("AuthorizationPolicy")) {
      if (p.spec?.action === "CUSTOM" && p.spec.provider?.name)
        custom.set(`${p.metadata.namespace ?? "default"}/${p.metadata.name}`, p.spec.provider.name);
    }
    return {
      jwt: (req, query) => this.runJwt(req, query),
      extAuthz: (req, provider) => this.check(req, provider),
      customProvider: (policy) => custom.get(policy),
    };
  }

  close(): void {
    this.jwt.close();
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
    for (const f of this.forwarders.values()) f.close();
    this.forwarders.clear();
  }

  private updateProviders(snap: WaypointSnapshot): void {
    const cm = snap
      .ofKind("ConfigMap")
      .find((c) => c.metadata.namespace === MESH_CONFIG_NAMESPACE && c.metadata.name === MESH_CONFIG_NAME);
    const source = `ConfigMap ${MESH_CONFIG_NAMESPACE}/${MESH_CONFIG_NAME} data.mesh`;
    const { providers, problems } = parseMeshConfig(cm?.data.mesh ?? "", source);
    const text = problems.join("; ");
    if (text !== this.meshConfigProblems && text !== "")
      this.log.warn({ problems }, "mesh config: providers left out (CUSTOM policies naming them deny)");
    this.meshConfigProblems = text;

    const next = new Map<string, ProviderClient>();
    for (const [name, p] of providers) {
      const key = JSON.stringify(p);
      const old = this.clients.get(name);
      if (old?.key === key) {
        next.set(name, old);
        continue;
      }
      next.set(name, {
        key,
        client: new ExtAuthzClient({
          providers: new Map([[name, p]]),
          resolve: (host, port) => this.resolve(p, host, port),
          log: this.log,
        }),
      });
    }
    for (const [name, old] of this.clients) if (next.get(name) !== old) old.client.close();
    this.clients = next;

    // Forwarders only for the mesh Services the current providers name.
    const wanted = new Set<string>();
    for (const p of providers.values()) {
      const svc = this.meshService(snap, p);
      if (svc) wanted.add(`${svc.key}:${p.port}`);
    }
    for (const [key, f] of this.forwarders) {
      if (!wanted.has(key)) {
        f.close();
        this.forwarders.delete(key);
      }
    }
  }

  /** The mesh Service a provider names, if any. */
  private meshService(snap: WaypointSnapshot, p: ExtAuthzProvider): MeshService | undefined {
    const host = p.service.toLowerCase();
    if (net.isIP(host) !== 0) return snap.serviceAt(host);
    if (p.namespace) return snap.mesh.serviceByHost(p.namespace, host);
    for (const s of snap.mesh.services.values()) if (s.hostname === host) return s;
    return undefined;
  }

  private async resolve(
    p: ExtAuthzProvider,
    host: string,
    port: number,
  ): Promise<{ host: string; port: number } | null> {
    const snap = this.snapshot;
    const svc = snap ? this.meshService(snap, p) : undefined;
    if (!svc || !this.ctx) return { host, port };
    const key = `${svc.key}:${port}`;
    let f = this.forwarders.get(key);
    if (!f) {
      const ctx = this.ctx;
      f = new MeshForwarder(
        `${svc.hostname}:${port}`,
        () => this.endpointsOf(svc.key, port),
        (e) => ctx.connect(e),
        this.log,
      );
      this.forwarders.set(key, f);
    }
    try {
      return { host: "127.0.0.1", port: await f.listening };
    } catch (err) {
      this.forwarders.delete(key);
      this.log.warn(
        { authorizer: key, err: (err as Error).message },
        "ext_authz: forwarder failed to listen",
      );
      return null;
    }
  }

  /** The current ready endpoints of a Service port (from the newest snapshot). */
  private endpointsOf(serviceKey: string, port: number): Endpoint[] {
    const mesh = this.snapshot?.mesh;
    const svc = mesh?.services.get(serviceKey);
    if (!mesh || !svc) return [];
    return serviceEndpoints(mesh, svc, port);
  }

  private async runJwt(req: WaypointRequest, query: URLSearchParams): Promise<FilterOutcome> {
    const out = await this.jwt.jwt(req, query);
    const result = out.action === "respond" ? out.reason : req.jwt ? "valid" : "absent";
    this.jwtOutcomes?.inc({ result });
    return out;
  }

  private async check(req: WaypointRequest, provider: string): Promise<FilterOutcome & AuthzHeaders> {
    const entry = this.clients.get(provider);
    if (!entry) {
      // Istio: a CUSTOM policy whose provider is not in MeshConfig denies.
      this.checks?.inc({ provider, result: "unknown_provider" });
      return {
        action: "respond",
        status: 403,
        body: "RBAC: access denied",
        reason: `ext_authz_provider_unknown: no extensionProvider "${provider}" in the mesh config`,
      };
    }
    const started = performance.now();
    const svc = req.destination.service;
    const vip = svc ? this.snapshot?.serviceNamed(svc.namespace, svc.name)?.vips[0] : undefined;
    const res = await entry.client.check(provider, {
      method: req.method,
      path: req.path,
      authority: req.authority,
      scheme: "http",
      headers: req.headers,
      protocol: req.protocol,
      source: { principal: req.source.principal, ip: req.source.ip },
      destination: { ip: vip ?? "", port: req.destination.port },
    });
    this.checkMs?.observe({ provider }, performance.now() - started);
    if (res.allowed) {
      this.checks?.inc({ provider, result: res.failedOpen ? "failed_open" : "allowed" });
      for (const h of res.removeHeaders ?? []) req.headers.delete(h.toLowerCase());
      return { ...CONTINUE, upstreamHeaders: res.upstreamHeaders, downstreamHeaders: res.downstreamHeaders };
    }
    const result =
      res.reason === "ext_authz_denied" ? "denied" : res.reason === "ext_authz_timeout" ? "timeout" : "error";
    this.checks?.inc({ provider, result });
    return {
      action: "respond",
      status: res.status,
      headers: res.headers,
      body: res.body,
      reason: `${res.reason} (provider ${provider})`,
    };
  }
}
