// The Delta xDS server (envoy.service.discovery.v3.AggregatedDiscoveryService/
// DeltaAggregatedResources): one stream per data-plane client, wildcard subscriptions, per-response
// ACK/NACK by nonce, only changed resources sent, bursts of changes debounced.
import type * as grpc from "@grpc/grpc-js";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Logger } from "../../core/log.js";
import { decodeAny, REJECTED_RESOURCE_TYPE_URL, anyTypeUrl } from "../../api/xds-types.js";
import { StreamState, type ResourceView } from "./state.js";

function rejectedResources(
  details: { typeUrl?: string; type_url?: string; value: Uint8Array }[] | undefined,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of details ?? []) {
    if (anyTypeUrl(d) !== REJECTED_RESOURCE_TYPE_URL) continue;
    try {
      const r = decodeAny<{ name?: string; reason?: string }>(d);
      if (r.name) out.set(r.name, r.reason ?? "rejected");
    } catch {
      // A malformed detail from a client is ignored: the NACK then covers the whole response.
    }
  }
  return out;
}

export interface XdsClientInfo {
  /** Stable id for status: "<kind>/<name>". */
  id: string;
  kind: "node" | "waypoint";
  name: string;
}

interface DeltaRequest {
  typeUrl?: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: {
    code?: number;
    message?: string;
    details?: { typeUrl?: string; type_url?: string; value: Uint8Array }[];
  } | null;
}

export interface RejectedResource {
  client: string;
  typeUrl: string;
  name: string;
  version: string;
  reason: string;
}

export interface ClientStatus {
  id: string;
  connectedAt: string;
  /** Per type: resources the client has acknowledged, and whether that equals the current config. */
  types: { typeUrl: string; acked: number; current: number; inSync: boolean }[];
  inSync: boolean;
  nacks: number;
}

export interface XdsServerOptions {
  log: Logger;
  metrics: Registry;
  /** Who is calling (from the verified client certificate), or why it may not. */
  authenticate(call: grpc.ServerDuplexStream<unknown, unknown>): XdsClientInfo | { error: string };
  /** The resources this client should have now: an immutable snapshot (see ResourceView). */
  view(client: XdsClientInfo): ResourceView;
  debounceMs?: number;
  maxDelayMs?: number;
  /** Unacknowledged responses allowed per stream before pushes wait. */
  maxInFlight?: number;
}

interface Stream {
  client: XdsClientInfo;
  call: grpc.ServerDuplexStream<unknown, unknown>;
  state: StreamState;
  connectedAt: Date;
  nacks: number;
  dirty: boolean;
}

export class DeltaXdsServer {
  private readonly streams = new Set<Stream>();
  private readonly rejected = new Map<string, RejectedResource>();
  private timer: NodeJS.Timeout | undefined;
  private firstChangeAt: number | undefined;
  private readonly connected: Gauge;
  private readonly pushes: Counter<"type_url">;
  private readonly pushBytes: Counter<"type_url">;
  private readonly nackCount: Counter<"type_url">;
  private readonly convergence: Histogram;
  private readonly changeTimes = new Map<string, number>();

  constructor(private readonly opts: XdsServerOptions) {
    const registers = [opts.metrics];
    this.connected = new Gauge({
      name: "ambit_xds_connected_clients",
      help: "Data-plane clients with an open xDS stream",
      registers,
    });
    this.pushes = new Counter({
      name: "ambit_xds_pushes_total",
      help: "Delta xDS responses sent",
      labelNames: ["type_url"],
      registers,
    });
    this.pushBytes = new Counter({
      name: "ambit_xds_push_bytes_total",
      help: "Bytes of resources sent in Delta xDS responses",
      labelNames: ["type_url"],
      registers,
    });
    this.nackCount = new Counter({
      name: "ambit_xds_nacks_total",
      help: "Responses rejected by a client",
      labelNames: ["type_url"],
      registers,
    });
    this.convergence = new Histogram({
      name: "ambit_xds_convergence_seconds",
      help: "From a config change being accepted to a client acknowledging the push that carried it",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
  }

  /** The grpc-js handler for DeltaAggregatedResources. */
  readonly handle = (call: grpc.ServerDuplexStream<unknown, unknown>): void => {
    const who = this.opts.authenticate(call);
    if ("error" in who) {
      this.opts.log.warn({ peer: call.getPeer(), reason: who.error }, "xDS stream refused");
      call.emit("error", {
        code: 16 /* UNAUTHENTICATED */,
        details: `AMBIT_E_UNAUTHENTICATED: ${who.error}`,
      });
      return;
    }
    const stream: Stream = {
      client: who,
      call,
      state: new StreamState(),
      connectedAt: new Date(),
      nacks: 0,
      dirty: false,
    };
    this.streams.add(stream);
    this.connected.set(this.streams.size);
    this.opts.log.info({ client: who.id }, "xDS client connected");
    const close = (): void => {
      if (!this.streams.delete(stream)) return;
      for (const k of this.changeTimes.keys()) if (k.startsWith(`${who.id}|`)) this.changeTimes.delete(k);
      this.connected.set(this.streams.size);
      this.opts.log.info({ client: who.id }, "xDS client disconnected");
    };
    call.on("data", (req: DeltaRequest) => this.onRequest(stream, req));
    call.on("end", () => {
      close();
      call.end();
    });
    call.on("error", close);
    call.on("cancelled", close);
  };

  private onRequest(stream: Stream, req: DeltaRequest): void {
    const typeUrl = req.typeUrl ?? "";
    if (req.responseNonce) {
      const nacked = req.errorDetail && (req.errorDetail.code ?? 0) !== 0 ? req.errorDetail : undefined;
      const p = stream.state.pendingResponse(req.responseNonce);
      let rejectedNames = new Map<string, string>();
      if (p && nacked) {
        stream.nacks++;
        this.nackCount.inc({ type_url: p.typeUrl });
        const reason = nacked.message ?? "rejected";
        // Ambit clients name the resources they rejected; otherwise the whole response was.
        const named = rejectedResources(nacked.details);
        rejectedNames = named.size > 0 ? named : new Map([...p.sent.keys()].map((n) => [n, reason]));
        this.opts.log.warn(
          { client: stream.client.id, typeUrl: p.typeUrl, reason },
          "xDS resources rejected (NACK)",
        );
      }
      if (p) {
        stream.state.settle(p.nonce, new Set(rejectedNames.keys()));
        for (const [name, version] of p.sent) {
          const key = `${stream.client.id}|${p.typeUrl}|${name}`;
          const why = rejectedNames.get(name);
          if (why === undefined) this.rejected.delete(key);
          else
            this.rejected.set(key, {
              client: stream.client.id,
              typeUrl: p.typeUrl,
              name,
              version,
              reason: why,
            });
        }
        const changedAt = this.changeTimes.get(`${stream.client.id}|${p.nonce}`);
        if (changedAt !== undefined) this.convergence.observe((Date.now() - changedAt) / 1000);
      }
      this.changeTimes.delete(`${stream.client.id}|${req.responseNonce}`);
      if (stream.dirty && stream.state.inFlight() < (this.opts.maxInFlight ?? 16))
        this.pushStream(stream, undefined);
      if (!req.resourceNamesSubscribe?.length && !req.resourceNamesUnsubscribe?.length) return;
    }
    if (!typeUrl) return;
    if (req.resourceNamesUnsubscribe?.includes("*")) {
      stream.state.unsubscribe(typeUrl);
      return;
    }
    // Every Ambit type is wildcard: a client gets every resource of the types it subscribes to.
    // A reconnect announces what it holds: those versions count as acknowledged.
    stream.state.subscribe(typeUrl, req.initialResourceVersions ?? {});
    this.pushStream(stream, typeUrl);
  }

  /** Send each subscribed type's changes to one stream (or just `only`). */
  private pushStream(stream: Stream, only: string | undefined): void {
    const view = this.opts.view(stream.client);
    stream.dirty = false;
    for (const typeUrl of only ? [only] : stream.state.subscribedTypes()) {
      if (stream.state.inFlight() >= (this.opts.maxInFlight ?? 16)) {
        stream.dirty = true;
        return;
      }
      const d = stream.state.diff(typeUrl, view);
      if (!d) continue;
      const p = stream.state.sent(d, Date.now());
      let bytes = 0;
      for (const r of d.resources) bytes += r.resource.value.length;
      this.pushes.inc({ type_url: typeUrl });
      this.pushBytes.inc({ type_url: typeUrl }, bytes);
      if (this.firstChangeAt !== undefined)
        this.changeTimes.set(`${stream.client.id}|${p.nonce}`, this.firstChangeAt);
      stream.call.write({
        typeUrl,
        nonce: p.nonce,
        systemVersionInfo: "",
        // proto-loader names Any's first field type_url (see api/xds-types.ts).
        resources: d.resources.map((r) => ({
          name: r.name,
          version: r.version,
          resource: { type_url: r.resource.typeUrl, value: r.resource.value },
        })),
        removedResources: d.removed,
      });
    }
  }

  /** Config changed: push after the debounce delay (bounded by maxDelayMs from the first change). */
  changed(): void {
    const now = Date.now();
    this.firstChangeAt ??= now;
    if (this.timer) clearTimeout(this.timer);
    const debounce = this.opts.debounceMs ?? 100;
    const maxDelay = this.opts.maxDelayMs ?? 1000;
    const wait = Math.max(0, Math.min(debounce, this.firstChangeAt + maxDelay - now));
    this.timer = setTimeout(() => this.pushAll(), wait);
  }

  private pushAll(): void {
    this.timer = undefined;
    for (const s of this.streams) this.pushStream(s, undefined);
    this.firstChangeAt = undefined;
  }

  /** Connected clients and whether each has acknowledged exactly the current config. */
  status(): ClientStatus[] {
    return [...this.streams].map((s) => {
      const view = this.opts.view(s.client);
      const types = s.state.subscribedTypes().map((typeUrl) => {
        const { acked, inSync } = s.state.ackedSummary(typeUrl, view);
        return { typeUrl, acked, current: view.get(typeUrl)?.size ?? 0, inSync };
      });
      return {
        id: s.client.id,
        connectedAt: s.connectedAt.toISOString(),
        types,
        inSync: types.every((t) => t.inSync),
        nacks: s.nacks,
      };
    });
  }

  /** Clients that acknowledged a resource at its current version, and those that rejected it. */
  resourceStatus(
    typeUrl: string,
    name: string,
    version: string,
  ): { acked: string[]; rejected: { client: string; reason: string }[] } {
    const acked: string[] = [];
    for (const s of this.streams)
      if (s.state.ackedVersion(typeUrl, name) === version) acked.push(s.client.id);
    const rejected = [...this.rejected.values()]
      .filter((r) => r.typeUrl === typeUrl && r.name === name && r.version === version)
      .map((r) => ({ client: r.client, reason: r.reason }));
    return { acked, rejected };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.streams) s.call.end();
    this.streams.clear();
  }
}
