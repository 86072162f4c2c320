// Outbound HBONE: pooled mutual-TLS HTTP/2 connections, one CONNECT stream per application
// connection. A pooled connection is keyed by (source identity, destination identity, tunnel
// address, source IP), carries at most 100 streams (or fewer if the peer says so) and is closed
// after 5 minutes without streams. The client presents the source workload's certificate and
// accepts only a server presenting the identity it expects, not revoked.
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { formatHostPort } from "../../core/address.js";
import type { Logger } from "../../core/log.js";
import { randomHex } from "../../core/random-hex.js";
import { uriSans } from "../../identity/peer-check.js";
import type { RevocationList } from "../../model/revocation.js";
import { HBONE_CONNECTION_WINDOW, HBONE_SETTINGS } from "./hbone-server.js";
import type { MeshWorkload } from "./mesh.js";
import type { LocalPod, PodNetwork } from "./network.js";
import type { Destination } from "./route.js";
import type { WorkloadTls } from "./workload-tls.js";

export interface HbonePoolOptions {
  tls: WorkloadTls;
  network: PodNetwork;
  revocations: () => RevocationList;
  log: Logger;
  maxStreamsPerConnection?: number;
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export interface TunnelRequest {
  pod: LocalPod;
  source: MeshWorkload;
  tunnel: Destination;
  authority: Destination;
  expectedIdentity: string;
  /** Extra request headers (traceparent is generated when absent). */
  headers?: Record<string, string>;
}

export type TunnelResult =
  | { ok: true; stream: http2.ClientHttp2Stream }
  | { ok: false; status: number; reason: string; refused?: boolean };

/**
 * RST_STREAM codes with which a peer turns a new stream away unprocessed (its stream or memory
 * limit — Node answers ENHANCE_YOUR_CALM when it cannot add a stream): safe to retry elsewhere.
 */
const REFUSED_CODES: ReadonlySet<number> = new Set([
  http2.constants.NGHTTP2_REFUSED_STREAM,
  http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
]);
/** Further attempts, each on another pooled or new connection, after a refused stream. */
const REFUSED_RETRIES = 2;

interface Pooled {
  key: string;
  session: http2.ClientHttp2Session;
  streams: number;
  /** Streams the peer turned away a new one at (it may count more than we do): our cap from then on. */
  refusedAt?: number;
  idle: NodeJS.Timeout | undefined;
  closed: boolean;
}

function hostPort(d: Destination): string {
  return formatHostPort(d.ip, d.port);
}

/** `forwarded: for=...` per RFC 7239 (IPv6 quoted and bracketed). */
function forwardedFor(ip: string): string {
  return ip.includes(":") ? `for="[${ip}]"` : `for=${ip}`;
}

// The baggage header of a source workload: built once per workload object (a new mesh snapshot
// brings new objects, so a changed workload gets a fresh value) instead of once per connection.
const baggageOf = new WeakMap<MeshWorkload, string>();

function baggage(w: MeshWorkload): string {
  const cached = baggageOf.get(w);
  if (cached !== undefined) return cached;
  const parts = [
    w.clusterId ? `k8s.cluster.name=${w.clusterId}` : "",
    `k8s.namespace.name=${w.namespace}`,
    `k8s.pod.name=${w.name}`,
    `service.name=${w.canonicalName}`,
    `service.version=${w.canonicalRevision}`,
  ];
  const value = parts.filter((p) => p !== "").join(",");
  baggageOf.set(w, value);
  return value;
}

export function newTraceparent(): string {
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

export class HbonePool {
  private readonly pools = new Map<string, Pooled[]>();
  private readonly pending = new Map<string, Promise<Pooled>>();
  private readonly maxStreams: number;
  private readonly idleMs: number;
  private readonly connectMs: number;
  private connections = 0;

  constructor(private readonly opts: HbonePoolOptions) {
    this.maxStreams = opts.maxStreamsPerConnection ?? 100;
    this.idleMs = opts.idleTimeoutMs ?? 300_000;
    this.connectMs = opts.connectTimeoutMs ?? 10_000;
  }

  /** Pooled connections open now. */
  get size(): number {
    return this.connections;
  }

  /** Open a CONNECT stream and wait for the peer's answer. */
  async open(req: TunnelRequest): Promise<TunnelResult> {
    for (let attempt = 0; ; attempt++) {
      let pooled: Pooled;
      try {
        pooled = await this.acquire(req);
      } catch (err) {
        return { ok: false, status: 0, reason: `tunnel to ${hostPort(req.tunnel)} failed: ${errText(err)}` };
      }
      const r = await this.request(pooled, req);
      if (r.ok || !r.refused || attempt >= REFUSED_RETRIES) return r;
    }
  }

  private capacity(p: Pooled): number {
    const remote = p.session.remoteSettings.maxConcurrentStreams ?? this.maxStreams;
    return Math.min(this.maxStreams, remote, p.refusedAt ?? Number.POSITIVE_INFINITY);
  }

  /** A pooled connection with a stream slot reserved for the caller. */
  private async acquire(req: TunnelRequest): Promise<Pooled> {
    const key = `${req.source.spiffeId}|${req.expectedIdentity}|${hostPort(req.tunnel)}|${req.pod.ip}`;
    for (let round = 0; ; round++) {
      for (const p of this.pools.get(key) ?? []) {
        if (!p.closed && !p.session.destroyed && p.streams < this.capacity(p)) {
          this.reserve(p);
          return p;
        }
      }
      // Callers arriving while a connection is being set up share it rather than each dialling.
      const pending = this.pending.get(key);
      if (pending && round === 0) {
        await pending.catch(() => undefined);
        continue;
      }
      const attempt = this.connect(key, req);
      this.pending.set(key, attempt);
      try {
        const p = await attempt;
        const list = this.pools.get(key);
        if (list) list.push(p);
        else this.pools.set(key, [p]);
        this.reserve(p);
        return p;
      } finally {
        if (this.pending.get(key) === attempt) this.pending.delete(key);
      }
    }
  }

  private reserve(p: Pooled): void {
    p.streams++;
    if (p.idle) {
      clearTimeout(p.idle);
      p.idle = undefined;
    }
  }

  private async connect(key: string, req: TunnelRequest): Promise<Pooled> {
    const material = await this.opts.tls.context({
      trustDomain: req.source.trustDomain,
      namespace: req.source.namespace,
      serviceAccount: req.source.serviceAccount,
    });
    const raw = await this.opts.network.dial(req.pod, req.tunnel, {
      timeoutMs: this.connectMs,
      halfOpen: false,
    });
    const revocations = this.opts.revocations;
    const tlsSocket = tls.connect({
      socket: raw,
      secureContext: material.context,
      ALPNProtocols: ["h2"],
      minVersion: "TLSv1.3",
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => {
        const uris = uriSans(cert.subjectaltname);
        const id = uris.length === 1 ? uris[0] : undefined;
        if (id !== req.expectedIdentity) {
          return new Error(`peer presented ${id ?? "no single SPIFFE ID"}, expected ${req.expectedIdentity}`);
        }
        const revoked = revocations().check(id, cert.serialNumber);
        if (revoked) return new Error(`peer ${id} is revoked: ${revoked.reason}`);
        return undefined;
      },
    });
    const session = http2.connect(`https://${hostPort(req.tunnel)}`, {
      createConnection: () => tlsSocket,
      settings: HBONE_SETTINGS,
      maxSessionMemory: 64,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.destroy();
        reject(new Error(`no HTTP/2 session within ${this.connectMs} ms`));
      }, this.connectMs);
      session.once("connect", () => {
        clearTimeout(timer);
        session.off("error", reject);
        resolve();
      });
      session.once("error", (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
    try {
      session.setLocalWindowSize(HBONE_CONNECTION_WINDOW);
    } catch {
      // closed meanwhile; the request fails below
    }
    const pooled: Pooled = { key, session, streams: 0, idle: undefined, closed: false };
    this.connections++;
    session.on("error", (err) => this.opts.log.debug({ err, key }, "pooled HBONE connection failed"));
    session.on("goaway", () => this.retire(pooled));
    // The peer went away (its process ended, the network broke): fail every stream at once.
    tlsSocket.once("end", () => session.destroy());
    tlsSocket.once("close", () => session.destroy());
    session.on("close", () => this.retire(pooled));
    return pooled;
  }

  private retire(p: Pooled): void {
    if (p.closed) return;
    p.closed = true;
    this.connections--;
    if (p.idle) clearTimeout(p.idle);
    const list = this.pools.get(p.key);
    if (list) {
      const rest = list.filter((x) => x !== p);
      if (rest.length === 0) this.pools.delete(p.key);
      else this.pools.set(p.key, rest);
    }
    if (!p.session.destroyed) p.session.close();
  }

  private request(p: Pooled, req: TunnelRequest): Promise<TunnelResult> {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = p.session.request(
        {
          ":method": "CONNECT",
          ":authority": hostPort(req.authority),
          forwarded: forwardedFor(req.pod.ip),
          baggage: baggage(req.source),
          traceparent: req.headers?.traceparent ?? newTraceparent(),
          ...req.headers,
        },
        { endStream: false },
      );
    } catch (err) {
      this.release(p);
      return Promise.resolve({ ok: false, status: 0, reason: `CONNECT failed: ${errText(err)}` });
    }
    stream.once("close", () => this.release(p));
    return new Promise((resolve) => {
      let done = false;
      const settle = (r: TunnelResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        settle({ ok: false, status: 0, reason: `no CONNECT answer within ${this.connectMs} ms` });
      }, this.connectMs);
      stream.once("response", (headers) => {
        const status = Number(headers[":status"]);
        if (status === 200) return settle({ ok: true, stream });
        stream.close();
        settle({ ok: false, status, reason: `peer answered ${status}` });
      });
      const refused = (): boolean => {
        if (!REFUSED_CODES.has(stream.rstCode ?? 0)) return false;
        // The peer holds fewer streams than it advertised (or is short of memory): cap this
        // connection at what it holds without this one; the caller tries another.
        p.refusedAt = Math.min(p.refusedAt ?? Number.POSITIVE_INFINITY, Math.max(0, p.streams - 1));
        return true;
      };
      stream.once("error", (err) =>
        settle({ ok: false, status: 0, reason: `CONNECT failed: ${errText(err)}`, refused: refused() }),
      );
      stream.once("close", () =>
        settle({ ok: false, status: 0, reason: "stream closed before an answer", refused: refused() }),
      );
    });
  }

  private release(p: Pooled): void {
    p.streams--;
    if (p.streams === 0 && !p.closed) {
      p.idle = setTimeout(() => this.retire(p), this.idleMs);
      p.idle.unref();
    }
  }

  close(): void {
    for (const list of [...this.pools.values()]) for (const p of list) this.retire(p);
  }
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ? `${e.code}${e.message ? ` (${e.message})` : ""}` : String(e?.message ?? err);
}
