// Connections from the waypoint to the endpoints it routes to: an HBONE CONNECT stream to the
// endpoint's node proxy (port 15008, the waypoint's own identity, the endpoint's identity
// expected) per upstream connection, carrying HTTP/1.1 with keep-alive (an Agent per endpoint)
// or one multiplexed HTTP/2 session per endpoint. Endpoints outside the mesh get plain TCP.
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import type { Duplex } from "node:stream";
import type { HbonePool } from "../node/proxy/hbone-pool.js";
import type { MeshService, MeshSnapshot, MeshWorkload } from "../node/proxy/mesh.js";
import type { LocalPod, PodNetwork } from "../node/proxy/network.js";
import { eligibleEndpoints, HBONE_PORT, targetPort } from "../node/proxy/route.js";
import { TunnelSocket } from "./tunnel-socket.js";

export interface Endpoint {
  workload: MeshWorkload;
  ip: string;
  /** The port the application listens on (the Service port's target). */
  port: number;
  /** The cluster's connectionPool.http.maxRequestsPerConnection (0 or absent: unlimited). */
  maxRequestsPerConnection?: number;
}

export class UpstreamError extends Error {
  constructor(
    message: string,
    /** Envoy's flag for it: UF connect failure (incl. HBONE refusal). */
    readonly flag: "UF",
  ) {
    super(message);
  }
}

export interface UpstreamsOptions {
  pool: HbonePool;
  network: PodNetwork;
  /** The waypoint as a source: its pod (address to dial from) and workload (identity, baggage). */
  self: () => { pod: LocalPod; workload: MeshWorkload };
  connectTimeoutMs: number;
  /** Idle keep-alive connections are closed after this long. */
  idleTimeoutMs?: number;
}

/** The ready endpoints of a Service port, as the router dials them (the Service's routing rules honoured). */
export function serviceEndpoints(mesh: MeshSnapshot, svc: MeshService, port: number): Endpoint[] {
  return eligibleEndpoints(svc, mesh.endpointsOf(svc.key), null).flatMap((w) =>
    w.ips[0] ? [{ workload: w, ip: w.ips[0], port: targetPort(svc, w, port) }] : [],
  );
}

export const endpointKey = (e: Endpoint): string => `${e.workload.uid}|${e.ip}:${e.port}`;

/** http.Agent's own addRequest (public behaviour, absent from the type definitions). */
type AddRequest = (this: http.Agent, req: http.ClientRequest, options: http.ClientRequestArgs) => void;
const nodeAddRequest = (http.Agent.prototype as unknown as Record<"addRequest", AddRequest>).addRequest;

class TunnelAgent extends http.Agent {
  /** Requests a connection may carry before it is closed (0: unlimited). */
  maxRequests = 0;
  private readonly served = new WeakMap<object, number>();

  constructor(
    private readonly open: () => Promise<Duplex>,
    idleMs: number,
  ) {
    super({ keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 64, timeout: idleMs });
  }

  override createConnection(
    _options: http.ClientRequestArgs,
    cb?: (err: Error | null, socket: Duplex) => void,
  ): Duplex | undefined {
    this.open().then(
      (s) => cb?.(null, s),
      (err: unknown) =>
        cb?.(err instanceof Error ? err : new Error(String(err)), undefined as unknown as Duplex),
    );
    return undefined;
  }

  /**
   * Node's addRequest copies the request's options into a fresh dictionary object and works out
   * the TLS server name before it even looks for a free socket: for a pooled tunnel (no handle,
   * no TLS, no request timeout) taking the free socket is all it does, so that case is done
   * here the way Node does it (LIFO, destroyed ones skipped) and the rest is left to Node.
   */
  addRequest(req: http.ClientRequest, options: http.ClientRequestArgs): void {
    const name = this.getName(options);
    const freeSockets = this.freeSockets as Record<string, Duplex[] | undefined>;
    const free = freeSockets[name];
    if (free !== undefined && (req as { timeout?: number }).timeout === undefined) {
      while (free.length > 0 && free[0]?.destroyed) free.shift();
      const socket = free.pop();
      if (free.length === 0) delete freeSockets[name];
      if (socket !== undefined) {
        this.reuseSocket(socket, req);
        req.onSocket(socket as net.Socket);
        const busy = this.sockets as Record<string, Duplex[] | undefined>;
        (busy[name] ??= []).push(socket);
        return;
      }
    }
    nodeAddRequest.call(this, req, options);
  }

  /** Called as each response completes: keep the connection unless it reached its quota. */
  override keepSocketAlive(socket: Duplex): boolean {
    const n = (this.served.get(socket) ?? 0) + 1;
    this.served.set(socket, n);
    if (this.maxRequests > 0 && n >= this.maxRequests) return false;
    // Node's Agent returns whether it kept the socket (typed void).
    return (super.keepSocketAlive(socket) as unknown as boolean | undefined) !== false;
  }
}

export class Upstreams {
  private readonly agents = new Map<string, TunnelAgent>();
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();

  constructor(private readonly opts: UpstreamsOptions) {}

  /** One new upstream connection to the endpoint. */
  async connect(e: Endpoint, traceparent?: string): Promise<Duplex> {
    const { pod, workload } = this.opts.self();
    if (!e.workload.hbone) {
      try {
        return await this.opts.network.dial(
          pod,
          { ip: e.ip, port: e.port },
          {
            timeoutMs: this.opts.connectTimeoutMs,
            halfOpen: true,
          },
        );
      } catch (err) {
        throw new UpstreamError(`connect to ${e.ip}:${e.port} failed: ${(err as Error).message}`, "UF");
      }
    }
    const r = await this.opts.pool.open({
      pod,
      source: workload,
      tunnel: { ip: e.ip, port: HBONE_PORT },
      authority: { ip: e.ip, port: e.port },
      expectedIdentity: e.workload.spiffeId,
      ...(traceparent ? { headers: { traceparent } } : {}),
    });
    if (!r.ok) throw new UpstreamError(r.reason, "UF");
    return new TunnelSocket(r.stream, { remoteAddress: e.ip, remotePort: e.port });
  }

  /** The keep-alive HTTP/1.1 agent for an endpoint. */
  agent(e: Endpoint): http.Agent {
    const key = endpointKey(e);
    let a = this.agents.get(key);
    if (!a) {
      a = new TunnelAgent(() => this.connect(e), this.opts.idleTimeoutMs ?? 60_000);
      this.agents.set(key, a);
    }
    a.maxRequests = e.maxRequestsPerConnection ?? 0;
    return a;
  }

  /** The HTTP/2 session to an endpoint, opened on first use and replaced once it closes. */
  session(e: Endpoint): Promise<http2.ClientHttp2Session> {
    const key = endpointKey(e);
    const existing = this.sessions.get(key);
    if (existing) return this.counted(key, existing, e.maxRequestsPerConnection ?? 0);
    const opening = this.connect(e).then(
      (socket) =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const s = http2.connect(`http://${e.ip}:${e.port}`, {
            createConnection: () => socket,
            settings: { enablePush: false, initialWindowSize: 1024 * 1024 },
          });
          const forget = (): void => {
            if (this.sessions.get(key) === opening) this.sessions.delete(key);
          };
          s.once("connect", () => {
            s.off("error", reject);
            // The connection's receive window, not only the streams' (nghttp2 starts at 64 KiB).
            try {
              s.setLocalWindowSize(1024 * 1024);
            } catch {
              // closing already; the error/close handlers deal with it
            }
            resolve(s);
          });
          s.once("error", (err: Error) => {
            forget();
            reject(new UpstreamError(`HTTP/2 to ${e.ip}:${e.port} failed: ${err.message}`, "UF"));
          });
          s.on("error", () => undefined);
          s.on("close", forget);
          s.on("goaway", forget);
          s.setTimeout(this.opts.idleTimeoutMs ?? 60_000, () => {
            forget();
            s.close();
          });
        }),
    );
    opening.catch(() => {
      if (this.sessions.get(key) === opening) this.sessions.delete(key);
    });
    this.sessions.set(key, opening);
    return this.counted(key, opening, e.maxRequestsPerConnection ?? 0);
  }

  private readonly sessionUses = new WeakMap<Promise<http2.ClientHttp2Session>, number>();

  /**
   * One request's use of a session: after `max` uses the session is retired (no new streams;
   * open ones finish) and the next request opens another. Each call is followed synchronously
   * (after the await) by the stream's creation, so closing on the next macrotask is safe.
   */
  private counted(
    key: string,
    p: Promise<http2.ClientHttp2Session>,
    max: number,
  ): Promise<http2.ClientHttp2Session> {
    if (max <= 0) return p;
    const n = (this.sessionUses.get(p) ?? 0) + 1;
    this.sessionUses.set(p, n);
    if (n >= max) {
      if (this.sessions.get(key) === p) this.sessions.delete(key);
      void p.then(
        (s) => setImmediate(() => s.close()),
        () => undefined,
      );
    }
    return p;
  }

  /** Drop pooled connections to endpoints no longer in use. */
  retain(live: ReadonlySet<string>): void {
    for (const [key, a] of this.agents) {
      if (!live.has(key)) {
        a.destroy();
        this.agents.delete(key);
      }
    }
    for (const [key, p] of this.sessions) {
      if (!live.has(key)) {
        this.sessions.delete(key);
        void p.then(
          (s) => s.close(),
          () => undefined,
        );
      }
    }
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
    for (const p of this.sessions.values())
      void p.then(
        (s) => s.destroy(),
        () => undefined,
      );
    this.sessions.clear();
  }
}
