// What both inbound listeners share once they know who is calling and where to: the L4 decision
// (the model's wire-form evaluator over the policies the control plane pushed, PeerAuthentication
// included), delivery to the application, and the registry of open connections that re-checks
// each one when policies or revocations change and closes those no longer admitted.
import type { Duplex } from "node:stream";
import type { Logger } from "../../core/log.js";
import { authorizeWire } from "../../model/authz/index.js";
import type { MeshSnapshot, MeshWorkload } from "./mesh.js";
import type { LocalPod, PodNetwork } from "./network.js";
import type { Destination } from "./route.js";
import { splice, type Splice } from "./splice.js";
import type { ConnectionRecord, NodeTelemetry, Party } from "./telemetry.js";

export interface InboundDecision {
  decision: "ALLOW" | "DENY";
  policy: string | null;
  reason: string;
}

/** The L4 decision for a connection to a local workload. */
export function decideInbound(
  mesh: MeshSnapshot,
  source: { identity: string | null; ip: string },
  dst: Destination,
  workload: MeshWorkload,
): InboundDecision {
  const d = authorizeWire(mesh.policies, {
    source: { identity: source.identity, ip: source.ip },
    destination: {
      ip: dst.ip,
      port: dst.port,
      namespace: workload.namespace,
      name: workload.name,
      authorizationPolicies: workload.authorizationPolicies,
    },
  });
  return { decision: d.decision, policy: d.policy, reason: d.reason };
}

interface Live {
  rec: ConnectionRecord;
  workloadUid: string;
  serial: string | null;
  splice: Splice;
}

export interface InboundOptions {
  network: PodNetwork;
  telemetry: NodeTelemetry;
  log: Logger;
  connectTimeoutMs: number;
}

export class Inbound {
  private readonly live = new Set<Live>();

  constructor(private readonly opts: InboundOptions) {}

  get openConnections(): number {
    return this.live.size;
  }

  /** A record for a connection about to be decided. */
  record(
    mesh: MeshSnapshot,
    source: Omit<Party, "workload">,
    dst: Destination,
    workload: MeshWorkload,
    security: ConnectionRecord["security"],
  ): ConnectionRecord {
    const d = decideInbound(mesh, source, dst, workload);
    return {
      id: this.opts.telemetry.newId(),
      direction: "inbound",
      source: { ...source, workload: mesh.workloadAt(source.ip) ?? null },
      destination: { ip: dst.ip, port: dst.port, workload, identity: workload.spiffeId },
      service: null,
      security,
      decision: d.decision,
      policy: d.policy,
      reason: d.reason,
      flags: d.decision === "ALLOW" ? "-" : "RBAC",
      startedAt: Date.now(),
    };
  }

  /**
   * Connect to the application and splice; `accepted` runs once the application answered (the
   * caller tells its client then), `failed` when it could not be reached.
   */
  async deliver(
    pod: LocalPod,
    rec: ConnectionRecord,
    client: Duplex,
    serial: string | null,
    hooks: { accepted(): void; failed(reason: string): void },
  ): Promise<void> {
    let app;
    try {
      app = await this.opts.network.dial(
        pod,
        { ip: rec.destination.ip, port: rec.destination.port },
        { timeoutMs: this.opts.connectTimeoutMs, source: rec.source.ip },
      );
    } catch (err) {
      const reason = `application unreachable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
      rec.flags = "UF";
      hooks.failed(reason);
      this.opts.telemetry.finished(rec, { sent: 0, received: 0, endReason: reason });
      return;
    }
    if (client.destroyed) {
      app.destroy();
      this.opts.telemetry.finished(rec, { sent: 0, received: 0, endReason: "client went away" });
      return;
    }
    hooks.accepted();
    const entry: Live = {
      rec,
      workloadUid: rec.destination.workload?.uid ?? "",
      serial,
      splice: splice(
        client,
        app,
        { a: "client", b: "application" },
        (end) => {
          this.live.delete(entry);
          this.opts.telemetry.finished(rec, { received: end.aToB, sent: end.bToA, endReason: end.reason });
        },
        // An HBONE stream → the application's socket: batch its frame pieces into a writev.
        { batchAToB: rec.security === "mutual_tls" },
      ),
    };
    this.live.add(entry);
  }

  /** Re-decide every open connection against a new view; close those now refused. */
  reevaluate(mesh: MeshSnapshot): number {
    let closed = 0;
    for (const c of [...this.live]) {
      const rec = c.rec;
      const identity = rec.source.identity;
      const revoked = identity !== null ? mesh.revocations.check(identity, c.serial ?? undefined) : undefined;
      let why: string | null = null;
      let cause: "policy" | "revocation" = "policy";
      let policy: string | null = null;
      if (revoked) {
        why = `peer ${identity} revoked: ${revoked.reason}`;
        cause = "revocation";
      } else {
        const workload = mesh.workloads.get(c.workloadUid);
        if (!workload) why = "destination workload removed from the mesh";
        else {
          const d = decideInbound(
            mesh,
            { identity, ip: rec.source.ip },
            { ip: rec.destination.ip, port: rec.destination.port },
            workload,
          );
          if (d.decision === "DENY") {
            why = `no longer allowed: ${d.reason}`;
            policy = d.policy;
          }
        }
      }
      if (why === null) continue;
      closed++;
      this.live.delete(c);
      this.opts.telemetry.closedByPolicy(cause);
      this.opts.log.warn(
        {
          id: rec.id,
          src: identity ?? rec.source.ip,
          dst: `${rec.destination.ip}:${rec.destination.port}`,
          policy,
          cause,
        },
        `closing open connection: ${why}`,
      );
      rec.policy = policy ?? rec.policy;
      c.splice.close(why);
    }
    return closed;
  }

  /** Open connections for the admin endpoint. */
  openRecords(): ConnectionRecord[] {
    return [...this.live].map((c) => c.rec);
  }

  /** Close everything (end of drain). */
  closeAll(reason: string): void {
    for (const c of [...this.live]) c.splice.close(reason);
  }
}
