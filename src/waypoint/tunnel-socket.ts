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
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.inner.destroyed) this.inner.destroy();
    cb(err);
  }

  /** What setTimeout() last set, as on a net.Socket (the HTTP Agent skips re-setting an equal one). */
  timeout: number | undefined = undefined;
  private idleMs = 0;
  /** performance.now() of the last byte either way (kept only while an idle timeout is set). */
  private lastActive = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (Infinity: none armed). */
  private timerDue = Number.POSITIVE_INFINITY;

  /**
   * net.Socket's idle timeout: "timeout" after `ms` without bytes either way (0 turns it off).
   * The timer is lazy: bytes only stamp the time, and the timer, when it fires, emits or re-arms
   * for what is left; the HTTP server's per-request setTimeout(0) / setTimeout(keep-alive) pair
   * and the Agent's per-response call then cost no timer churn.
   */
  setTimeout(ms: number, cb?: () => void): this {
    this.timeout = ms;
    this.idleMs = ms > 0 ? ms : 0;
    // As net.Socket: a callback with 0 is removed, so per-request pairs don't pile up listeners.
    if (cb) {
      if (ms === 0) this.removeListener("timeout", cb);
      else this.once("timeout", cb);
    }
    if (this.idleMs > 0) {
      this.lastActive = performance.now();
      this.arm();
    }
    return this;
  }

  private touch(): void {
    if (this.idleMs <= 0) return;
    this.lastActive = performance.now();
    if (this.timer === undefined) this.arm();
  }

  private arm(): void {
    if (this.destroyed) return;
    const due = this.lastActive + this.idleMs;
    if (this.timer !== undefined && this.timerDue <= due) return; // fires first, then re-arms
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => this.fire(), Math.max(1, due - performance.now()));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
    if (this.destroyed || this.idleMs <= 0) return;
    // Timers may run up to a millisecond early against performance.now().
    if (performance.now() + 1 >= this.lastActive + this.idleMs) this.emit("timeout");
    else this.arm();
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
