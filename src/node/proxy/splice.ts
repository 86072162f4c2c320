// Copy bytes both ways between two duplex streams (TCP socket, HTTP/2 CONNECT stream) with
// backpressure (pipe pauses the reader while the writer is full) and half-close (one side's end
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

export function splice(
  a: Duplex,
  b: Duplex,
  names: { a: string; b: string },
  onEnd: (end: SpliceEnd) => void,
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
  a.on("data", (chunk: Buffer) => (bytes.aToB += chunk.length));
  b.on("data", (chunk: Buffer) => (bytes.bToA += chunk.length));
  a.on("error", (err) => fail(errorText(names.a, err)));
  b.on("error", (err) => fail(errorText(names.b, err)));
  a.on("close", onClose(a, b, names.a));
  b.on("close", onClose(b, a, names.b));
  a.pipe(b);
  b.pipe(a);
  return {
    bytes,
    close(why: string): void {
      if (done) return;
      fail(why);
    },
  };
}
