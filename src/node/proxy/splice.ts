// Copy bytes both ways between two duplex streams (TCP socket, HTTP/2 CONNECT stream) with
// backpressure (the reader pauses while the writer is full) and half-close (one side's end
// ends the other side's writing only). Ends once both sides have closed, or at once when either
// side fails or `close` is called; reports bytes each way and why it ended.
import type { Duplex } from "node:stream";

export interface SpliceEnd {
  /** Bytes read from `a` and written to `b`. */
  aToB: number;
  /** Bytes read from `b` and written to `a`. */
  bToA: number;
  /** "" for a clean close by both sides, else the first failure or the reason given to close(). */
  reason: string;
}

export interface Splice {
  /** Tear both sides down now (e.g. policy denied the connection). */
  close(reason: string): void;
  readonly bytes: { aToB: number; bToA: number };
}

function errorText(side: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return `${side} ${e?.code ?? e?.message ?? "error"}`;
}

export interface SpliceOptions {
  /**
   * Batch writes into `b` (resp. `a`) made in one turn of the event loop into one writev: cork on
   * the first chunk, uncork in setImmediate (the check phase right after the poll that delivered
   * the data, so nothing waits for more I/O). Pays when the source is an HTTP/2 stream and the
   * destination a TCP socket: Node splits every 16 KiB DATA frame at TLS record boundaries, so a
   * bulk transfer arrives as a 16 KiB chunk plus a tiny one, which would otherwise cost one write
   * syscall each.
   */
  batchAToB?: boolean;
  batchBToA?: boolean;
}

/**
 * Most bytes a destination may hold in its write queue before its source is paused. Higher than
 * a stream's default 16 KiB high-water mark on purpose: a TCP read brings up to 64 KiB, so
 * pausing at `write() === false` would stop and restart the source on every read of a bulk
 * transfer (a readStop/readStart pair, an epoll_ctl each, and an extra event-loop turn) although
 * the destination drains it in the same turn. A batch (~5 HBONE frames a turn) fits too.
 */
const WRITE_LIMIT = 256 * 1024;

/**
 * Copy `src` into `dst` with backpressure, as `src.pipe(dst)` does (pause while `dst` holds
 * WRITE_LIMIT bytes or more, end `dst` when `src` ends), counting bytes in the same listener,
 * optionally batching writes.
 */
function pump(src: Duplex, dst: Duplex, count: (n: number) => void, batch: boolean): void {
  let corked = false;
  let paused = false;
  const pause = (): void => {
    paused = true;
    src.pause();
  };
  const uncork = (): void => {
    corked = false;
    if (dst.destroyed) return;
    dst.uncork();
    // Backpressure is judged once the batch went out: only what the kernel did not take counts,
    // against the same bound as each write (the socket's 16 KiB mark would pause the HTTP/2
    // stream whenever the application lags a little behind a bulk transfer).
    if (dst.writableLength >= WRITE_LIMIT) pause();
  };
  src.on("data", (chunk: Buffer) => {
    count(chunk.length);
    if (dst.destroyed || dst.writableEnded) return;
    if (batch && !corked) {
      corked = true;
      dst.cork();
      setImmediate(uncork);
    }
    // While corked the chunk is held until uncork: pausing at the socket's 16 KiB mark here would
    // stall the HTTP/2 stream on every turn of a bulk transfer. 'drain' resumes a paused source.
    dst.write(chunk);
    if (dst.writableLength >= WRITE_LIMIT) pause();
  });
  dst.on("drain", () => {
    if (!paused || src.destroyed) return;
    paused = false;
    src.resume();
  });
  src.once("end", () => {
    if (!dst.destroyed && !dst.writableEnded) dst.end();
  });
  // As pipe() does: start the flow (a SOCKS listener paused the socket during its handshake).
  if (src.readableFlowing !== true) src.resume();
}

export function splice(
  a: Duplex,
  b: Duplex,
  names: { a: string; b: string },
  onEnd: (end: SpliceEnd) => void,
  opts: SpliceOptions = {},
): Splice {
  const bytes = { aToB: 0, bToA: 0 };
  let closed = 0;
  let reason = "";
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    onEnd({ ...bytes, reason });
  };
  const fail = (why: string): void => {
    if (reason === "") reason = why;
    a.destroy();
    b.destroy();
  };
  const onClose = (side: Duplex, other: Duplex, name: string) => (): void => {
    closed++;
    // A side that closed before its peer finished sending was reset, not closed politely.
    if (!side.readableEnded && !done && reason === "") fail(`${name} reset`);
    else if (!other.writableEnded && !other.destroyed) other.end();
    if (closed === 2) finish();
  };
  a.on("error", (err) => fail(errorText(names.a, err)));
  b.on("error", (err) => fail(errorText(names.b, err)));
  a.on("close", onClose(a, b, names.a));
  b.on("close", onClose(b, a, names.b));
  pump(a, b, (n) => (bytes.aToB += n), opts.batchAToB === true);
  pump(b, a, (n) => (bytes.bToA += n), opts.batchBToA === true);
  return {
    bytes,
    close(why: string): void {
      if (done) return;
      fail(why);
    },
  };
}
