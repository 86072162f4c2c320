// The waypoint's HBONE listener (port 15008): mutual TLS 1.3 with the waypoint's certificate,
// client certificates from the trust domain only (revocation checked per handshake and per
// stream), HTTP/2, one CONNECT stream per application connection. What happens to a stream
// (L7 or TCP) is the handler's business; this module only admits and refuses.
import * as http2 from "node:http2";
import type * as net from "node:net";
import * as tls from "node:tls";
import type { IssuedCertificate } from "../identity/cert-types.js";
import { checkTlsPeer, type VerifiedPeer } from "../identity/peer-check.js";
import type { RevocationList } from "../model/revocation.js";
import { HBONE_CONNECTION_WINDOW, HBONE_SETTINGS, parseAuthority } from "../node/proxy/hbone-server.js";
import { canonicalIp } from "../node/proxy/mesh.js";
import type { Destination } from "../node/proxy/route.js";

/** The HBONE peer of a stream: who called (its certificate), and from where. */
export interface HbonePeer extends VerifiedPeer {
  ip: string;
  port: number;
  /** The peer certificate, DER (for the XFCC Hash). */
  certDer: Buffer;
}

export type HboneRefusal =
  | "tls_handshake"
  | "alpn"
  | "no_client_certificate"
  | "untrusted_certificate"
  | "trust_domain"
  | "revoked"
  | "bad_method"
  | "bad_authority";

export interface WaypointHboneOptions {
  trustDomain: string;
  revocations: () => RevocationList;
  /** A CONNECT stream admitted: answer it (200 or an error status) and carry it. */
  onStream(
    stream: http2.ServerHttp2Stream,
    peer: HbonePeer,
    dst: Destination,
    headers: http2.IncomingHttpHeaders,
  ): void;
  onRefused(reason: HboneRefusal, detail: Record<string, unknown>): void;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
}

const PEER = Symbol("ambit.waypoint.peer");

interface PeerSocket extends tls.TLSSocket {
  [PEER]?: HbonePeer;
}

export class WaypointHbone {
  private readonly tlsServer: tls.Server;
  private readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private certKey = "";

  constructor(private readonly opts: WaypointHboneOptions) {
    this.tlsServer = tls.createServer({
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ["h2"],
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
    });
    this.tlsServer.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) =>
      this.refuse(socket, "tls_handshake", { detail: err.code ?? err.message }),
    );
    this.tlsServer.on("secureConnection", (socket: PeerSocket) => this.onSecure(socket));
    this.h2 = http2.createServer({ settings: HBONE_SETTINGS, maxSessionMemory: 64, maxHeaderListPairs: 64 });
    this.h2.on("session", (session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      session.on("error", () => undefined);
      try {
        session.setLocalWindowSize(HBONE_CONNECTION_WINDOW);
      } catch {
        // closed meanwhile
      }
      session.setTimeout(opts.idleTimeoutMs ?? 300_000, () => session.close());
    });
    this.h2.on("stream", (stream, headers) => this.onStream(stream, headers));
  }

  useCertificate(cert: IssuedCertificate, rootsPem: string): void {
    const key = `${cert.serial}\n${rootsPem}`;
    if (key === this.certKey) return;
    this.certKey = key;
    this.tlsServer.setSecureContext({
      key: cert.privateKeyPem,
      cert: cert.certChainPem.join(""),
      ca: rootsPem,
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
    });
  }

  get ready(): boolean {
    return this.certKey !== "";
  }

  accept(socket: net.Socket): void {
    if (!this.ready) {
      this.refuse(socket, "tls_handshake", { detail: "waypoint certificate not ready" });
      return;
    }
    this.tlsServer.emit("connection", socket);
  }

  private refuse(socket: net.Socket, reason: HboneRefusal, detail: Record<string, unknown>): void {
    this.opts.onRefused(reason, {
      peer: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`,
      ...detail,
    });
    socket.destroy();
  }

  private onSecure(socket: PeerSocket): void {
    if (socket.alpnProtocol !== "h2")
      return this.refuse(socket, "alpn", { detail: `ALPN ${String(socket.alpnProtocol)} is not h2` });
    const raw = socket.getPeerCertificate();
    if (!raw || Object.keys(raw).length === 0)
      return this.refuse(socket, "no_client_certificate", { detail: "no client certificate" });
    const check = checkTlsPeer(socket, this.opts.trustDomain, this.opts.revocations());
    if (!check.ok) {
      const reason: HboneRefusal =
        check.code === "AMBIT_E_REVOKED"
          ? "revoked"
          : check.code === "AMBIT_E_TRUST_DOMAIN"
            ? "trust_domain"
            : "untrusted_certificate";
      return this.refuse(socket, reason, { detail: check.reason });
    }
    socket[PEER] = {
      ...check.peer,
      ip: canonicalIp(socket.remoteAddress),
      port: socket.remotePort ?? 0,
      certDer: raw.raw,
    };
    this.h2.emit("connection", socket);
  }

  private answer(stream: http2.ServerHttp2Stream, status: number): void {
    if (stream.destroyed || stream.closed) return;
    try {
      stream.respond({ ":status": status }, { endStream: true });
    } catch {
      stream.destroy();
    }
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => undefined);
    const peer = (stream.session?.socket as PeerSocket | undefined)?.[PEER];
    if (headers[":method"] !== "CONNECT" || peer === undefined) {
      this.opts.onRefused("bad_method", { method: headers[":method"], peer: peer?.identity });
      return this.answer(stream, 400);
    }
    const dst = parseAuthority(headers[":authority"]);
    if (dst === null) {
      this.opts.onRefused("bad_authority", { authority: headers[":authority"], peer: peer.identity });
      return this.answer(stream, 400);
    }
    const revoked = this.opts.revocations().check(peer.identity, peer.serial);
    if (revoked) {
      this.opts.onRefused("revoked", { peer: peer.identity, reason: revoked.reason });
      return this.answer(stream, 401);
    }
    this.opts.onStream(stream, peer, dst, headers);
  }

  drain(): void {
    for (const s of this.sessions) s.close();
  }

  close(): void {
    for (const s of this.sessions) s.destroy();
  }
}
