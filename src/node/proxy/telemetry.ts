// The node proxy's telemetry: Istio's TCP metrics with Istio's labels (so existing dashboards
// work), Ambit's own counters for refusals and pools, and one JSON access-log line per connection
// with both identities, addresses, bytes each way, duration, the decision and why it ended.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../../core/log.js";
import type { MeshService, MeshWorkload } from "./mesh.js";

const ISTIO_TCP_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_canonical_service",
  "source_canonical_revision",
  "source_cluster",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "request_protocol",
  "response_flags",
  "connection_security_policy",
] as const;

type IstioLabels = Record<(typeof ISTIO_TCP_LABELS)[number], string>;

/** Why an inbound connection or stream was refused before any application byte moved. */
export type RefusalReason =
  | "tls_handshake"
  | "alpn"
  | "no_client_certificate"
  | "untrusted_certificate"
  | "trust_domain"
  | "revoked"
  | "bad_method"
  | "bad_authority"
  | "not_local"
  | "http2_protocol"
  | "denied"
  | "upstream_failed"
  | "original_destination";

export interface Party {
  ip: string;
  port: number;
  workload: MeshWorkload | null;
  /** SPIFFE ID when authenticated by mTLS, else null. */
  identity: string | null;
}

/** One proxied connection, as metrics and the access log describe it. */
export interface ConnectionRecord {
  id: number;
  direction: "inbound" | "outbound";
  /** What the client asked for (inbound: the CONNECT authority or the original destination). */
  source: Party;
  destination: Party;
  service: MeshService | null;
  /** mutual_tls for HBONE, none for plaintext. */
  security: "mutual_tls" | "none";
  decision: "ALLOW" | "DENY";
  policy: string | null;
  reason: string;
  /** Envoy-style flag: "-" fine, UF upstream connect failure, UH no healthy upstream, RBAC denied. */
  flags: string;
  startedAt: number;
}

function principalOf(spiffe: string | null): string {
  return spiffe ?? "unknown";
}

function labels(rec: ConnectionRecord): IstioLabels {
  const s = rec.source.workload;
  const d = rec.destination.workload;
  const svc = rec.service;
  return {
    reporter: rec.direction === "inbound" ? "destination" : "source",
    source_workload: s?.workloadName ?? "unknown",
    source_workload_namespace: s?.namespace ?? "unknown",
    source_principal: principalOf(rec.source.identity),
    source_app: s?.canonicalName ?? "unknown",
    source_version: s?.canonicalRevision ?? "unknown",
    source_canonical_service: s?.canonicalName ?? "unknown",
    source_canonical_revision: s?.canonicalRevision ?? "unknown",
    source_cluster: s?.clusterId || "unknown",
    destination_workload: d?.workloadName ?? "unknown",
    destination_workload_namespace: d?.namespace ?? "unknown",
    destination_principal: principalOf(rec.destination.identity),
    destination_app: d?.canonicalName ?? "unknown",
    destination_version: d?.canonicalRevision ?? "unknown",
    destination_service: svc?.hostname ?? "unknown",
    destination_service_name: svc?.name ?? "unknown",
    destination_service_namespace: svc?.namespace ?? "unknown",
    destination_canonical_service: d?.canonicalName ?? "unknown",
    destination_canonical_revision: d?.canonicalRevision ?? "unknown",
    destination_cluster: d?.clusterId || "unknown",
    request_protocol: "tcp",
    response_flags: rec.flags,
    connection_security_policy: rec.security,
  };
}

export interface ConnectionEnd {
  /** Bytes from the client towards the server. */
  received: number;
  /** Bytes from the server back to the client. */
  sent: number;
  /** "" for a clean close, else why it ended. */
  endReason: string;
}

/** A record's labels, computed when it opened and reused when it ends unless its flags changed. */
const labelCache = new WeakMap<ConnectionRecord, { flags: string; labels: IstioLabels }>();

function labelsOf(rec: ConnectionRecord): IstioLabels {
  const c = labelCache.get(rec);
  if (c && c.flags === rec.flags) return c.labels;
  const l = labels(rec);
  labelCache.set(rec, { flags: rec.flags, labels: l });
  return l;
}

export class NodeTelemetry {
  private readonly opened: Counter<string>;
  private readonly closed: Counter<string>;
  private readonly sentBytes: Counter<string>;
  private readonly receivedBytes: Counter<string>;
  private readonly refusals: Counter<string>;
  private readonly policyClosed: Counter<string>;
  readonly active: Gauge<string>;
  private nextId = 1;

  constructor(
    registry: Registry,
    private readonly access: Logger,
  ) {
    const labelNames = [...ISTIO_TCP_LABELS];
    this.opened = new Counter({
      name: "istio_tcp_connections_opened_total",
      help: "TCP connections opened",
      labelNames,
      registers: [registry],
    });
    this.closed = new Counter({
      name: "istio_tcp_connections_closed_total",
      help: "TCP connections closed",
      labelNames,
      registers: [registry],
    });
    this.sentBytes = new Counter({
      name: "istio_tcp_sent_bytes_total",
      help: "Bytes sent back to the client (response direction) on TCP connections",
      labelNames,
      registers: [registry],
    });
    this.receivedBytes = new Counter({
      name: "istio_tcp_received_bytes_total",
      help: "Bytes received from the client (request direction) on TCP connections",
      labelNames,
      registers: [registry],
    });
    this.refusals = new Counter({
      name: "ambit_node_refused_total",
      help: "Inbound connections and HBONE streams refused before any application byte moved, by listener and reason",
      labelNames: ["listener", "reason"],
      registers: [registry],
    });
    this.policyClosed = new Counter({
      name: "ambit_node_connections_closed_by_policy_total",
      help: "Open connections closed because a policy change or a revocation no longer admits them",
      labelNames: ["cause"],
      registers: [registry],
    });
    this.active = new Gauge({
      name: "ambit_node_connections_active",
      help: "Connections being decided or proxied now",
      labelNames: ["direction"],
      registers: [registry],
    });
  }

  newId(): number {
    return this.nextId++;
  }

  refused(listener: "hbone" | "plaintext" | "outbound", reason: RefusalReason, detail: object): void {
    this.refusals.inc({ listener, reason });
    this.access.info({ event: "refused", listener, reason, ...detail }, "connection refused");
  }

  /** A connection was decided (allowed or denied); counts it as opened. */
  connectionOpened(rec: ConnectionRecord): void {
    this.opened.inc(labelsOf(rec));
    this.active.inc({ direction: rec.direction });
  }

  closedByPolicy(cause: "policy" | "revocation"): void {
    this.policyClosed.inc({ cause });
  }

  /** The connection ended: counters and one access-log line. */
  finished(rec: ConnectionRecord, end: ConnectionEnd): void {
    const l = labelsOf(rec);
    this.closed.inc(l);
    if (end.sent > 0) this.sentBytes.inc(l, end.sent);
    if (end.received > 0) this.receivedBytes.inc(l, end.received);
    this.active.dec({ direction: rec.direction });
    // Build the access-log line only when it is written (AMBIT_LOG_LEVEL=warn turns it off).
    if (!this.access.isLevelEnabled("info")) return;
    this.access.info(
      {
        event: "connection",
        id: rec.id,
        direction: rec.direction,
        src: {
          addr: `${rec.source.ip}:${rec.source.port}`,
          workload: rec.source.workload?.name ?? null,
          namespace: rec.source.workload?.namespace ?? null,
          identity: rec.source.identity,
        },
        dst: {
          addr: `${rec.destination.ip}:${rec.destination.port}`,
          workload: rec.destination.workload?.name ?? null,
          namespace: rec.destination.workload?.namespace ?? null,
          identity: rec.destination.identity,
          service: rec.service?.hostname ?? null,
        },
        security: rec.security,
        decision: rec.decision,
        policy: rec.policy,
        reason: rec.reason,
        flags: rec.flags,
        bytes_sent: end.sent,
        bytes_received: end.received,
        duration_ms: Date.now() - rec.startedAt,
        end: end.endReason === "" ? "closed" : end.endReason,
      },
      "connection",
    );
  }
}
