// Inbound HBONE on a pod's port 15008: mutual TLS 1.3 with the pod's own certificate (ALPN h2,
// client certificate required, trust domain and revocation checked), then HTTP/2 where each
// CONNECT stream for a local address is authorized and spliced to the application.
// Answers: 200 connected, 400 bad method/authority or an address that is not this pod's,
// 401 denied by policy, 503 application unreachable.
import * as http2 from "node:http2";
import type * as net from "node:net";
import * as tls from "node:tls";
import type { Logger } from "../../core/log.js";
import { checkTlsPeer, type VerifiedPeer } from "../../identity/peer-check.js";
import type { IssuedCertificate } from "../../identity/cert-types.js";
import type { Inbound } from "./inbound.js";
import { canonicalIp, type MeshSnapshot, type MeshWorkload } from "./mesh.js";
import type { LocalPod } from "./network.js";
import type { Destination } from "./route.js";
import type { NodeTelemetry, RefusalReason } from "./telemetry.js";

export const HBONE_SETTINGS: http2.Settings = {
  initialWindowSize: 4 * 1024 * 1024,
  maxConcurrentStreams: 100,
  maxHeaderListSize: 16 * 1024,
  enablePush: false,
};
export const HBONE_CONNECTION_WINDOW = 16 * 1024 * 1024;

const PEER = Symbol("ambit.hbone.peer");

interface PeerSocket extends tls.TLSSocket {
  [PEER]?: VerifiedPeer;
}

export interface HboneServerOptions {
  pod: LocalPod;
  trustDomain: string;
  mesh: () => MeshSnapshot;
  inbound: Inbound;
  telemetry: NodeTelemetry;
  log: Logger;
  /** A TLS handshake that has not finished by then is dropped. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** A session with no open stream for this long is closed. Default 5 min. */
  idleTimeoutMs?: number;
}

/** "ip:port" or "[v6]:port" → a destination; null when malformed. */
export function parseAuthority(authority: string | undefined): Destination | null {
  if (!authority) return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(authority);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  const ip = canonicalIp(host);
  return ip === "" ? null : { ip, port };
}

export class HboneServer {
  private readonly tlsServer: tls.Server;
  private readonly h2: http2.Http2Server;
  private certSerial = "";
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly opts: HboneServerOptions) {
    this.tlsServer = tls.createServer({
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
      requestCert: true,
      // Checked after the handshake so that every refusal is counted with its reason.
      rejectUnauthorized: false,
      ALPNProtocols: ["h2"],
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
    });
    this.tlsServer.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      this.refuse(socket, "tls_handshake", err.code ?? err.message);
    });
    this.tlsServer.on("secureConnection", (socket: PeerSocket) => this.onSecure(socket));
    this.h2 = http2.createServer({
      settings: HBONE_SETTINGS,
      maxSessionMemory: 64,
      maxHeaderListPairs: 64,
    });
    this.h2.on("session", (session) => this.onSession(session));
    this.h2.on("stream", (stream, headers) => void this.onStream(stream, headers));
  }

  /** Adopt the pod's (renewed) certificate; new handshakes use it at once. */
  useCertificate(cert: IssuedCertificate, rootsPem: string): void {
    const key = `${cert.serial}\n${rootsPem}`;
    if (key === this.certSerial) return;
    this.certSerial = key;
    this.tlsServer.setSecureContext({
      key: cert.privateKeyPem,
      cert: cert.certChainPem.join(""),
      ca: rootsPem,
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
    });
  }

  get ready(): boolean {
    return this.certSerial !== "";
  }

  /** A raw TCP connection accepted on the pod's 15008 listener. */
  accept(socket: net.Socket): void {
    if (!this.ready) {
      this.opts.telemetry.refused("hbone", "tls_handshake", {
        peer: socket.remoteAddress,
        detail: "pod certificate not ready",
      });
      socket.destroy();
      return;
    }
    this.tlsServer.emit("connection", socket);
  }

  private refuse(socket: net.Socket, reason: RefusalReason, detail: string): void {
    this.opts.telemetry.refused("hbone", reason, {
      pod: this.opts.pod.ip,
      peer: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`,
      detail,
    });
    socket.destroy();
  }

  private onSecure(socket: PeerSocket): void {
    if (socket.alpnProtocol !== "h2") {
      return this.refuse(socket, "alpn", `ALPN ${String(socket.alpnProtocol)} is not h2`);
    }
    const raw = socket.getPeerCertificate();
    if (!raw || Object.keys(raw).length === 0) {
      return this.refuse(socket, "no_client_certificate", "peer presented no client certificate");
    }
    const check = checkTlsPeer(socket, this.opts.trustDomain, this.opts.mesh().revocations);
    if (!check.ok) {
      const reason: RefusalReason =
        check.code === "AMBIT_E_REVOKED"
          ? "revoked"
          : check.code === "AMBIT_E_TRUST_DOMAIN"
            ? "trust_domain"
            : "untrusted_certificate";
      return this.refuse(socket, reason, check.reason);
    }
    socket[PEER] = check.peer;
    this.h2.emit("connection", socket);
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.on("close", () => this.sessions.delete(session));
    session.on("error", () => undefined);
    try {
      session.setLocalWindowSize(HBONE_CONNECTION_WINDOW);
    } catch {
      // the session closed meanwhile
    }
    // Idle = no open stream (not "no byte moved"): a timer armed while the session has no stream,
    // so the data path does not refresh a session timer on every chunk as setTimeout() would.
    const idleMs = this.opts.idleTimeoutMs ?? 300_000;
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      idle = setTimeout(() => session.close(), idleMs);
      idle.unref();
    };
    arm();
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      open++;
      if (idle) clearTimeout(idle);
      idle = undefined;
      stream.once("close", () => {
        open--;
        if (open === 0 && !session.closed && !session.destroyed) arm();
      });
    });
    session.once("close", () => {
      if (idle) clearTimeout(idle);
    });
  }

  private respond(
    stream: http2.ServerHttp2Stream,
    status: number,
    reason: RefusalReason,
    detail: object,
  ): void {
    this.opts.telemetry.refused("hbone", reason, { pod: this.opts.pod.ip, status, ...detail });
    if (stream.destroyed || stream.closed) return;
    try {
      stream.respond({ ":status": status }, { endStream: true });
    } catch {
      stream.destroy();
    }
  }

  private async onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Promise<void> {
    stream.on("error", () => undefined);
    const socket = stream.session?.socket as PeerSocket | undefined;
    const peer = socket?.[PEER];
    const peerAddr = { ip: canonicalIp(socket?.remoteAddress), port: socket?.remotePort ?? 0 };
    const method = headers[":method"];
    const authority = headers[":authority"];
    if (method !== "CONNECT" || peer === undefined) {
      return this.respond(stream, 400, "bad_method", { method, peer: peer?.identity });
    }
    const dst = parseAuthority(authority);
    if (dst === null) return this.respond(stream, 400, "bad_authority", { authority, peer: peer.identity });
    const mesh = this.opts.mesh();
    // A pooled connection outlives a revocation that came after its handshake: check every stream.
    const revoked = mesh.revocations.check(peer.identity, peer.serial);
    if (revoked) {
      return this.respond(stream, 401, "revoked", { peer: peer.identity, reason: revoked.reason });
    }
    const workload: MeshWorkload | undefined = mesh.workloadAt(dst.ip);
    if (!workload || workload.uid !== this.opts.pod.uid) {
      return this.respond(stream, 400, "not_local", { authority, peer: peer.identity });
    }
    const rec = this.opts.inbound.record(
      mesh,
      { identity: peer.identity, ip: peerAddr.ip, port: peerAddr.port },
      dst,
      workload,
      "mutual_tls",
    );
    this.opts.telemetry.connectionOpened(rec);
    if (rec.decision === "DENY") {
      this.respond(stream, 401, "denied", {
        peer: peer.identity,
        authority,
        policy: rec.policy,
        reason: rec.reason,
      });
      this.opts.telemetry.finished(rec, { sent: 0, received: 0, endReason: "denied" });
      return;
    }
    await this.opts.inbound.deliver(this.opts.pod, rec, stream, peer.serial, {
      accepted: () => {
        if (!stream.destroyed) stream.respond({ ":status": 200 });
      },
      failed: (reason) => this.respond(stream, 503, "upstream_failed", { authority, reason }),
    });
  }

  /** Stop taking streams: GOAWAY on every session. */
  drain(): void {
    for (const s of this.sessions) s.close();
  }

  close(): void {
    for (const s of this.sessions) s.destroy();
  }
}
