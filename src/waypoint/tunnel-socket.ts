// An HBONE CONNECT stream dressed as a socket, so that Node's HTTP/1.1 and HTTP/2 servers and
// clients can run over it (`server.emit("connection", s)`, `createConnection: () => s`). Writes
// are handed to the stream as Buffers one at a time: Node 20's Http2Stream corrupts the first
// bytes of a corked, mixed string/Buffer writev (the HTTP/1.1 client's request head), so the
// wrapper concatenates a writev itself. Backpressure passes through both ways.
import { Duplex } from "node:stream";

type Inner = Duplex & { close?: (code?: number) => void };

export interface TunnelInfo {
  /** The caller's address as the HBONE peer (for logs; the tunnel has no TCP peer of its own). */
  remoteAddress: string;
  remotePort: number;
}

export class TunnelSocket extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly encrypted = false;

  constructor(
    readonly inner: Inner,
    info: TunnelInfo,
  ) {
    super({ allowHalfOpen: true });
    this.remoteAddress = info.remoteAddress;
    this.remotePort = info.remotePort;
    inner.on("data", (d: Buffer) => {
      this.touch();
      if (!this.push(d)) inner.pause();
    });
    inner.on("end", () => this.push(null));
    inner.on("error", (err: Error) => this.destroy(err));
    inner.on("close", () => {
      if (!this.destroyed) this.destroy();
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner.destroyed) return cb(new Error("tunnel closed"));
    this.touch();
    this.inner.write(typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk, cb);
  }

  override _writev(
    chunks: { chunk: Buffer | string; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    if (this.inner.destroyed) return cb(new Error("tunnel closed"));
    this.touch();
    const bufs = chunks.map((c) =>
      typeof c.chunk === "string" ? Buffer.from(c.chunk, c.encoding) : c.chunk,
    );
    this.inner.write(bufs.length === 1 ? bufs[0] : Buffer.concat(bufs), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.idle) clearTimeout(this.idle);
    if (!this.inner.destroyed) this.inner.destroy();
    cb(err);
  }

  /** net.Socket's idle timeout: "timeout" after `ms` without bytes either way (0 turns it off). */
  setTimeout(ms: number, cb?: () => void): this {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    this.idleMs = ms;
    if (cb) this.once("timeout", cb);
    this.touch();
    return this;
  }

  private idle: NodeJS.Timeout | undefined;
  private idleMs = 0;

  private touch(): void {
    if (this.idleMs <= 0 || this.destroyed) return;
    if (this.idle) this.idle.refresh();
    else {
      this.idle = setTimeout(() => this.emit("timeout"), this.idleMs);
      this.idle.unref();
    }
  }

  // What the HTTP machinery calls on a net.Socket; the tunnel has no TCP knobs of its own.
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }
  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
