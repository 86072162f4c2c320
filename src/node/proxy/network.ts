// How the node proxy reaches a pod's network: open its listeners, learn a captured connection's
// original destination, and dial from the pod. Two implementations share everything after the
// socket is accepted: in-pod capture (sockets created in the pod's netns by the native addon, the
// destination from SO_ORIGINAL_DST) and loopback mode (listeners on the pod's loopback address,
// the destination named by a SOCKS5 request), used before capture exists and by fast tests.
import type * as dgram from "node:dgram";
import * as net from "node:net";
import { readSocksRequest, SOCKS_REPLY, socksReply } from "./socks.js";
import type { Destination } from "./route.js";

export interface LocalPod {
  uid: string;
  ip: string;
  /** The pod's network namespace (capture mode), e.g. /var/run/netns/NAME. */
  netns?: string;
}

export interface DialOptions {
  timeoutMs: number;
  /**
   * Keep writing after the peer's FIN (application connections being spliced); tunnels pass
   * false so that a peer's close tears the HTTP/2 session down. Default true.
   */
  halfOpen?: boolean;
  /**
   * Inbound delivery: the original client's address, kept as the connection's source so the
   * application sees who called (capture mode spoofs it with IP_TRANSPARENT; loopback mode
   * cannot and uses the pod's address).
   */
  source?: string;
}

/** A connection intercepted on the outbound or inbound-plaintext listener. */
export interface Intercepted {
  dst: Destination;
  /** The proxy has an upstream: let the application's bytes flow. */
  confirm(): void;
  /** The connection will not be served; `denied` when policy refused it. */
  refuse(why: "denied" | "unreachable"): void;
}

export interface PodNetwork {
  readonly mode: "loopback" | "capture";
  /** `halfOpen` as for dial: true for application-facing listeners, false for HBONE. */
  listen(
    pod: LocalPod,
    port: number,
    onConnection: (socket: net.Socket) => void,
    halfOpen?: boolean,
  ): Promise<net.Server>;
  /** The destination a captured connection was meant for; null (socket destroyed) when unknown. */
  intercept(pod: LocalPod, socket: net.Socket): Promise<Intercepted | { error: string }>;
  /** A TCP connection from inside the pod, bypassing capture; rejects after `timeoutMs`. */
  dial(pod: LocalPod, dst: Destination, opts: DialOptions): Promise<net.Socket>;
  /** Capture only: a UDP socket bound inside the pod (the DNS proxy's). */
  bindUdp?(pod: LocalPod, port: number): Promise<dgram.Socket>;
  /** Capture only: put the pod's traffic redirection in place (idempotent). */
  redirect?(pod: LocalPod): Promise<void>;
  /** Capture only: remove it, when the pod leaves the mesh (never on a node-proxy shutdown). */
  unredirect?(pod: LocalPod): Promise<void>;
}

export interface LoopbackNetworkOptions {
  /** Time allowed for the SOCKS5 handshake. Default 5 s. */
  handshakeTimeoutMs?: number;
}

function connectTcp(
  dst: Destination,
  timeoutMs: number,
  halfOpen: boolean,
  localAddress?: string,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: dst.ip,
      port: dst.port,
      allowHalfOpen: halfOpen,
      noDelay: true,
      ...(localAddress !== undefined ? { localAddress } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect to ${dst.ip}:${dst.port} timed out`), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export class LoopbackNetwork implements PodNetwork {
  readonly mode = "loopback" as const;
  private readonly handshakeTimeoutMs: number;

  constructor(opts: LoopbackNetworkOptions = {}) {
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 5_000;
  }

  listen(
    pod: LocalPod,
    port: number,
    onConnection: (socket: net.Socket) => void,
    halfOpen = true,
  ): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: halfOpen, noDelay: true }, onConnection);
      server.once("error", reject);
      server.listen({ host: pod.ip, port, backlog: 1024 }, () => {
        server.off("error", reject);
        resolve(server);
      });
    });
  }

  async intercept(_pod: LocalPod, socket: net.Socket): Promise<Intercepted | { error: string }> {
    const r = await readSocksRequest(socket, this.handshakeTimeoutMs);
    if (!r.ok) return { error: r.reason };
    return {
      dst: r.dst,
      confirm: () => {
        if (socket.destroyed) return;
        socket.write(socksReply(SOCKS_REPLY.succeeded));
        socket.resume();
      },
      refuse: (why) => {
        if (socket.destroyed) return;
        socket.end(socksReply(why === "denied" ? SOCKS_REPLY.notAllowed : SOCKS_REPLY.connectionRefused));
      },
    };
  }

  dial(pod: LocalPod, dst: Destination, opts: DialOptions): Promise<net.Socket> {
    // Bind to the pod's address so peers see the pod, as they would from inside its netns.
    return connectTcp(dst, opts.timeoutMs, opts.halfOpen ?? true, pod.ip);
  }
}
