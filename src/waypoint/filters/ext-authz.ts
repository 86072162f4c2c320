// The waypoint's CUSTOM authorization client: asks an external authorizer declared in MeshConfig
// `extensionProviders` whether a request may proceed, following Envoy's ext_authz semantics.
//
// HTTP providers get a copy of the request (same method, pathPrefix + path, Host, Content-Length,
// the client headers includeRequestHeadersInCheck allows, includeAdditionalHeadersInCheck, and the
// body when includeRequestBodyInCheck): 200 allows, 5xx is an authorizer error, anything else is
// the client's answer. gRPC providers get envoy.service.auth.v3.Authorization/Check with the
// request's attributes: status OK allows (ok_response edits the request), anything else denies
// (denied_response is the client's answer, 403 by default).
//
// An authorizer that can't be reached, times out (provider `timeout`, default 600s as in Istio) or
// errs allows the request when the provider is failOpen, else answers statusOnError (default 403).
// check() never throws.
import * as http from "node:http";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { extAuthzServiceClient, unaryMethod } from "../../api/protos.js";
import type { Logger } from "../../core/log.js";
import {
  matchesHeader,
  type ExtAuthzGrpcProvider,
  type ExtAuthzHttpProvider,
  type ExtAuthzProvider,
  type HeaderPattern,
} from "../../model/resources/mesh-config.js";

export interface ExtAuthzCheck {
  method: string;
  /** The raw request-target, query included. */
  path: string;
  authority: string;
  scheme: "http";
  /** Lower-case names. */
  headers: Map<string, string[]>;
  protocol: "HTTP/1.1" | "HTTP/2";
  /** principal "td/ns/NS/sa/SA" (or a spiffe:// URI), null for a peer without a SPIFFE ID. */
  source: { principal: string | null; ip: string; port?: number };
  destination: { principal?: string | null; ip: string; port: number };
  /** The buffered request body, when the provider asks for it (includeRequestBodyInCheck). */
  body?: Buffer;
}

export type ExtAuthzResult =
  | {
      allowed: true;
      /** Set (override) on the upstream request. */
      upstreamHeaders: Record<string, string>;
      /** Removed from the upstream request (before upstreamHeaders are set). */
      removeHeaders?: string[];
      /** Set on the response to the client. */
      downstreamHeaders: Record<string, string>;
      /** Allowed only because the authorizer failed and the provider is failOpen. */
      failedOpen?: boolean;
    }
  | {
      allowed: false;
      status: number;
      headers: Record<string, string>;
      body: string;
      reason: "ext_authz_denied" | "ext_authz_error" | "ext_authz_timeout";
    };

export interface ExtAuthzClientOptions {
  providers: Map<string, ExtAuthzProvider>;
  /** Where a provider's service:port is reached now; null when it can't be resolved. */
  resolve: (
    host: string,
    port: number,
  ) => { host: string; port: number } | null | Promise<{ host: string; port: number } | null>;
  log: Logger;
}

/** Largest authorizer response body Ambit reads (HTTP mode); a larger one is an authorizer error. */
export const MAX_AUTHZ_RESPONSE_BYTES = 1 << 20;

/** Not copied between requests and responses: connection-level and recomputed headers. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "content-length",
]);

/** Sent to the client with a deny whenever headersToDownstreamOnDeny names any header (Istio). */
const ALWAYS_ON_DENY = ["www-authenticate", "location"];

/** Envoy's HTTP-service convention for headers_to_remove. */
const HEADERS_TO_REMOVE = "x-envoy-auth-headers-to-remove";
const PARTIAL_BODY = "x-envoy-auth-partial-body";

type Outcome =
  | { kind: "ok"; upstream: Record<string, string>; remove: string[]; downstream: Record<string, string> }
  | { kind: "denied"; status: number; headers: Record<string, string>; body: string }
  | { kind: "error"; timeout: boolean; message: string };

interface GrpcTarget {
  target: string;
  client: grpc.Client;
}

class CheckTimeout extends Error {}

interface CheckResponseMessage {
  status?: { code?: number; message?: string } | null;
  httpResponse?: string;
  okResponse?: {
    headers?: HeaderValueOptionMessage[];
    headersToRemove?: string[];
    responseHeadersToAdd?: HeaderValueOptionMessage[];
  } | null;
  deniedResponse?: {
    status?: { code?: number } | null;
    headers?: HeaderValueOptionMessage[];
    body?: string;
  } | null;
}

interface HeaderValueOptionMessage {
  header?: { key?: string; value?: string; rawValue?: Buffer } | null;
}

export class ExtAuthzClient {
  private readonly providers: Map<string, ExtAuthzProvider>;
  private readonly resolve: ExtAuthzClientOptions["resolve"];
  private readonly log: Logger;
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 16 });
  private readonly grpcClients = new Map<string, GrpcTarget>();
  private closed = false;

  constructor(opts: ExtAuthzClientOptions) {
    this.providers = opts.providers;
    this.resolve = opts.resolve;
    this.log = opts.log;
  }

  /** Ask `provider` about `req`. Never throws; errors become failOpen/statusOnError answers. */
  async check(provider: string, req: ExtAuthzCheck): Promise<ExtAuthzResult> {
    const p = this.providers.get(provider);
    if (!p) {
      // A CUSTOM policy naming an unknown provider denies, as Istio does.
      this.log.warn({ provider }, "ext_authz: unknown provider, denying");
      return { allowed: false, status: 403, headers: {}, body: "", reason: "ext_authz_error" };
    }
    let body: Buffer | undefined;
    let partial = false;
    const limits = p.includeRequestBodyInCheck;
    if (limits && req.body) {
      if (req.body.length > limits.maxRequestBytes) {
        if (!limits.allowPartialMessage) {
          // Istio: a too-large body is answered 413 even when failOpen is set.
          return { allowed: false, status: 413, headers: {}, body: "", reason: "ext_authz_error" };
        }
        body = req.body.subarray(0, limits.maxRequestBytes);
        partial = true;
      } else body = req.body;
    }
    let outcome: Outcome;
    try {
      if (this.closed) throw new Error("ext_authz client closed");
      const target = await this.resolve(p.service, p.port);
      if (!target) throw new Error(`cannot resolve ${p.service}:${p.port}`);
      outcome =
        p.kind === "http"
          ? await this.checkHttp(p, target, req, body, limits ? partial : null)
          : await this.checkGrpc(p, target, req, body, limits ? partial : null);
    } catch (e) {
      outcome = { kind: "error", timeout: e instanceof CheckTimeout, message: errorText(e) };
    }
    return this.decide(p, outcome);
  }

  /** Close every channel and pooled connection; later checks are authorizer errors. */
  close(): void {
    this.closed = true;
    for (const { client } of this.grpcClients.values()) client.close();
    this.grpcClients.clear();
    this.agent.destroy();
  }

  private decide(p: ExtAuthzProvider, o: Outcome): ExtAuthzResult {
    switch (o.kind) {
      case "ok":
        return {
          allowed: true,
          upstreamHeaders: o.upstream,
          ...(o.remove.length > 0 ? { removeHeaders: o.remove } : {}),
          downstreamHeaders: o.downstream,
        };
      case "denied":
        this.log.debug({ provider: p.name, status: o.status }, "ext_authz: denied");
        return {
          allowed: false,
          status: o.status,
          headers: o.headers,
          body: o.body,
          reason: "ext_authz_denied",
        };
      case "error":
        this.log.warn(
          { provider: p.name, timeout: o.timeout, failOpen: p.failOpen, err: o.message },
          "ext_authz: authorizer failed",
        );
        if (p.failOpen)
          return { allowed: true, upstreamHeaders: {}, downstreamHeaders: {}, failedOpen: true };
        return {
          allowed: false,
          status: p.statusOnError,
          headers: {},
          body: "",
          reason: o.timeout ? "ext_authz_timeout" : "ext_authz_error",
        };
    }
  }

  private checkHttp(
    p: ExtAuthzHttpProvider,
    target: { host: string; port: number },
    req: ExtAuthzCheck,
    body: Buffer | undefined,
    partial: boolean | null,
  ): Promise<Outcome> {
    const headers: Record<string, string | string[]> = {};
    for (const [name, values] of req.headers) {
      const n = name.toLowerCase();
      if (n.startsWith(":") || HOP_BY_HOP.has(n)) continue;
      if (matchesHeader(p.includeRequestHeadersInCheck, n)) headers[n] = values;
    }
    for (const [k, v] of Object.entries(p.includeAdditionalHeadersInCheck)) headers[k] = v;
    if (partial !== null) headers[PARTIAL_BODY] = String(partial);
    headers.host = req.authority;
    headers["content-length"] = String(body?.length ?? 0);

    return new Promise<Outcome>((resolve, reject) => {
      let settled = false;
      const finish = (o: Outcome | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (o instanceof Error) reject(o);
        else resolve(o);
      };
      const r = http.request({
        agent: this.agent,
        host: target.host,
        port: target.port,
        method: req.method,
        path: p.pathPrefix + req.path,
        headers,
      });
      const timer = setTimeout(() => {
        const e = new CheckTimeout(`no answer from ${p.service}:${p.port} within ${p.timeoutMs}ms`);
        finish(e);
        r.destroy(e);
      }, p.timeoutMs);
      r.on("error", (e) => finish(e));
      r.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_AUTHZ_RESPONSE_BYTES) {
            finish(new Error(`authorizer response body over ${MAX_AUTHZ_RESPONSE_BYTES} bytes`));
            r.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on("error", (e) => finish(e));
        res.on("close", () => finish(new Error("authorizer response cut short")));
        res.on("end", () => {
          try {
            finish(httpOutcome(p, res, Buffer.concat(chunks).toString("utf8")));
          } catch (e) {
            finish(e instanceof Error ? e : new Error(String(e)));
          }
        });
      });
      r.end(body);
    });
  }

  private checkGrpc(
    p: ExtAuthzGrpcProvider,
    target: { host: string; port: number },
    req: ExtAuthzCheck,
    body: Buffer | undefined,
    partial: boolean | null,
  ): Promise<Outcome> {
    const client = this.grpcClient(p, target);
    const message = checkRequest(p, req, body, partial);
    const check = unaryMethod(client, "Check");
    if (!check) return Promise.reject(new Error("no Check method on the Authorization client"));
    return new Promise<Outcome>((resolve, reject) => {
      check(message, new grpc.Metadata(), { deadline: Date.now() + p.timeoutMs }, (err, res) => {
        if (err) {
          if (err.code === grpc.status.DEADLINE_EXCEEDED)
            reject(new CheckTimeout(err.details || err.message));
          else reject(new Error(`${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
          return;
        }
        resolve(grpcOutcome(res ?? {}));
      });
    });
  }

  private grpcClient(p: ExtAuthzGrpcProvider, t: { host: string; port: number }): grpc.Client {
    const target = `${isIP(t.host) === 6 ? `[${t.host}]` : t.host}:${t.port}`;
    const cached = this.grpcClients.get(p.name);
    if (cached?.target === target) return cached.client;
    cached?.client.close();
    const Ctor = extAuthzServiceClient();
    const client = new Ctor(target, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 4 << 20,
    });
    this.grpcClients.set(p.name, { target, client });
    return client;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The authorizer's response headers, lower-case, multiple values joined as Node does. */
function responseHeaders(res: http.IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    out.set(k.toLowerCase(), Array.isArray(v) ? v.join(k === "set-cookie" ? "\n" : ", ") : v);
  }
  return out;
}

function pick(from: Map<string, string>, patterns: readonly HeaderPattern[] | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!patterns) return out;
  for (const [k, v] of from) {
    if (!HOP_BY_HOP.has(k) && matchesHeader(patterns, k)) out[k] = v;
  }
  return out;
}

function httpOutcome(p: ExtAuthzHttpProvider, res: http.IncomingMessage, body: string): Outcome {
  const status = res.statusCode ?? 0;
  const hs = responseHeaders(res);
  if (status === 200) {
    const remove = (hs.get(HEADERS_TO_REMOVE) ?? "")
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== "" && !s.startsWith(":") && s !== "host");
    return {
      kind: "ok",
      upstream: pick(hs, p.headersToUpstreamOnAllow),
      remove,
      downstream: pick(hs, p.headersToDownstreamOnAllow),
    };
  }
  // Envoy treats an authorizer's 5xx as a failed check (failOpen / statusOnError apply).
  if (status >= 500 || status < 100)
    return { kind: "error", timeout: false, message: `authorizer answered ${status}` };
  let headers: Record<string, string>;
  if (p.headersToDownstreamOnDeny === null) {
    headers = {};
    for (const [k, v] of hs) if (!HOP_BY_HOP.has(k)) headers[k] = v;
  } else {
    headers = pick(hs, [
      ...p.headersToDownstreamOnDeny,
      ...ALWAYS_ON_DENY.map((value) => ({ kind: "exact" as const, value })),
    ]);
  }
  return { kind: "denied", status, headers, body };
}

function spiffe(principal: string | null | undefined): string {
  if (!principal) return "";
  return principal.startsWith("spiffe://") ? principal : `spiffe://${principal}`;
}

function socketAddress(ip: string, port: number | undefined): unknown {
  return { socketAddress: { address: ip, portValue: port ?? 0 } };
}

/** The CheckRequest for a request, in proto-loader's camelCase object form. */
function checkRequest(
  p: ExtAuthzGrpcProvider,
  req: ExtAuthzCheck,
  body: Buffer | undefined,
  partial: boolean | null,
): unknown {
  const headers: Record<string, string> = {
    ":authority": req.authority,
    ":method": req.method,
    ":path": req.path,
    ":scheme": req.scheme,
  };
  for (const [name, values] of req.headers) {
    const n = name.toLowerCase();
    if (n.startsWith(":") || n === "host") continue;
    headers[n] = values.join(n === "cookie" ? "; " : ",");
  }
  if (partial !== null) headers[PARTIAL_BODY] = String(partial);
  const declared = Number(req.headers.get("content-length")?.[0]);
  const size = Number.isInteger(declared) && declared >= 0 ? declared : (body?.length ?? -1);
  const now = Date.now();
  const httpReq: Record<string, unknown> = {
    id: req.headers.get("x-request-id")?.[0] ?? "",
    method: req.method,
    headers,
    path: req.path,
    host: req.authority,
    scheme: req.scheme,
    size,
    protocol: req.protocol,
  };
  if (body) {
    if (p.includeRequestBodyInCheck?.packAsBytes) httpReq.rawBody = body;
    else httpReq.body = body.toString("utf8");
  }
  return {
    attributes: {
      source: {
        address: socketAddress(req.source.ip, req.source.port),
        principal: spiffe(req.source.principal),
      },
      destination: {
        address: socketAddress(req.destination.ip, req.destination.port),
        principal: spiffe(req.destination.principal),
      },
      request: {
        time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 },
        http: httpReq,
      },
    },
  };
}

function headerOptions(list: HeaderValueOptionMessage[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of list ?? []) {
    const key = o.header?.key?.toLowerCase();
    if (!key || key.startsWith(":") || HOP_BY_HOP.has(key)) continue;
    const value =
      o.header?.value || (o.header?.rawValue ? Buffer.from(o.header.rawValue).toString("utf8") : "");
    if (/[\r\n\0]/.test(value)) continue;
    out[key] = key in out ? `${out[key]},${value}` : value;
  }
  return out;
}

function grpcOutcome(res: CheckResponseMessage): Outcome {
  const code = res.status?.code ?? 0;
  if (code === 0) {
    const ok = res.okResponse ?? null;
    const remove = (ok?.headersToRemove ?? [])
      .map((h) => h.toLowerCase())
      .filter((h) => h !== "" && !h.startsWith(":") && h !== "host");
    return {
      kind: "ok",
      upstream: headerOptions(ok?.headers),
      remove,
      downstream: headerOptions(ok?.responseHeadersToAdd),
    };
  }
  const denied = res.deniedResponse ?? null;
  const status = denied?.status?.code;
  return {
    kind: "denied",
    status: status && status >= 200 && status <= 599 ? status : 403,
    headers: headerOptions(denied?.headers),
    body: denied?.body ?? "",
  };
}
