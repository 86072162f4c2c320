// Outbound on a pod's port 15001: learn where the application meant to go, pick the route
// (endpoint or waypoint over HBONE with the pod's own identity, or plain TCP outside the mesh),
// and splice. The application sees its connection refused when the destination cannot be
// reached or its node proxy denies it.
import type * as net from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../../core/log.js";
import type { HbonePool } from "./hbone-pool.js";
import type { MeshSnapshot, MeshWorkload } from "./mesh.js";
import type { Intercepted, LocalPod, PodNetwork } from "./network.js";
import { resolveRoute, type Balancer, type Route } from "./route.js";
import { splice } from "./splice.js";
import type { ConnectionRecord, NodeTelemetry } from "./telemetry.js";

export interface OutboundOptions {
  network: PodNetwork;
  pool: HbonePool;
  balancer: Balancer;
  mesh: () => MeshSnapshot;
  telemetry: NodeTelemetry;
  log: Logger;
  connectTimeoutMs: number;
}

export class Outbound {
  private readonly live = new Map<(reason: string) => void, ConnectionRecord>();

  constructor(private readonly opts: OutboundOptions) {}

  get openConnections(): number {
    return this.live.size;
  }

  async accept(pod: LocalPod, socket: net.Socket): Promise<void> {
    socket.on("error", () => undefined);
    const peer = { ip: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    const ic = await this.opts.network.intercept(pod, socket);
    if ("error" in ic) {
      this.opts.telemetry.refused("outbound", "original_destination", {
        pod: pod.ip,
        peer,
        detail: ic.error,
      });
      socket.destroy();
      return;
    }
    const mesh = this.opts.mesh();
    const source = mesh.workloads.get(pod.uid);
    if (!source) {
      ic.refuse("unreachable");
      return;
    }
    const route = resolveRoute(mesh, source, ic.dst, this.opts.balancer);
    const rec = this.record(source, peer, ic, route);
    this.opts.telemetry.connectionOpened(rec);
    switch (route.kind) {
      case "refuse":
        rec.flags = "UH";
        rec.decision = "DENY";
        rec.reason = route.reason;
        ic.refuse("unreachable");
        this.opts.telemetry.finished(rec, { sent: 0, received: 0, endReason: route.reason });
        return;
      case "passthrough":
        return this.passthrough(pod, socket, ic, route.target, rec);
      case "hbone":
        return this.tunnel(pod, source, socket, ic, route, rec);
    }
  }

  private record(
    source: MeshWorkload,
    peer: { ip: string; port: number },
    ic: Intercepted,
    route: Route,
  ): ConnectionRecord {
    const peerWorkload = route.kind === "refuse" ? null : route.peer;
    return {
      id: this.opts.telemetry.newId(),
      direction: "outbound",
      source: { ip: peer.ip, port: peer.port, workload: source, identity: source.spiffeId },
      destination: {
        ip: ic.dst.ip,
        port: ic.dst.port,
        workload: peerWorkload,
        identity: route.kind === "hbone" ? route.expectedIdentity : null,
      },
      service: route.service,
      security: route.kind === "hbone" ? "mutual_tls" : "none",
      decision: "ALLOW",
      policy: null,
      reason: route.kind === "hbone" ? (route.viaWaypoint ? "via waypoint" : "hbone") : "passthrough",
      flags: "-",
      startedAt: Date.now(),
    };
  }

  private async passthrough(
    pod: LocalPod,
    socket: net.Socket,
    ic: Intercepted,
    target: { ip: string; port: number },
    rec: ConnectionRecord,
  ): Promise<void> {
    let upstream: net.Socket;
    try {
      upstream = await this.opts.network.dial(pod, target, { timeoutMs: this.opts.connectTimeoutMs });
    } catch (err) {
      rec.flags = "UF";
      ic.refuse("unreachable");
      this.opts.telemetry.finished(rec, {
        sent: 0,
        received: 0,
        endReason: `upstream unreachable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      });
      return;
    }
    ic.confirm();
    this.track(socket, upstream, rec, false);
  }

  private async tunnel(
    pod: LocalPod,
    source: MeshWorkload,
    socket: net.Socket,
    ic: Intercepted,
    route: Extract<Route, { kind: "hbone" }>,
    rec: ConnectionRecord,
  ): Promise<void> {
    const r = await this.opts.pool.open({
      pod,
      source,
      tunnel: route.tunnel,
      authority: route.authority,
      expectedIdentity: route.expectedIdentity,
    });
    if (!r.ok) {
      rec.flags = r.status === 401 ? "RBAC" : "UF";
      rec.decision = r.status === 401 ? "DENY" : rec.decision;
      rec.reason = r.reason;
      ic.refuse(r.status === 401 ? "denied" : "unreachable");
      this.opts.telemetry.finished(rec, { sent: 0, received: 0, endReason: r.reason });
      if (r.status !== 401) this.opts.log.debug({ id: rec.id, reason: r.reason }, "HBONE tunnel failed");
      return;
    }
    if (socket.destroyed) {
      r.stream.close();
      this.opts.telemetry.finished(rec, { sent: 0, received: 0, endReason: "client went away" });
      return;
    }
    ic.confirm();
    this.track(socket, r.stream, rec, true);
  }

  private track(socket: net.Socket, upstream: Duplex, rec: ConnectionRecord, tunnel: boolean): void {
    const s = splice(
      socket,
      upstream,
      { a: "client", b: "upstream" },
      (end) => {
        this.live.delete(close);
        this.opts.telemetry.finished(rec, { received: end.aToB, sent: end.bToA, endReason: end.reason });
      },
      // HBONE stream → client socket: batch the frame pieces of one event-loop turn into a writev.
      { batchBToA: tunnel },
    );
    const close = (reason: string): void => s.close(reason);
    this.live.set(close, rec);
  }

  openRecords(): ConnectionRecord[] {
    return [...this.live.values()];
  }

  closeAll(reason: string): void {
    for (const c of [...this.live.keys()]) c(reason);
  }
}
