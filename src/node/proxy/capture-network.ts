// In-pod capture (DESIGN §4): the node proxy's sockets live inside each pod's network namespace.
// Listeners and outgoing connections are created there by the native addon (Node cannot enter a
// namespace), carry the packet mark that exempts them from the pod's redirection rules, and are
// adopted by Node. A captured connection's destination is its SO_ORIGINAL_DST; delivery to the
// application keeps the original client's address with IP_TRANSPARENT.
import * as dgram from "node:dgram";
import * as net from "node:net";
import { fdOf, type NativeNet } from "../capture/native.js";
import { installRedirection, PROXY_MARK, removeRedirection } from "../capture/rules.js";
import type { Destination } from "./route.js";
import type { DialOptions, Intercepted, LocalPod, PodNetwork } from "./network.js";

function netnsOf(pod: LocalPod): string {
  if (!pod.netns) throw new Error(`pod ${pod.ip} has no network namespace registered`);
  return pod.netns;
}

export class CaptureNetwork implements PodNetwork {
  readonly mode = "capture" as const;

  constructor(private readonly native: NativeNet) {}

  async listen(
    pod: LocalPod,
    port: number,
    onConnection: (socket: net.Socket) => void,
    halfOpen = true,
  ): Promise<net.Server> {
    const fd = await this.native.listenTcp(netnsOf(pod), "0.0.0.0", port, {
      mark: PROXY_MARK,
      backlog: 1024,
    });
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: halfOpen, noDelay: true }, onConnection);
      server.once("error", reject);
      server.listen({ fd }, () => {
        server.off("error", reject);
        resolve(server);
      });
    });
  }

  intercept(_pod: LocalPod, socket: net.Socket): Promise<Intercepted | { error: string }> {
    socket.pause();
    const dst = this.native.originalDst(fdOf((socket as unknown as { _handle: unknown })._handle));
    if (dst === null) return Promise.resolve({ error: "no original destination (SO_ORIGINAL_DST)" });
    // A connection made straight to the proxy's port (not redirected) reports that port itself.
    if (dst.host === socket.localAddress && dst.port === socket.localPort) {
      return Promise.resolve({ error: `connection to ${dst.host}:${dst.port} was not redirected` });
    }
    const target: Destination = { ip: dst.host, port: dst.port };
    return Promise.resolve({
      dst: target,
      confirm: () => {
        if (!socket.destroyed) socket.resume();
      },
      // The application's connect already succeeded (the proxy accepted it); a reset is the
      // closest thing to a refusal it can see.
      refuse: () => {
        if (!socket.destroyed) socket.resetAndDestroy();
      },
    });
  }

  async dial(pod: LocalPod, dst: Destination, opts: DialOptions): Promise<net.Socket> {
    const spoof =
      opts.source !== undefined && opts.source !== pod.ip && net.isIP(opts.source) === net.isIP(dst.ip);
    const fd = await this.native.connectTcp(netnsOf(pod), dst.ip, dst.port, {
      mark: PROXY_MARK,
      timeoutMs: opts.timeoutMs,
      ...(spoof ? { bindHost: opts.source, transparent: true } : {}),
    });
    const socket = new net.Socket({
      fd,
      allowHalfOpen: opts.halfOpen ?? true,
      readable: true,
      writable: true,
    });
    socket.setNoDelay(true);
    return socket;
  }

  async bindUdp(pod: LocalPod, port: number): Promise<dgram.Socket> {
    // Loopback, not the wildcard: replies must leave from the address REDIRECT sent the query to
    // (127.0.0.1) for conntrack to turn them back into answers from the address the pod asked.
    const fd = await this.native.bindUdp(netnsOf(pod), "127.0.0.1", port, { mark: PROXY_MARK });
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket("udp4");
      socket.once("error", reject);
      socket.bind({ fd }, () => {
        socket.off("error", reject);
        resolve(socket);
      });
    });
  }

  redirect(pod: LocalPod): Promise<void> {
    return installRedirection(netnsOf(pod));
  }

  unredirect(pod: LocalPod): Promise<void> {
    return pod.netns ? removeRedirection(pod.netns) : Promise.resolve();
  }
}
