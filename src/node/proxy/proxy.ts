// `ambit node`: the node proxy. Subscribes to the control plane's config over Delta xDS with the
// node certificate, keeps a MeshSnapshot, opens the three listeners of every enrolled workload
// scheduled on this node (15001 outbound, 15006 inbound plaintext, 15008 inbound HBONE) with
// that workload's own certificate, re-checks open connections when policy or revocations change,
// and serves admin, metrics and readiness. Keeps serving its last good config when the control
// plane is away; on shutdown it stops accepting, drains, then closes.
import { X509Certificate } from "node:crypto";
import type * as http from "node:http";
import type * as net from "node:net";
import { adsServiceClient } from "../../api/protos.js";
import { DeltaXdsClient, type XdsResource } from "../../api/xds-client.js";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  decodeAny,
  REVOCATION_LIST_TYPE_URL,
  type Address,
  type Authorization,
  type RevocationListMessage,
} from "../../api/xds-types.js";
import { AmbitError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import { createRegistry } from "../../core/metrics.js";
import { readNodeCredentials } from "../../identity/ca-client.js";
import { CertificateManager } from "../../identity/cert-manager.js";
import { uriSans } from "../../identity/peer-check.js";
import { parseSpiffeId, type Identity } from "../../model/spiffe.js";
import type { NodeAgent } from "../agent/agent.js";
import type { PodRegistration } from "../agent/protocol.js";
import { NodeCredentialsKeeper } from "../credentials.js";
import { startAdmin, startMetrics, startReadiness, type AdminSource } from "./admin.js";
import { HbonePool } from "./hbone-pool.js";
import { HboneServer } from "./hbone-server.js";
import { Inbound } from "./inbound.js";
import { canonicalIp, MeshSnapshot, type MeshWorkload } from "./mesh.js";
import type { LocalPod, PodNetwork } from "./network.js";
import { Outbound } from "./outbound.js";
import { Balancer } from "./route.js";
import { CniHandler, workloadFor } from "./cni-handler.js";
import { PodDns } from "./pod-dns.js";
import { NodeTelemetry } from "./telemetry.js";
import { WorkloadTls } from "./workload-tls.js";

export const POD_PORTS = { outbound: 15001, inboundPlaintext: 15006, hbone: 15008, dns: 15053 } as const;
const TYPES = [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, REVOCATION_LIST_TYPE_URL] as const;

export interface HostPort {
  host: string;
  port: number;
}

export interface NodeProxyOptions {
  controlPlane: HostPort;
  nodeName: string;
  credentialsDir: string;
  network: PodNetwork;
  admin: HostPort;
  metrics: HostPort;
  readiness: HostPort;
  /** How long open connections may finish after shutdown starts. Default 10 s. */
  drainMs?: number;
  /** Inbound TLS handshakes not finished by then are dropped. Default 10 s. */
  handshakeTimeoutMs?: number;
  rootNamespace?: string;
  connectTimeoutMs?: number;
  /** Capture mode: the node agent where `ambit-cni` announces pods, and the node's resolvers. */
  capture?: { agent: NodeAgent; dnsUpstream: HostPort[] };
  log: Logger;
  accessLog: Logger;
}

interface PodRuntime {
  pod: LocalPod;
  workload: MeshWorkload;
  identity: Identity;
  hbone: HboneServer;
  servers: net.Server[];
  dns: PodDns | null;
  state: "starting" | "ready" | "failed";
  error: string | null;
}

interface Decoded<T> {
  version: string;
  message: T;
}

function identityOf(w: MeshWorkload): Identity {
  return { trustDomain: w.trustDomain, namespace: w.namespace, serviceAccount: w.serviceAccount };
}

/** The node name (subject CN) and trust domain of the node certificate. */
function nodeCertificateFacts(chainPem: string): { node: string; trustDomain: string } {
  const cert = new X509Certificate(chainPem);
  const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1] ?? "";
  const uri = uriSans(cert.subjectAltName)[0];
  const parsed = uri ? parseSpiffeId(uri) : undefined;
  if (!parsed?.ok) throw new AmbitError("AMBIT_E_CA_STATE", "the node certificate carries no SPIFFE ID");
  return { node: cn, trustDomain: parsed.identity.trustDomain };
}

export class NodeProxy implements AdminSource {
  private keeper!: NodeCredentialsKeeper;
  private manager!: CertificateManager;
  private tls!: WorkloadTls;
  private xds!: DeltaXdsClient;
  private pool!: HbonePool;
  private inbound!: Inbound;
  private outbound!: Outbound;
  private telemetry!: NodeTelemetry;
  private trustDomain = "cluster.local";
  private mesh: MeshSnapshot;
  private readonly decoded = new Map<string, Map<string, Decoded<unknown>>>();
  private readonly receivedTypes = new Set<string>();
  private readonly pods = new Map<string, PodRuntime>();
  private readonly httpServers: http.Server[] = [];
  private readonly registry = createRegistry("node");
  private readonly balancer = new Balancer();
  private reconcileTimer: NodeJS.Timeout | undefined;
  private draining = false;
  private meshVersion = 0;

  private constructor(private readonly opts: NodeProxyOptions) {
    this.mesh = new MeshSnapshot({
      addresses: [],
      authorizations: [],
      revocations: undefined,
      rootNamespace: opts.rootNamespace ?? "istio-system",
    });
    for (const t of TYPES) this.decoded.set(t, new Map());
  }

  static async start(opts: NodeProxyOptions): Promise<NodeProxy> {
    const p = new NodeProxy(opts);
    await p.init();
    return p;
  }

  private async init(): Promise<void> {
    const { opts } = this;
    const controlPlane = `${opts.controlPlane.host}:${opts.controlPlane.port}`;
    const probe = await readNodeCredentials(opts.credentialsDir);
    const facts = nodeCertificateFacts(probe.certChainPem);
    if (facts.node !== opts.nodeName) {
      throw new AmbitError(
        "AMBIT_E_USAGE",
        `--node-name ${opts.nodeName} does not match the node certificate in ${opts.credentialsDir} (issued to ${facts.node})`,
      );
    }
    this.trustDomain = facts.trustDomain;
    this.keeper = await NodeCredentialsKeeper.start({
      dir: opts.credentialsDir,
      controlPlane,
      trustDomain: this.trustDomain,
      log: opts.log,
    });
    this.manager = new CertificateManager({ fetcher: this.keeper.caClient() });
    this.manager.on("issued", (e) => this.onCertificate(e.spiffeId));
    this.manager.on("rotated", (e) => this.onCertificate(e.spiffeId));
    this.manager.on("failed", (e) =>
      opts.log.warn(
        { identity: e.spiffeId, err: e.error, retryAt: e.retryAt },
        "workload certificate fetch failed",
      ),
    );
    this.tls = new WorkloadTls(this.manager, () => this.keeper.credentials().rootsPem);
    this.telemetry = new NodeTelemetry(this.registry, opts.accessLog);
    const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.pool = new HbonePool({
      tls: this.tls,
      network: opts.network,
      revocations: () => this.mesh.revocations,
      log: opts.log,
      connectTimeoutMs,
    });
    this.inbound = new Inbound({
      network: opts.network,
      telemetry: this.telemetry,
      log: opts.log,
      connectTimeoutMs,
    });
    this.outbound = new Outbound({
      network: opts.network,
      pool: this.pool,
      balancer: this.balancer,
      mesh: () => this.mesh,
      telemetry: this.telemetry,
      log: opts.log,
      connectTimeoutMs,
    });
    this.httpServers.push(
      await startAdmin(this, opts.admin.host, opts.admin.port),
      await startMetrics(this.registry, opts.metrics.host, opts.metrics.port),
      await startReadiness(this, opts.readiness.host, opts.readiness.port),
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
    if (opts.capture) await this.startAgent(opts.capture.agent);
    this.reconcileTimer = setInterval(() => this.reconcile(), 5_000);
    this.reconcileTimer.unref();
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
    const problem = checkMessage(typeUrl, message);
    if (problem) return problem;
    this.decoded.get(typeUrl)?.set(name, { version: r.version, message });
    return undefined;
  }

  private onUpdate(typeUrl: string, current: ReadonlyMap<string, XdsResource>): void {
    const table = this.decoded.get(typeUrl);
    if (table) for (const name of [...table.keys()]) if (!current.has(name)) table.delete(name);
    this.receivedTypes.add(typeUrl);
    this.rebuild();
  }

  private values<T>(typeUrl: string): T[] {
    return [...(this.decoded.get(typeUrl)?.values() ?? [])].map((d) => d.message as T);
  }

  private rebuild(): void {
    const revocations = this.values<RevocationListMessage>(REVOCATION_LIST_TYPE_URL);
    this.mesh = new MeshSnapshot({
      addresses: this.values<Address>(ADDRESS_TYPE_URL),
      authorizations: this.values<Authorization>(AUTHORIZATION_TYPE_URL),
      revocations: { revocations: revocations.flatMap((r) => r.revocations ?? []) },
      rootNamespace: this.opts.rootNamespace ?? "istio-system",
    });
    this.meshVersion++;
    const closed = this.inbound.reevaluate(this.mesh);
    if (closed > 0) this.opts.log.info({ closed }, "closed connections no longer admitted");
    this.reconcile();
  }

  // -------------------------------------------------------------------------------------------
  // Local pods

  private async startAgent(agent: NodeAgent): Promise<void> {
    const pods = await agent.load();
    if (pods.length > 0)
      this.opts.log.info({ pods: pods.length }, "re-enrolling pods registered before restart");
    await agent.start(
      new CniHandler({
        nodeName: this.opts.nodeName,
        mesh: () => this.mesh,
        enrolment: (uid) => this.pods.get(uid),
        reconcile: () => this.reconcile(),
        release: (pod) => this.release(pod),
      }),
    );
  }

  /** Capture mode: the registration of each local workload the CNI announced. */
  private registered(): Map<string, PodRegistration> {
    const out = new Map<string, PodRegistration>();
    const agent = this.opts.capture?.agent;
    if (!agent) return out;
    for (const reg of agent.registrations()) {
      const w = workloadFor(this.mesh, this.opts.nodeName, reg);
      if (w) out.set(w.uid, reg);
    }
    return out;
  }

  private reconcile(): void {
    if (this.draining) return;
    const wanted = new Map<string, { w: MeshWorkload; pod: LocalPod }>();
    const regs = this.registered();
    for (const w of this.mesh.workloadsOn(this.opts.nodeName)) {
      if (!w.hbone) continue;
      const reg = regs.get(w.uid);
      if (this.opts.capture && !reg) continue;
      const ip = reg?.ips[0] ?? w.ips[0];
      if (ip === undefined) continue;
      wanted.set(w.uid, { w, pod: { uid: w.uid, ip, ...(reg ? { netns: reg.netns } : {}) } });
    }
    for (const [uid, rt] of this.pods) {
      const want = wanted.get(uid);
      if (
        !want ||
        want.pod.ip !== rt.pod.ip ||
        want.w.spiffeId !== rt.workload.spiffeId ||
        want.pod.netns !== rt.pod.netns ||
        rt.state === "failed"
      ) {
        this.removePod(rt, !want || want.pod.netns !== rt.pod.netns);
      } else rt.workload = want.w;
    }
    for (const [uid, want] of wanted) if (!this.pods.has(uid)) void this.addPod(want.w, want.pod);
    for (const rt of this.pods.values()) if (rt.state === "ready") void this.refreshCertificate(rt);
  }

  private async addPod(w: MeshWorkload, pod: LocalPod): Promise<void> {
    const ip = pod.ip;
    const identity = identityOf(w);
    const rt: PodRuntime = {
      pod,
      workload: w,
      identity,
      servers: [],
      dns: null,
      state: "starting",
      error: null,
      hbone: new HboneServer({
        pod,
        trustDomain: this.trustDomain,
        mesh: () => this.mesh,
        inbound: this.inbound,
        telemetry: this.telemetry,
        log: this.opts.log,
        handshakeTimeoutMs: this.opts.handshakeTimeoutMs ?? 10_000,
      }),
    };
    this.pods.set(w.uid, rt);
    this.tls.track(identity);
    try {
      await this.refreshCertificate(rt);
      const { network } = this.opts;
      rt.servers.push(
        await network.listen(pod, POD_PORTS.hbone, (s) => rt.hbone.accept(s), false),
        await network.listen(pod, POD_PORTS.inboundPlaintext, (s) => void this.acceptPlaintext(rt, s)),
        await network.listen(pod, POD_PORTS.outbound, (s) => void this.outbound.accept(pod, s)),
      );
      if (network.bindUdp && network.redirect) {
        rt.dns = await PodDns.start({
          pod,
          namespace: w.namespace,
          port: POD_PORTS.dns,
          network,
          mesh: () => this.mesh,
          upstream: this.opts.capture?.dnsUpstream ?? [],
          log: this.opts.log,
        });
        rt.servers.push(rt.dns.tcp);
        await network.redirect(pod);
      }
      if (this.pods.get(w.uid) !== rt) {
        for (const s of rt.servers) s.close();
        rt.dns?.close();
        return;
      }
      rt.state = "ready";
      this.opts.log.info({ pod: `${w.namespace}/${w.name}`, ip, identity: w.spiffeId }, "workload enrolled");
    } catch (err) {
      rt.state = "failed";
      rt.error = err instanceof Error ? err.message : String(err);
      for (const s of rt.servers) s.close();
      rt.dns?.close();
      rt.servers = [];
      this.opts.log.error(
        { pod: `${w.namespace}/${w.name}`, ip, err: rt.error },
        "could not enrol workload; retrying on the next config change or in 5 s",
      );
    }
  }

  /** `leaving`: the pod left the mesh or its netns changed, so its redirection goes too. */
  private removePod(rt: PodRuntime, leaving: boolean): void {
    this.pods.delete(rt.pod.uid);
    for (const s of rt.servers) s.close();
    rt.dns?.close();
    if (leaving && this.opts.network.unredirect) {
      this.opts.network
        .unredirect(rt.pod)
        .catch((err: unknown) =>
          this.opts.log.warn({ err, pod: rt.workload.name }, "could not remove the pod's redirection"),
        );
    }
    rt.hbone.drain();
    this.tls.untrack(rt.identity);
    if (rt.state === "ready")
      this.opts.log.info({ pod: `${rt.workload.namespace}/${rt.workload.name}` }, "workload left this node");
  }

  /** A CNI DEL: the pod's listeners close on the next reconcile; its redirection goes now. */
  private async release(reg: PodRegistration): Promise<void> {
    if (this.opts.network.unredirect) {
      await this.opts.network.unredirect({ uid: reg.containerId, ip: reg.ips[0] ?? "", netns: reg.netns });
    }
  }

  private async refreshCertificate(rt: PodRuntime): Promise<void> {
    const m = await this.tls.context(rt.identity);
    rt.hbone.useCertificate(m.cert, this.keeper.credentials().rootsPem);
  }

  private onCertificate(spiffeId: string): void {
    for (const rt of this.pods.values()) {
      if (rt.workload.spiffeId === spiffeId && rt.state === "ready") {
        this.refreshCertificate(rt).catch((err: unknown) =>
          this.opts.log.warn({ err, identity: spiffeId }, "could not adopt a renewed certificate"),
        );
      }
    }
  }

  private async acceptPlaintext(rt: PodRuntime, socket: net.Socket): Promise<void> {
    socket.on("error", () => undefined);
    const peer = { ip: canonicalIp(socket.remoteAddress), port: socket.remotePort ?? 0 };
    const ic = await this.opts.network.intercept(rt.pod, socket);
    if ("error" in ic) {
      this.telemetry.refused("plaintext", "original_destination", { pod: rt.pod.ip, peer, detail: ic.error });
      socket.destroy();
      return;
    }
    const mesh = this.mesh;
    const workload = mesh.workloads.get(rt.pod.uid);
    if (!workload || !workload.ips.includes(ic.dst.ip)) {
      this.telemetry.refused("plaintext", "not_local", { pod: rt.pod.ip, peer, dst: ic.dst });
      ic.refuse("unreachable");
      return;
    }
    const rec = this.inbound.record(mesh, { identity: null, ...peer }, ic.dst, workload, "none");
    this.telemetry.connectionOpened(rec);
    if (rec.decision === "DENY") {
      this.telemetry.refused("plaintext", "denied", {
        pod: rt.pod.ip,
        peer,
        policy: rec.policy,
        reason: rec.reason,
      });
      ic.refuse("denied");
      this.telemetry.finished(rec, { sent: 0, received: 0, endReason: "denied" });
      return;
    }
    await this.inbound.deliver(rt.pod, rec, socket, null, {
      accepted: () => ic.confirm(),
      failed: () => ic.refuse("unreachable"),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Admin

  ready(): { ready: boolean; reason: string } {
    if (this.draining) return { ready: false, reason: "draining" };
    const missing = TYPES.filter((t) => !this.receivedTypes.has(t));
    if (missing.length > 0)
      return { ready: false, reason: `waiting for first config: ${missing.join(", ")}` };
    const starting = [...this.pods.values()].filter((p) => p.state !== "ready");
    if (starting.length > 0) {
      return {
        ready: false,
        reason: `workloads not enrolled yet: ${starting.map((p) => p.workload.name).join(", ")}`,
      };
    }
    return { ready: true, reason: "config acknowledged; every local workload enrolled" };
  }

  loggers(): Logger[] {
    return [this.opts.log, this.opts.accessLog];
  }

  configDump(): unknown {
    const mesh = this.mesh;
    return {
      node: this.opts.nodeName,
      trustDomain: this.trustDomain,
      mode: this.opts.network.mode,
      xds: {
        connected: this.xds.connected,
        received: this.xds.received,
        versions: Object.fromEntries(
          TYPES.map((t) => [
            t,
            Object.fromEntries([...this.xds.resources(t)].map(([n, r]) => [n, r.version])),
          ]),
        ),
      },
      workloads: [...mesh.workloads.values()].map((w) => ({
        uid: w.uid,
        name: w.name,
        namespace: w.namespace,
        identity: w.spiffeId,
        ips: w.ips,
        node: w.node,
        protocol: w.hbone ? "HBONE" : "TCP",
        healthy: w.healthy,
        services: Object.fromEntries(w.services),
        authorizationPolicies: w.authorizationPolicies,
      })),
      services: [...mesh.services.values()].map((s) => ({
        name: s.name,
        namespace: s.namespace,
        hostname: s.hostname,
        vips: s.vips,
        ports: s.ports,
        endpoints: mesh.endpointsOf(s.key).map((w) => w.uid),
        waypoint: s.waypoint,
        loadBalancing: s.loadBalancing,
      })),
      policies: mesh.authorizations,
      revocations: mesh.revocations.entries,
      localWorkloads: [...this.pods.values()].map((p) => ({
        uid: p.pod.uid,
        ip: p.pod.ip,
        netns: p.pod.netns ?? null,
        identity: p.workload.spiffeId,
        state: p.state,
        error: p.error,
        ports: POD_PORTS,
      })),
      certificates: this.manager.snapshot(),
      pool: { connections: this.pool.size },
    };
  }

  connections(): unknown {
    return {
      inbound: this.inbound.openRecords(),
      outbound: this.outbound.openRecords(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /** Stop accepting, let open connections finish for the drain period, then close everything. */
  async shutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    for (const rt of this.pods.values()) {
      for (const s of rt.servers) s.close();
      rt.dns?.close();
      rt.hbone.drain();
    }
    await this.opts.capture?.agent.close();
    const deadline = Date.now() + (this.opts.drainMs ?? 10_000);
    while (Date.now() < deadline && this.inbound.openConnections + this.outbound.openConnections > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const left = this.inbound.openConnections + this.outbound.openConnections;
    if (left > 0) this.opts.log.warn({ connections: left }, "drain period over; closing open connections");
    this.inbound.closeAll("node proxy shutting down");
    this.outbound.closeAll("node proxy shutting down");
    for (const rt of this.pods.values()) rt.hbone.close();
    this.pool.close();
    this.xds.close();
    this.manager.close();
    this.keeper.close();
    await Promise.all(this.httpServers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** Structural checks a decoded resource must pass before the proxy relies on it. */
function checkMessage(typeUrl: string, message: unknown): string | undefined {
  if (typeUrl === ADDRESS_TYPE_URL) {
    const a = message as Address;
    if (a.workload) {
      const w = a.workload;
      if (!w.uid) return "workload without uid";
      if (!w.namespace) return `workload ${w.uid} has no namespace`;
      for (const b of w.addresses ?? []) {
        if (b.length !== 4 && b.length !== 16) return `workload ${w.uid} has an address of ${b.length} bytes`;
      }
      return undefined;
    }
    if (a.service) {
      const s = a.service;
      if (!s.hostname || !s.namespace) return "service without namespace or hostname";
      for (const n of s.addresses ?? []) {
        const len = n.address?.length ?? 0;
        if (len !== 4 && len !== 16)
          return `service ${s.namespace}/${s.hostname} has an address of ${len} bytes`;
      }
      return undefined;
    }
    return "address is neither a workload nor a service";
  }
  if (typeUrl === AUTHORIZATION_TYPE_URL) {
    const p = message as Authorization;
    if (!p.name || !p.namespace) return "authorization without name or namespace";
    return undefined;
  }
  return undefined;
}
