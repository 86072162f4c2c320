// The waypoint's HTTP side: tunnels for HTTP services are served by one HTTP/1.1 server and one
// HTTP/2 (h2c) server (chosen by the client's first bytes), and every request runs the chain —
// route selection, then request filters in order (JWT → CUSTOM ext_authz → ALLOW/DENY/AUDIT →
// fault), the router last, response changes in reverse — and ends in one metric sample and one
// access-log line. Malformed requests get 400, oversized headers 431, and nothing a client sends
// can throw out of here.
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../core/log.js";
import { authorize, type AuthzRequest, type Decision } from "../model/authz/index.js";
import type { MeshService } from "../node/proxy/mesh.js";
import type { Destination } from "../node/proxy/route.js";
import { respondHeadersOnly, type Downstream, type DownstreamRequest } from "./downstream.js";
import { CONTINUE, type FilterOutcome, type WaypointRequest } from "./filters/types.js";
import type { HbonePeer } from "./hbone-in.js";
import { connectionTokens, HOP_BY_HOP, nextTraceparent, xfccValue } from "./headers.js";
import { sendLocalReply, type LocalReply } from "./local-reply.js";
import type { PortProtocol } from "./protocol.js";
import type { FaultPlan, Planner } from "./route-stage.js";
import type { Router, RouterResult } from "./router.js";
import type { WaypointSnapshot } from "./snapshot.js";
import type { RequestRecord, WaypointTelemetry } from "./telemetry.js";
import type { TunnelSocket } from "./tunnel-socket.js";

/** What a tunnel carries: who sent it (HBONE peer), and which Service port it was addressed to. */
export interface ConnContext {
  peer: HbonePeer;
  dst: Destination;
  service: MeshService;
  protocol: PortProtocol;
}

/** Headers an external authorizer adds when it allows a request. */
export interface AuthzHeaders {
  /** Set on the request to the application. */
  upstreamHeaders?: Record<string, string>;
  /** Set on the application's response to the client. */
  downstreamHeaders?: Record<string, string>;
}

/** Request filters beyond the built-in authorization; each compiled from config once per push. */
export interface L7Filters {
  /** RequestAuthentication: validates a presented JWT, sets req.jwt; 401 on a bad token. */
  jwt?(req: WaypointRequest, query: URLSearchParams): Promise<FilterOutcome>;
  /** CUSTOM policies: asks the external authorizer; may add headers for the upstream. */
  extAuthz?(req: WaypointRequest, provider: string): Promise<FilterOutcome & AuthzHeaders>;
  /** The provider a CUSTOM policy names ("namespace/name" → provider name). */
  customProvider?(policy: string): string | undefined;
}

export interface L7Options {
  snapshot: () => WaypointSnapshot;
  router: Router;
  planner: () => Planner;
  filters: () => L7Filters;
  telemetry: WaypointTelemetry;
  log: Logger;
  /** The waypoint's own SPIFFE ID (XFCC By=). */
  selfId: () => string;
  /** Send x-forwarded-client-cert to the application (default true). */
  xfcc: boolean;
  /** Largest request head accepted (Envoy's default: 60 KiB); bigger → 431. */
  maxHeaderBytes?: number;
  /** Upgrade types passed through (Istio enables "websocket" only); others get 403. */
  upgradeTypes?: readonly string[];
  /** An upgraded connection idle this long either way is closed (Envoy's stream idle timeout: 5 min). */
  upgradeIdleTimeoutMs?: number;
  random?: () => number;
}

/** How a request reached the pipeline besides its headers. */
interface Arrival {
  /** The client sent Expect: 100-continue and waits for 100 (or a final answer) before its body. */
  expectContinue?: boolean;
  /** An HTTP/1.1 Upgrade: the connection is already detached from the HTTP parser. */
  upgrade?: { socket: Duplex; head: Buffer; value: string };
}

const CTX = Symbol("ambit.waypoint.conn");
type Tagged = Duplex & { [CTX]?: ConnContext };
/**
 * HTTP/2 receive windows (per stream and per connection; Envoy's connection default is 1 MiB):
 * a 64 KiB window caps a stream at one window per round trip. Node's maxSessionMemory still
 * bounds what one session may hold.
 */
const H2_WINDOW = 1024 * 1024;
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function spiffe(principal: string): string {
  return principal.startsWith("spiffe://") ? principal : `spiffe://${principal}`;
}

function bare(principal: string): string {
  return principal.startsWith("spiffe://") ? principal.slice("spiffe://".length) : principal;
}

function namespaceOf(principal: string): string | null {
  return /\/ns\/([^/]+)\/sa\//.exec(principal)?.[1] ?? null;
}

const NONE: readonly string[] = [];

function joined(v: string[]): string {
  return v.join(",");
}

export class WaypointL7 {
  private readonly h1: http.Server;
  /** Takes over connections whose request asked for an h2c upgrade: it ignores Upgrade headers. */
  private readonly h1NoUpgrade: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly sessionCtx = new WeakMap<http2.Http2Session, ConnContext>();
  private nextSession: ConnContext | undefined;
  private readonly random: () => number;

  constructor(private readonly opts: L7Options) {
    this.random = opts.random ?? Math.random;
    this.upgradeTypes = new Set((opts.upgradeTypes ?? ["websocket"]).map((t) => t.toLowerCase()));
    this.h1 = this.h1Server(true);
    this.h1NoUpgrade = this.h1Server(false);
    this.h2 = http2.createServer({
      maxSessionMemory: 32,
      maxHeaderListPairs: 256,
      settings: {
        maxHeaderListSize: opts.maxHeaderBytes ?? 60 * 1024,
        enablePush: false,
        maxConcurrentStreams: 1000,
        initialWindowSize: H2_WINDOW,
      },
    });
    this.h2.on("session", (s) => {
      if (this.nextSession) this.sessionCtx.set(s, this.nextSession);
      s.on("error", () => undefined);
      // The connection window too (nghttp2's default is 64 KiB whatever the streams get).
      try {
        s.setLocalWindowSize(H2_WINDOW);
      } catch {
        // a session already closing
      }
    });
    const onH2 = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, arrival: Arrival): void => {
      const ctx = this.sessionCtx.get(req.stream.session as http2.Http2Session);
      if (ctx) void this.handle(req, res, ctx, "HTTP/2", arrival);
      else res.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    };
    this.h2.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) =>
      onH2(req, res, {}),
    );
    this.h2.on("checkContinue", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) =>
      onH2(req, res, { expectContinue: true }),
    );
  }

  private readonly upgradeTypes: ReadonlySet<string>;

  /** An HTTP/1.1 server for tunnels; `upgrades`: whether Upgrade requests get the raw socket. */
  private h1Server(upgrades: boolean): http.Server {
    const maxHeaderSize = this.opts.maxHeaderBytes ?? 60 * 1024;
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse, arrival: Arrival): void => {
      const ctx = (req.socket as Tagged)[CTX];
      if (ctx) void this.handle(req, res, ctx, "HTTP/1.1", arrival);
      else res.destroy();
    };
    const srv = http.createServer({ maxHeaderSize, requestTimeout: 0, headersTimeout: 60_000 }, (req, res) =>
      onRequest(req, res, {}),
    );
    srv.keepAliveTimeout = 300_000;
    // Listening for it stops Node from answering 100 Continue before the filters have decided.
    srv.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) =>
      onRequest(req, res, { expectContinue: true }),
    );
    srv.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => this.clientError(err, socket));
    if (upgrades) {
      srv.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
        this.upgrade(req, socket, head),
      );
    }
    return srv;
  }

  /** Serve one tunnel: HTTP/2 if it starts with the connection preface, else HTTP/1.1. */
  serve(socket: TunnelSocket, ctx: ConnContext): void {
    (socket as Tagged)[CTX] = ctx;
    socket.on("error", () => undefined);
    const sniff = (): void => {
      const first = socket.read() as Buffer | null;
      if (first === null) return void socket.once("readable", sniff);
      socket.unshift(first);
      const h2 =
        ctx.protocol !== "http" ||
        first.subarray(0, H2_PREFACE.length).equals(H2_PREFACE.subarray(0, first.length));
      if (h2) {
        this.nextSession = ctx;
        try {
          this.h2.emit("connection", socket);
        } finally {
          this.nextSession = undefined;
        }
      } else this.h1.emit("connection", socket);
    };
    socket.once("readable", sniff);
  }

  private clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const ctx = (socket as Tagged)[CTX];
    const tooBig = err.code === "HPE_HEADER_OVERFLOW";
    const status = tooBig ? 431 : 400;
    this.opts.telemetry.refused(tooBig ? "headers_too_large" : "bad_request", {
      peer: ctx?.peer.identity,
      service: ctx?.service.hostname,
      detail: err.code ?? err.message,
    });
    if (socket.writable && !(socket as Duplex & { _httpMessage?: unknown })._httpMessage) {
      const text = tooBig ? "Request Header Fields Too Large" : "Bad Request";
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    } else socket.destroy();
  }

  private headerMap(req: DownstreamRequest): Map<string, string[]> {
    const map = new Map<string, string[]>();
    const connection = req.headers.connection;
    const listed = connection === undefined ? NONE : connectionTokens(connection);
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = (raw[i] ?? "").toLowerCase();
      if (k.startsWith(":") || HOP_BY_HOP.has(k) || listed.includes(k)) continue;
      const v = raw[i + 1] ?? "";
      const list = map.get(k);
      if (list) list.push(v);
      else map.set(k, [v]);
    }
    // gRPC needs "te: trailers" end to end.
    const te = req.headers.te;
    if (typeof te === "string" && te.toLowerCase().includes("trailers")) map.set("te", ["trailers"]);
    return map;
  }

  private async handle(
    req: DownstreamRequest,
    res: Downstream,
    ctx: ConnContext,
    version: "HTTP/1.1" | "HTTP/2",
    arrival: Arrival,
  ): Promise<void> {
    try {
      await this.pipeline(req, res, ctx, version, arrival);
    } catch (err) {
      // A bug, never the client's doing: answer 500 rather than leave the request hanging.
      this.opts.log.error({ err }, "waypoint request pipeline failed");
      if (!res.headersSent && !res.destroyed)
        sendLocalReply(res, { status: 500, body: "internal error" }, false);
      else res.destroy();
      arrival.upgrade?.socket.destroy();
    }
  }

  private async pipeline(
    req: DownstreamRequest,
    res: Downstream,
    ctx: ConnContext,
    version: "HTTP/1.1" | "HTTP/2",
    arrival: Arrival,
  ): Promise<void> {
    const snap = this.opts.snapshot();
    const headers = this.headerMap(req);
    // Like Envoy (proxy_100_continue off): the waypoint answers the expectation itself, once the
    // filters let the request through, and does not pass it on.
    if (arrival.expectContinue) headers.delete("expect");
    let continued = false;
    const authority =
      version === "HTTP/2"
        ? ((req as http2.Http2ServerRequest).authority ?? req.headers.host ?? "")
        : (req.headers.host ?? "");
    headers.delete("host");
    // The caller's identity comes from its certificate, never from a header it sent.
    headers.delete("x-forwarded-client-cert");
    const path = req.url ?? "/";
    const contentType = headers.get("content-type")?.[0] ?? "";
    const grpc = contentType.startsWith("application/grpc");
    const principal = bare(ctx.peer.identity);
    const wreq: WaypointRequest = {
      method: req.method ?? "GET",
      path,
      authority,
      headers,
      protocol: version,
      grpc,
      source: { principal, ip: ctx.peer.ip, namespace: namespaceOf(principal) },
      destination: {
        service: { name: ctx.service.name, namespace: ctx.service.namespace, host: ctx.service.hostname },
        port: ctx.dst.port,
      },
      gateway: snap.gateway,
      jwt: null,
    };
    const requestId = headers.get("x-request-id")?.[0] ?? randomUUID();
    headers.set("x-request-id", [requestId]);
    const trace = nextTraceparent(headers.get("traceparent")?.[0]);
    headers.set("traceparent", [trace.traceparent]);
    const record: RequestRecord = {
      startedAt: performance.now(),
      method: wreq.method,
      authority,
      path,
      protocol: grpc ? "grpc" : "http",
      httpVersion: version,
      source: {
        workload: snap.mesh.workloadAt(ctx.peer.ip) ?? null,
        principal: spiffe(principal),
        ip: ctx.peer.ip,
      },
      destination: { workload: null, ip: null },
      service: ctx.service,
      requestPrincipal: null,
      route: null,
      decision: "-",
      policy: null,
      reason: "",
      status: 0,
      grpcStatus: null,
      flags: [],
      requestBytes: 0,
      responseBytes: 0,
      attempts: 0,
      upstreamMs: null,
      traceId: trace.traceId,
      requestId,
    };
    // A request that cannot have a body (HTTP/1.1 without Content-Length or Transfer-Encoding,
    // HTTP/2 ended with its headers) has no bytes to count: no listener, no pause/resume cycle.
    const bodyless =
      arrival.upgrade === undefined &&
      (version === "HTTP/2"
        ? (req as http2.Http2ServerRequest).stream.endAfterHeaders
        : req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined);
    if (!bodyless) {
      req.on("data", (c: Buffer) => (record.requestBytes += c.length));
      // Counting must not start the flow: the body waits (paused, buffered by the stream up to its
      // highWaterMark, then backpressure) until the router sends it upstream, however long the
      // filters take (JWKS fetch, ext_authz). Flowing here would drop what arrives meanwhile.
      req.pause();
    }
    const finish = (reply: LocalReply | null, result?: RouterResult): void => {
      if (reply && arrival.expectContinue && !continued && version === "HTTP/1.1") {
        // The client held its body back; it will not come, so the connection cannot be reused.
        (res as http.ServerResponse).shouldKeepAlive = false;
      }
      if (reply) {
        const sent = sendLocalReply(res, reply, grpc);
        record.status = sent.status;
        record.grpcStatus = sent.grpcStatus;
        record.responseBytes += sent.bytes;
      }
      if (result) {
        if (!reply) {
          record.status = result.status;
          record.grpcStatus = result.grpcStatus;
        }
        record.flags.push(...result.flags);
        record.attempts = result.attempts;
        record.upstreamMs = result.upstreamMs;
        record.responseBytes += result.responseBytes;
        if (result.requestBytes !== undefined) record.requestBytes += result.requestBytes;
        if (result.endpoint) {
          record.destination = { workload: result.endpoint.workload, ip: result.endpoint.ip };
        }
        if (result.detail && !record.reason) record.reason = result.detail;
      }
      // Drain whatever body the client still sends so the connection stays usable.
      if (!req.readableEnded) req.resume();
      this.opts.telemetry.finished(record);
    };

    // Envoy refuses upgrade types its connection manager was not configured for, before any filter.
    const upgrade = arrival.upgrade;
    if (upgrade) {
      const types = connectionTokens(upgrade.value);
      const refused = types.find((t) => !this.upgradeTypes.has(t));
      if (types.length === 0 || refused !== undefined) {
        record.reason = `upgrade_failed: "${refused ?? upgrade.value}" upgrades are not enabled`;
        return finish({ status: 403, body: "" });
      }
    }

    // Route selection first: filters (fault) act on the chosen route.
    const planned = this.opts.planner()(snap, wreq, {
      service: ctx.service,
      port: ctx.dst.port,
      protocol: ctx.protocol,
    });
    record.route = planned.kind === "forward" ? planned.plan.route : planned.route;
    const filters = this.opts.filters();

    // 1. RequestAuthentication
    if (filters.jwt) {
      const q = new URLSearchParams(path.includes("?") ? path.slice(path.indexOf("?") + 1) : "");
      const out = await filters.jwt(wreq, q);
      if (out.action === "respond") {
        record.reason = out.reason;
        return finish({
          status: out.status,
          body: out.body ?? "Jwt verification fails",
          ...(out.headers ? { headers: out.headers } : {}),
        });
      }
      if (wreq.jwt) record.requestPrincipal = `${wreq.jwt.iss}/${wreq.jwt.sub}`;
    }

    // 2. AuthorizationPolicy: CUSTOM first (Istio's order), then DENY, then ALLOW; AUDIT logged.
    const decision = authorize(snap.policies, this.authzRequest(wreq, ctx), "L7");
    const upstreamAdds: Record<string, string> = {};
    const downstreamAdds: Record<string, string> = {};
    let customAllowed = "";
    if (decision.custom.length > 0) {
      // An external authorizer may ask for the body, which the client holds back until 100.
      if (arrival.expectContinue && !continued) {
        res.writeContinue();
        continued = true;
      }
      const out = await this.custom(decision, wreq, filters);
      if (out.action === "respond") {
        record.decision = "DENY";
        record.policy = out.policy;
        record.reason = out.reason;
        record.flags.push("UAEX");
        return finish({
          status: out.status,
          body: out.body ?? "",
          ...(out.headers ? { headers: out.headers } : {}),
        });
      }
      Object.assign(upstreamAdds, out.upstreamHeaders);
      Object.assign(downstreamAdds, out.downstreamHeaders);
      customAllowed = `; CUSTOM allowed by ${decision.custom.join(", ")}`;
    }
    record.decision = decision.decision;
    record.policy = decision.policy;
    record.reason =
      (decision.audit.length > 0
        ? `${decision.reason}; audit: ${decision.audit.join(", ")}`
        : decision.reason) + customAllowed;
    if (decision.decision === "DENY") return finish({ status: 403, body: "RBAC: access denied" });
    for (const [k, v] of Object.entries(upstreamAdds)) headers.set(k.toLowerCase(), [v]);

    if (planned.kind === "reply") {
      if (planned.flag) record.flags.push(planned.flag);
      return finish(planned.reply);
    }

    // 3. Fault injection (the route's).
    if (planned.fault) {
      const f = await this.fault(planned.fault, grpc);
      if (f.delayed) record.flags.push("DI");
      if (f.abort) {
        record.flags.push("FI");
        if (f.abort.grpcStatus !== undefined) {
          record.status = 200;
          record.grpcStatus = String(f.abort.grpcStatus);
          if (!res.headersSent) {
            respondHeadersOnly(res, 200, {
              "content-type": "application/grpc",
              "grpc-status": String(f.abort.grpcStatus),
              "grpc-message": "fault filter abort",
            });
          }
          return finish(null);
        }
        return finish({ status: f.abort.httpStatus ?? 503, body: "fault filter abort" });
      }
    }

    // 4. Identity for the application, then the router.
    if (this.opts.xfcc) {
      headers.set("x-forwarded-client-cert", [
        xfccValue(this.opts.selfId(), spiffe(principal), ctx.peer.certDer),
      ]);
    }
    headers.set("x-forwarded-proto", ["http"]);
    let plan = planned.plan;
    const extraResponse = Object.entries(downstreamAdds).map(([name, value]) => ({
      name: name.toLowerCase(),
      value,
    }));
    if (extraResponse.length > 0) {
      const r = plan.responseHeaders;
      plan = {
        ...plan,
        responseHeaders: {
          remove: r?.remove ?? [],
          set: [...(r?.set ?? []), ...extraResponse],
          add: r?.add ?? [],
        },
      };
    }
    if (arrival.expectContinue && !continued) {
      res.writeContinue();
      continued = true;
    }
    if (upgrade) {
      const result = await this.opts.router.upgrade(
        plan,
        { method: wreq.method, path, authority, headers, upgrade: upgrade.value },
        { socket: upgrade.socket, head: upgrade.head, res: res as http.ServerResponse },
        { sourceIp: ctx.peer.ip, idleMs: this.opts.upgradeIdleTimeoutMs ?? 300_000 },
      );
      return finish(result.reply ?? null, result);
    }
    const hasBody =
      version === "HTTP/2"
        ? !(req as http2.Http2ServerRequest).stream.endAfterHeaders
        : headers.has("content-length")
          ? headers.get("content-length")?.[0] !== "0"
          : (req.headers["transfer-encoding"] ?? "") !== "";
    // Istio speaks HTTP/1.1 to "http" ports whatever the client spoke (no h2UpgradePolicy), and
    // HTTP/2 to http2/grpc ports; a gRPC call needs HTTP/2 for its trailers either way.
    const h2Upstream = plan.backend.protocol === "http2" || plan.backend.protocol === "grpc" || grpc;
    const result = await this.opts.router.forward(plan, req, res, headers, {
      sourceIp: ctx.peer.ip,
      hasBody,
      h2Upstream,
    });
    finish(result.reply ?? null, result);
  }

  private authzRequest(r: WaypointRequest, ctx: ConnContext): AuthzRequest {
    const flat: Record<string, string> = {};
    for (const [k, v] of r.headers) flat[k] = joined(v);
    flat["host"] = r.authority;
    return {
      destination: {
        namespace: ctx.service.namespace,
        workloadLabels: {},
        ip: ctx.dst.ip,
        port: ctx.dst.port,
        serviceAccount: "",
        service: { name: ctx.service.name, namespace: ctx.service.namespace },
      },
      source: { principal: r.source.principal, namespace: r.source.namespace, ip: r.source.ip },
      http: { method: r.method, path: r.path, host: r.authority, headers: flat, jwt: r.jwt },
      waypoint: r.gateway,
    };
  }

  private async custom(
    decision: Decision,
    req: WaypointRequest,
    filters: L7Filters,
  ): Promise<FilterOutcome & AuthzHeaders & { policy: string | null }> {
    const upstreamHeaders: Record<string, string> = {};
    const downstreamHeaders: Record<string, string> = {};
    for (const policy of decision.custom) {
      const provider = filters.customProvider?.(policy);
      if (!provider || !filters.extAuthz) {
        // Istio rejects a CUSTOM policy whose provider is not declared: fail closed.
        return {
          action: "respond",
          status: 403,
          body: "RBAC: access denied",
          reason: `CUSTOM policy ${policy}: provider not configured`,
          policy,
        };
      }
      const out = await filters.extAuthz(req, provider);
      if (out.action === "respond") return { ...out, policy };
      Object.assign(upstreamHeaders, out.upstreamHeaders);
      Object.assign(downstreamHeaders, out.downstreamHeaders);
    }
    return { ...CONTINUE, upstreamHeaders, downstreamHeaders, policy: null };
  }

  private async fault(
    f: FaultPlan,
    grpc: boolean,
  ): Promise<{ delayed: boolean; abort: FaultPlan["abort"] | null }> {
    let delayed = false;
    if (f.delay && this.random() * 100 < f.delay.percent) {
      delayed = true;
      await new Promise((r) => setTimeout(r, f.delay?.ms ?? 0));
    }
    if (f.abort && this.random() * 100 < f.abort.percent) {
      const a = f.abort;
      if (grpc && a.grpcStatus !== undefined)
        return { delayed, abort: { grpcStatus: a.grpcStatus, percent: a.percent } };
      return { delayed, abort: { httpStatus: a.httpStatus ?? 503, percent: a.percent } };
    }
    return { delayed, abort: null };
  }

  /**
   * HTTP/1.1 Upgrade (WebSocket): the HTTP parser has let go of the connection; the request runs
   * the chain like any other and, if the endpoint answers 101, the connection becomes raw bytes.
   * An h2c upgrade is not taken (as Envoy): the request is handed back, unchanged, to a server
   * that ignores Upgrade headers, and is served as plain HTTP/1.1.
   */
  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const ctx = (socket as Tagged)[CTX];
    if (!ctx) return void socket.destroy();
    // Nothing reads the socket now: hold its bytes until someone does.
    socket.pause();
    const value = Array.isArray(req.headers.upgrade)
      ? req.headers.upgrade.join(",")
      : (req.headers.upgrade ?? "");
    const tokens = connectionTokens(value);
    if (tokens.length > 0 && tokens.every((t) => t === "h2c")) {
      const lines = [`${req.method ?? "GET"} ${req.url ?? "/"} HTTP/${req.httpVersion}`];
      const raw = req.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) lines.push(`${raw[i] ?? ""}: ${raw[i + 1] ?? ""}`);
      socket.unshift(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), head]));
      this.h1NoUpgrade.emit("connection", socket);
      socket.resume();
      return;
    }
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as net.Socket);
    // A local reply or a relayed non-101 answer ends the connection: the parser is gone.
    res.on("finish", () => socket.end());
    void this.handle(req, res, ctx, "HTTP/1.1", { upgrade: { socket, head, value } });
  }

  close(): void {
    this.h1.close();
    this.h1NoUpgrade.close();
    this.h2.close();
  }
}
