// The router, last in the chain: sends the request to an endpoint of the planned backend with
// the route's timeout and retry policy, copies the request to mirrors (fire and forget), and
// relays the chosen response (headers changed as the route says, trailers kept). Failures become
// Envoy's answers and flags: 503 UH no healthy upstream, 503 UF connect failure, 503 UC reset
// before headers, 503 UO overflow, 504 UT timeout, URX when retries ran out.
import type * as http from "node:http";
import { PassThrough } from "node:stream";
import type { Logger } from "../core/log.js";
import { ReplayableBody } from "./body.js";
import type { Endpoint } from "./upstream.js";
import type { Upstreams } from "./upstream.js";
import { attempt, type AttemptResult, type UpstreamRequest, type UpstreamResponse } from "./exchange.js";
import { applyHeaderOps, type ForwardPlan, type PlannedBackend } from "./plan.js";
import { HOP_BY_HOP } from "./headers.js";
import { respondHeadersOnly, type Downstream, type DownstreamRequest } from "./downstream.js";
import type { LocalReply } from "./local-reply.js";
import { forwardUpgrade, type Downstream101, type UpgradeRequest } from "./upgrade.js";

/** How endpoints are chosen and what the router tells the chooser about each attempt. */
export interface EndpointChooser {
  choose(
    backend: PlannedBackend,
    ctx: {
      headers: Map<string, string[]>;
      sourceIp: string;
      exclude: ReadonlySet<string>;
      /** The request's path and query (consistent hash by query parameter). */
      path?: string;
    },
  ):
    | { ok: true; endpoint: Endpoint; key: string; responseHeaders?: Record<string, string> }
    | { ok: false; reply: LocalReply; flag: string };
  /** An attempt started on the endpoint; returns the call that ends it. */
  started(
    backend: PlannedBackend,
    key: string,
  ): (outcome: { status?: number; failure?: AttemptFailureKind }) => void;
}

export type AttemptFailureKind = "connect-failure" | "reset" | "refused-stream" | "timeout";

export interface RouterResult {
  status: number;
  grpcStatus: string | null;
  flags: string[];
  attempts: number;
  upstreamMs: number | null;
  endpoint: Endpoint | null;
  responseBytes: number;
  /** Request body bytes the router counted itself (upgraded connections); else the caller counts. */
  requestBytes?: number;
  /** Set when the router answered itself. */
  reply?: LocalReply;
  detail: string;
}

/** Replay limit for retries and mirrors (Envoy's per-request buffer default is 1 MiB too). */
const REPLAY_LIMIT = 1024 * 1024;

function grpcRetryable(status: string | undefined, retryOn: ReadonlySet<string>): boolean {
  switch (status) {
    case "1":
      return retryOn.has("cancelled");
    case "4":
      return retryOn.has("deadline-exceeded");
    case "8":
      return retryOn.has("resource-exhausted");
    case "13":
      return retryOn.has("internal");
    case "14":
      return retryOn.has("unavailable");
    default:
      return false;
  }
}

/** Whether Envoy's retry-on tokens ask for another try after this response. */
function retryableStatus(status: number, grpcStatus: string | undefined, plan: ForwardPlan): boolean {
  const on = plan.retry.retryOn;
  if (on.has("5xx") && status >= 500) return true;
  if (on.has("gateway-error") && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has("retriable-4xx") && status === 409) return true;
  if (on.has("retriable-status-codes") && plan.retry.retriableStatusCodes.has(status)) return true;
  return grpcRetryable(grpcStatus, on);
}

function retryableFailure(kind: AttemptFailureKind, plan: ForwardPlan): boolean {
  const on = plan.retry.retryOn;
  if (on.has("5xx") || on.has("gateway-error")) return true; // Envoy counts resets and timeouts as 5xx
  if (kind === "connect-failure") return on.has("connect-failure") || on.has("reset");
  if (kind === "refused-stream") return on.has("refused-stream") || on.has("reset");
  if (kind === "reset") return on.has("reset");
  return false;
}

function firstValue(h: Record<string, string | string[]>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export interface RouterOptions {
  upstreams: Upstreams;
  chooser: EndpointChooser;
  log: Logger;
}

export class Router {
  constructor(private readonly opts: RouterOptions) {}

  /** Forward and relay; resolves once the response is complete (or failed). */
  async forward(
    plan: ForwardPlan,
    downstreamReq: DownstreamRequest,
    res: Downstream,
    headers: Map<string, string[]>,
    ctx: { sourceIp: string; hasBody: boolean; h2Upstream: boolean },
  ): Promise<RouterResult> {
    const started = performance.now();
    const deadline = plan.timeoutMs !== null ? started + plan.timeoutMs : Infinity;
    const body = ctx.hasBody ? new ReplayableBody(downstreamReq, REPLAY_LIMIT) : null;
    const upstreamHeaders = new Map<string, string[]>();
    for (const [k, v] of headers) upstreamHeaders.set(k, v.slice());
    applyHeaderOps(upstreamHeaders, plan.requestHeaders);
    applyHeaderOps(upstreamHeaders, plan.backend.requestHeaders);
    const request: UpstreamRequest = {
      method: downstreamReq.method ?? "GET",
      path: plan.path,
      authority: plan.authority,
      headers: upstreamHeaders,
      hasBody: ctx.hasBody,
    };
    this.mirror(plan, request, body, ctx);

    const tried = new Set<string>();
    const flags: string[] = [];
    let attempts = 0;
    let last: RouterResult | null = null;
    for (;;) {
      attempts++;
      if (attempts > 1) upstreamHeaders.set("x-envoy-attempt-count", [String(attempts)]);
      const chosen = this.opts.chooser.choose(plan.backend, {
        headers,
        sourceIp: ctx.sourceIp,
        exclude: tried,
        path: plan.path,
      });
      if (!chosen.ok) {
        return { ...this.base(attempts, chosen.flag), reply: chosen.reply, detail: chosen.reply.body };
      }
      tried.add(chosen.key);
      const remaining = deadline - performance.now();
      const perTry = plan.retry.perTryTimeoutMs;
      const timeoutMs =
        remaining === Infinity ? perTry : Math.max(1, Math.min(remaining, perTry ?? Infinity));
      const overall = perTry === null || (remaining !== Infinity && remaining <= perTry);
      const done = this.opts.chooser.started(plan.backend, chosen.key);
      const sentAt = performance.now();
      const r: AttemptResult = await attempt(
        this.opts.upstreams,
        chosen.endpoint,
        ctx.h2Upstream,
        request,
        body,
        timeoutMs,
      );
      const upstreamMs = performance.now() - sentAt;
      const canRetry =
        attempts <= plan.retry.attempts && (body === null || body.replayable) && performance.now() < deadline;
      if (r.ok) {
        const grpcStatus = firstValue(r.response.headers, "grpc-status");
        if (canRetry && retryableStatus(r.response.status, grpcStatus, plan)) {
          done({ status: r.response.status });
          r.response.abort();
          r.response.body.resume();
          last = { ...this.base(attempts, ""), status: r.response.status, detail: "retried" };
          continue;
        }
        const relayed = await this.relay(plan, r.response, res, done, chosen.responseHeaders);
        if (attempts > 1 && retryableStatus(r.response.status, grpcStatus, plan)) flags.push("URX");
        return {
          status: r.response.status,
          grpcStatus: relayed.grpcStatus ?? grpcStatus ?? null,
          flags: [...flags, ...relayed.flags],
          attempts,
          upstreamMs,
          endpoint: chosen.endpoint,
          responseBytes: relayed.bytes,
          detail: "",
        };
      }
      done({ failure: r.kind });
      const timedOutOverall = r.kind === "timeout" && overall;
      if (canRetry && !timedOutOverall && (r.kind === "timeout" || retryableFailure(r.kind, plan))) {
        last = { ...this.base(attempts, r.flag), detail: r.detail };
        continue;
      }
      const f = [r.flag, ...(attempts > 1 ? ["URX"] : [])];
      if (r.kind === "timeout") {
        return {
          ...this.base(attempts, ""),
          flags: f,
          endpoint: chosen.endpoint,
          reply: { status: 504, body: "upstream request timeout" },
          detail: r.detail,
        };
      }
      const why = r.kind === "connect-failure" ? "connection failure" : "connection termination";
      return {
        ...this.base(attempts, ""),
        flags: f,
        endpoint: chosen.endpoint,
        reply: {
          status: 503,
          body: `upstream connect error or disconnect/reset before headers. reset reason: ${why}`,
        },
        detail: last ? `${r.detail} (earlier: ${last.detail})` : r.detail,
      };
    }
  }

  /**
   * An HTTP/1.1 Upgrade: one attempt on a connection of its own (no retries or mirrors: the
   * request has no replayable body and what follows a 101 is not HTTP). Resolves when the
   * upgraded connection has closed, or the non-101 answer has been relayed.
   */
  async upgrade(
    plan: ForwardPlan,
    req: UpgradeRequest,
    down: Downstream101,
    ctx: { sourceIp: string; idleMs: number },
  ): Promise<RouterResult> {
    const headers = new Map([...req.headers].map(([k, v]) => [k, [...v]]));
    applyHeaderOps(headers, plan.requestHeaders);
    applyHeaderOps(headers, plan.backend.requestHeaders);
    const chosen = this.opts.chooser.choose(plan.backend, {
      headers: req.headers,
      sourceIp: ctx.sourceIp,
      exclude: new Set(),
    });
    if (!chosen.ok) return { ...this.base(1, chosen.flag), reply: chosen.reply, detail: chosen.reply.body };
    const done = this.opts.chooser.started(plan.backend, chosen.key);
    const r = await forwardUpgrade(
      this.opts.upstreams,
      chosen.endpoint,
      plan,
      { ...req, headers, path: plan.path, authority: plan.authority },
      down,
      { timeoutMs: plan.timeoutMs, idleMs: ctx.idleMs },
    );
    if (r.ok) {
      done({ status: r.status });
      return {
        status: r.status,
        grpcStatus: null,
        flags: r.flags,
        attempts: 1,
        upstreamMs: r.upstreamMs,
        endpoint: chosen.endpoint,
        responseBytes: r.responseBytes,
        requestBytes: r.requestBytes,
        detail: "",
      };
    }
    done({ failure: r.kind });
    const reply: LocalReply =
      r.kind === "timeout"
        ? { status: 504, body: "upstream request timeout" }
        : {
            status: 503,
            body: `upstream connect error or disconnect/reset before headers. reset reason: ${
              r.kind === "connect-failure" ? "connection failure" : "connection termination"
            }`,
          };
    return { ...this.base(1, r.flag), endpoint: chosen.endpoint, reply, detail: r.detail };
  }

  private base(attempts: number, flag: string): RouterResult {
    return {
      status: 0,
      grpcStatus: null,
      flags: flag ? [flag] : [],
      attempts,
      upstreamMs: null,
      endpoint: null,
      responseBytes: 0,
      detail: "",
    };
  }

  /** Copy the request to each mirror that the percentage picks; responses are dropped. */
  private mirror(
    plan: ForwardPlan,
    request: UpstreamRequest,
    body: ReplayableBody | null,
    ctx: { sourceIp: string; h2Upstream: boolean },
  ): void {
    for (const m of plan.mirrors) {
      if (Math.random() * 100 >= m.percent) continue;
      const chosen = this.opts.chooser.choose(m.backend, {
        headers: request.headers,
        sourceIp: ctx.sourceIp,
        exclude: new Set(),
        path: request.path,
      });
      if (!chosen.ok) continue;
      // Envoy marks the mirrored copy's authority with a "-shadow" suffix.
      const host = request.authority.replace(/(:\d+)?$/, (port) => `-shadow${port}`);
      const copy: UpstreamRequest = { ...request, authority: host, headers: new Map(request.headers) };
      const mirrorBody = body ? new MirrorTap() : null;
      if (body && mirrorBody && !body.mirrorTo(mirrorBody)) continue;
      const done = this.opts.chooser.started(m.backend, chosen.key);
      void attempt(
        this.opts.upstreams,
        chosen.endpoint,
        ctx.h2Upstream,
        copy,
        mirrorBody?.asBody() ?? null,
        10_000,
      ).then((r) => {
        if (r.ok) {
          done({ status: r.response.status });
          r.response.body.resume();
        } else {
          done({ failure: r.kind });
          this.opts.log.debug({ mirror: m.backend.service?.hostname, detail: r.detail }, "mirror failed");
        }
      });
    }
  }

  private relay(
    plan: ForwardPlan,
    up: UpstreamResponse,
    res: Downstream,
    done: (o: { status?: number }) => void,
    /** Added by the balancer (a generated hash cookie). */
    extra?: Record<string, string>,
  ): Promise<{ bytes: number; grpcStatus: string | null; flags: string[] }> {
    const headers = new Map<string, string[]>();
    for (const [k, v] of Object.entries(up.headers)) {
      if (HOP_BY_HOP.has(k)) continue;
      headers.set(k, Array.isArray(v) ? [...v] : [v]);
    }
    applyHeaderOps(headers, plan.backend.responseHeaders);
    applyHeaderOps(headers, plan.responseHeaders);
    for (const [k, v] of Object.entries(extra ?? {})) headers.set(k, [...(headers.get(k) ?? []), v]);
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of headers) out[k] = v.length === 1 ? (v[0] ?? "") : v;
    return new Promise((resolve) => {
      let bytes = 0;
      let finished = false;
      const finish = (r: { grpcStatus: string | null; flags: string[] }): void => {
        if (finished) return;
        finished = true;
        done({ status: up.status });
        resolve({ bytes, ...r });
      };
      if (res.destroyed) {
        up.abort();
        return finish({ grpcStatus: null, flags: ["DC"] });
      }
      const leadingStatus = firstValue(up.headers, "grpc-status");
      if (leadingStatus !== undefined) {
        // gRPC trailers-only (a status and no messages): it must stay one end-of-stream HEADERS.
        respondHeadersOnly(res, up.status, out);
        up.body.resume();
        return finish({ grpcStatus: leadingStatus, flags: [] });
      }
      try {
        res.writeHead(up.status, out);
      } catch (err) {
        this.opts.log.debug({ err }, "response head refused by the downstream codec");
        up.abort();
        res.destroy();
        return finish({ grpcStatus: null, flags: ["DC"] });
      }
      res.once("close", () => {
        if (!finished) {
          up.abort();
          finish({ grpcStatus: null, flags: ["DC"] });
        }
      });
      up.body.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (!(res as http.ServerResponse).write(chunk)) {
          up.body.pause();
          res.once("drain", () => up.body.resume());
        }
      });
      up.body.once("error", () => undefined);
      void up.trailers.then((trailers) => {
        if (finished) return;
        if (!up.body.readableEnded) {
          // The upstream went away mid-body: the client must see a reset, not a short body.
          res.destroy();
          return finish({ grpcStatus: null, flags: ["UPE"] });
        }
        if (trailers) {
          try {
            res.addTrailers(trailers);
          } catch {
            // a downstream that cannot carry trailers (HTTP/1.1 without chunking) loses them
          }
        }
        res.end();
        finish({ grpcStatus: trailers ? (firstValue(trailers, "grpc-status") ?? null) : null, flags: [] });
      });
    });
  }
}

/** A writable that buffers a mirror's copy of the body and reads it back as a ReplayableBody. */
class MirrorTap extends PassThrough {
  asBody(): ReplayableBody {
    return new ReplayableBody(this, REPLAY_LIMIT);
  }
}
