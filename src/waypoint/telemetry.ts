// The waypoint's telemetry: Istio's request metrics with reporter="waypoint" and Istio's labels
// (so existing dashboards work), Ambit's counters for refusals and L4 passthrough, and one JSON
// access-log line per request with both identities, the JWT principal, the route, the policy
// decision, the response flags and upstream timing.
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../core/log.js";
import type { MeshService, MeshWorkload } from "../node/proxy/mesh.js";
import { SeriesCounter, SeriesHistogram, type CounterSeries, type HistogramSeries } from "./series.js";

const LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_cluster",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "destination_cluster",
  "request_protocol",
  "response_code",
  "grpc_response_status",
  "response_flags",
  "connection_security_policy",
] as const;

type LabelName = (typeof LABELS)[number];
type RequestLabels = Record<LabelName, string>;

/** The four request metrics' series for one label set. */
interface RequestSeries {
  requests: CounterSeries;
  duration: HistogramSeries;
  requestBytes: HistogramSeries;
  responseBytes: HistogramSeries;
}

/** One request as metrics and the access log describe it. */
export interface RequestRecord {
  startedAt: number;
  method: string;
  authority: string;
  path: string;
  protocol: "http" | "grpc";
  httpVersion: string;
  source: { workload: MeshWorkload | null; principal: string | null; ip: string };
  /** The endpoint that answered (null when none was reached). */
  destination: { workload: MeshWorkload | null; ip: string | null };
  service: MeshService | null;
  requestPrincipal: string | null;
  route: string | null;
  decision: "ALLOW" | "DENY" | "-";
  policy: string | null;
  reason: string;
  status: number;
  grpcStatus: string | null;
  /** Envoy response flags ("-" when none): UH, UF, UO, URX, UT, UC, NR, DI, FI, UAEX, RBAC... */
  flags: string[];
  requestBytes: number;
  responseBytes: number;
  attempts: number;
  /** Time from sending upstream to its response headers, ms. */
  upstreamMs: number | null;
  traceId: string;
  requestId: string;
}

const BYTE_BUCKETS = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
const MS_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000];

/** Distinct label sets kept (a bound: the cache is cleared when it is reached). */
const MAX_LABEL_SETS = 4096;

function principalOf(id: string | null): string {
  return id ?? "unknown";
}

export class WaypointTelemetry {
  private readonly requests: SeriesCounter<LabelName>;
  private readonly duration: SeriesHistogram<LabelName>;
  private readonly requestBytes: SeriesHistogram<LabelName>;
  private readonly responseBytes: SeriesHistogram<LabelName>;
  private readonly refusals: Counter<string>;
  readonly tcpConnections: Counter<string>;

  constructor(
    registry: Registry,
    private readonly access: Logger,
  ) {
    const labelNames = [...LABELS];
    this.requests = new SeriesCounter({
      name: "istio_requests_total",
      help: "Requests handled by the waypoint",
      labelNames,
      registers: [registry],
    });
    this.duration = new SeriesHistogram({
      name: "istio_request_duration_milliseconds",
      help: "Request duration, ms",
      labelNames,
      buckets: MS_BUCKETS,
      registers: [registry],
    });
    this.requestBytes = new SeriesHistogram({
      name: "istio_request_bytes",
      help: "Request sizes (headers and body), bytes",
      labelNames,
      buckets: BYTE_BUCKETS,
      registers: [registry],
    });
    this.responseBytes = new SeriesHistogram({
      name: "istio_response_bytes",
      help: "Response sizes (headers and body), bytes",
      labelNames,
      buckets: BYTE_BUCKETS,
      registers: [registry],
    });
    this.refusals = new Counter({
      name: "ambit_waypoint_refused_total",
      help: "HBONE connections, streams and requests the waypoint refused, by reason",
      labelNames: ["reason"],
      registers: [registry],
    });
    this.tcpConnections = new Counter({
      name: "ambit_waypoint_tcp_connections_total",
      help: "Connections passed through at L4 (TCP services), by result",
      labelNames: ["result"],
      registers: [registry],
    });
  }

  refused(reason: string, detail: Record<string, unknown>): void {
    this.refusals.inc({ reason });
    this.access.info({ event: "refused", reason, ...detail }, "refused");
  }

  /**
   * Series by what their labels are made of (workloads, Service, protocol, codes, flags): label
   * sets are built once, not per request. Workloads and Services are keyed by object identity (a
   * push brings new objects, so this cache is cleared when it outgrows its bound; the metrics keep
   * their series).
   */
  private readonly labelSets = new Map<string, RequestSeries>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  private idOf(o: object | null): number {
    if (o === null) return 0;
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  private seriesOf(r: RequestRecord, flags: string): RequestSeries {
    const key = `${this.idOf(r.source.workload)} ${this.idOf(r.destination.workload)} ${this.idOf(r.service)} ${r.protocol} ${r.status} ${r.grpcStatus ?? ""} ${flags} ${r.source.principal ?? ""}`;
    let series = this.labelSets.get(key);
    if (series === undefined) {
      if (this.labelSets.size >= MAX_LABEL_SETS) this.labelSets.clear();
      const labels = this.buildLabels(r, flags);
      // The metrics' own series are keyed by the label values (they outlive this cache).
      const id = JSON.stringify(LABELS.map((l) => labels[l]));
      series = {
        requests: this.requests.series(id, labels),
        duration: this.duration.series(id, labels),
        requestBytes: this.requestBytes.series(id, labels),
        responseBytes: this.responseBytes.series(id, labels),
      };
      this.labelSets.set(key, series);
    }
    return series;
  }

  private buildLabels(r: RequestRecord, flags: string): RequestLabels {
    const s = r.source.workload;
    const d = r.destination.workload;
    const svc = r.service;
    return {
      reporter: "waypoint",
      source_workload: s?.workloadName ?? "unknown",
      source_workload_namespace: s?.namespace ?? "unknown",
      source_principal: principalOf(r.source.principal),
      source_app: s?.canonicalName ?? "unknown",
      source_version: s?.canonicalRevision ?? "unknown",
      source_cluster: s?.clusterId || "unknown",
      destination_workload: d?.workloadName ?? "unknown",
      destination_workload_namespace: d?.namespace ?? "unknown",
      destination_principal: d ? d.spiffeId : "unknown",
      destination_app: d?.canonicalName ?? "unknown",
      destination_version: d?.canonicalRevision ?? "unknown",
      destination_service: svc?.hostname ?? "unknown",
      destination_service_name: svc?.name ?? "unknown",
      destination_service_namespace: svc?.namespace ?? "unknown",
      destination_cluster: d?.clusterId || "unknown",
      request_protocol: r.protocol,
      response_code: String(r.status),
      grpc_response_status: r.grpcStatus ?? "",
      response_flags: flags,
      connection_security_policy: "mutual_tls",
    };
  }

  finished(r: RequestRecord): void {
    const s = r.source.workload;
    const d = r.destination.workload;
    const svc = r.service;
    const flags = r.flags.length > 0 ? r.flags.join(",") : "-";
    const series = this.seriesOf(r, flags);
    const ms = performance.now() - r.startedAt;
    this.requests.add(series.requests);
    this.duration.record(series.duration, ms);
    this.requestBytes.record(series.requestBytes, r.requestBytes);
    this.responseBytes.record(series.responseBytes, r.responseBytes);
    if (!this.access.isLevelEnabled("info")) return;
    this.access.info(
      {
        event: "request",
        method: r.method,
        authority: r.authority,
        path: r.path,
        protocol: r.httpVersion,
        status: r.status,
        grpc_status: r.grpcStatus,
        flags,
        source: { principal: r.source.principal, ip: r.source.ip, workload: s?.name ?? null },
        destination: {
          principal: d?.spiffeId ?? null,
          ip: r.destination.ip,
          workload: d?.name ?? null,
          service: svc?.hostname ?? null,
        },
        request_principal: r.requestPrincipal,
        route: r.route,
        decision: r.decision,
        policy: r.policy,
        reason: r.reason,
        attempts: r.attempts,
        upstream_ms: r.upstreamMs === null ? null : Math.round(r.upstreamMs * 1000) / 1000,
        duration_ms: Math.round(ms * 1000) / 1000,
        bytes_received: r.requestBytes,
        bytes_sent: r.responseBytes,
        trace_id: r.traceId,
        request_id: r.requestId,
      },
      "request",
    );
  }
}
