// The typed face of the in-pod capture addon (native/src/ambit_net.c): sockets created inside a
// pod's network namespace, SO_MARK, IP_TRANSPARENT and SO_ORIGINAL_DST. Loaded lazily so that
// everything else runs where the addon is not built (loopback mode, other platforms).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../../core/paths.js";

export interface SocketOptions {
  /** SO_MARK value (e.g. 0x539) so the proxy's own packets bypass redirection. */
  mark?: number;
  /** IP_TRANSPARENT (IPV6_TRANSPARENT for v6): bind to a non-local address. */
  transparent?: boolean;
}

export interface NativeNet {
  /** A listening TCP socket inside the netns (SO_REUSEADDR, non-blocking); fd for Server#listen({fd}). */
  listenTcp(
    netnsPath: string,
    host: string,
    port: number,
    opts?: SocketOptions & { backlog?: number },
  ): Promise<number>;
  /** A bound UDP socket inside the netns; fd for dgram.Socket#bind({fd}). */
  bindUdp(netnsPath: string, host: string, port: number, opts?: SocketOptions): Promise<number>;
  /**
   * A TCP connection made from inside the netns, optionally from `bindHost` (non-local with
   * `transparent`); resolves with a connected non-blocking fd; rejects with `code` set to the
   * errno name (ECONNREFUSED, ETIMEDOUT, ...) after at most timeoutMs.
   */
  connectTcp(
    netnsPath: string,
    host: string,
    port: number,
    opts: SocketOptions & { bindHost?: string; timeoutMs: number },
  ): Promise<number>;
  /** SO_ORIGINAL_DST of an accepted socket; null when unavailable. */
  originalDst(fd: number): { host: string; port: number } | null;
  setMark(fd: number, mark: number): void;
}

interface Binding {
  start(kind: number, netns: string, host: string, port: number, opts: object): Promise<number>;
  originalDst(fd: number): { host: string; port: number } | null;
  setMark(fd: number, mark: number): void;
}

const KIND = { listenTcp: 0, bindUdp: 1, connectTcp: 2 } as const;
let loaded: NativeNet | undefined;

export function addonPath(): string {
  return join(packageRoot(), "native", "build", "Release", "ambit_net.node");
}

export function loadNative(): NativeNet {
  if (loaded) return loaded;
  if (process.platform !== "linux") {
    throw new Error(`in-pod capture needs Linux network namespaces; this is ${process.platform}`);
  }
  const path = addonPath();
  if (!existsSync(path))
    throw new Error(`the capture addon is not built (${path}); run scripts/build-native.sh`);
  const b = createRequire(import.meta.url)(path) as Binding;
  loaded = {
    listenTcp: (ns, host, port, opts = {}) => b.start(KIND.listenTcp, ns, host, port, opts),
    bindUdp: (ns, host, port, opts = {}) => b.start(KIND.bindUdp, ns, host, port, opts),
    connectTcp: (ns, host, port, opts) => b.start(KIND.connectTcp, ns, host, port, opts),
    originalDst: (fd) => b.originalDst(fd),
    setMark: (fd, mark) => b.setMark(fd, mark),
  };
  return loaded;
}

/** The fd behind a net.Socket's or net.Server's `_handle`, or -1. */
export function fdOf(handle: unknown): number {
  const fd = (handle as { fd?: unknown } | null | undefined)?.fd;
  return typeof fd === "number" ? fd : -1;
}
