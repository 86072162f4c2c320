// HTTP/1.1 on the wire, as small as the benchmark needs: the request the client sends and an
// incremental response parser (status line, headers, Content-Length body) that copes with any
// chunking of the byte stream. Pure, so the unit tests cover the boundaries.

export function requestBytes(host: string, close = false): Buffer {
  return Buffer.from(
    `GET /bench HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ambit-bench\r\n${close ? "Connection: close\r\n" : ""}\r\n`,
    "latin1",
  );
}

export function responseBytes(bodyBytes: number): Buffer {
  const body = Buffer.alloc(bodyBytes, 0x61);
  const head = Buffer.from(
    `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bodyBytes}\r\n\r\n`,
    "latin1",
  );
  return Buffer.concat([head, body]);
}

const CRLFCRLF = Buffer.from("\r\n\r\n", "latin1");

/** Counts complete responses in a byte stream; throws on anything that is not a 200 with a length. */
export class ResponseParser {
  private head: Buffer = Buffer.alloc(0);
  /** Body bytes still to come for the current response (-1: reading headers). */
  private body = -1;

  /** Feed bytes; returns how many responses completed in them. */
  push(chunk: Buffer): number {
    let done = 0;
    let data = chunk;
    while (data.length > 0) {
      if (this.body < 0) {
        const joined = this.head.length > 0 ? Buffer.concat([this.head, data]) : data;
        const end = joined.indexOf(CRLFCRLF);
        if (end < 0) {
          if (joined.length > 16_384) throw new Error("response headers over 16 KiB");
          this.head = Buffer.from(joined);
          return done;
        }
        this.body = parseHead(joined.subarray(0, end).toString("latin1"));
        this.head = Buffer.alloc(0);
        data = joined.subarray(end + 4);
      }
      const take = Math.min(this.body, data.length);
      this.body -= take;
      data = data.subarray(take);
      if (this.body === 0) {
        this.body = -1;
        done++;
      }
    }
    return done;
  }
}

function parseHead(head: string): number {
  const lines = head.split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!status) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`);
  if (status[1] !== "200") throw new Error(`HTTP status ${status[1]}`);
  for (const l of lines.slice(1)) {
    const m = /^content-length:\s*(\d+)\s*$/i.exec(l);
    if (m) return Number(m[1]);
  }
  throw new Error("response without Content-Length");
}

/** Counts complete requests (no bodies: GET) in a byte stream, for the backend. */
export class RequestCounter {
  private tail = "";

  /** Feed bytes; returns the requests completed and whether any asked to close the connection. */
  push(chunk: Buffer): { requests: number; close: boolean } {
    const text = this.tail + chunk.toString("latin1");
    let requests = 0;
    let close = false;
    let from = 0;
    for (;;) {
      const end = text.indexOf("\r\n\r\n", from);
      if (end < 0) break;
      if (/\r\nconnection:\s*close/i.test(text.slice(from, end))) close = true;
      requests++;
      from = end + 4;
    }
    this.tail = text.slice(from);
    if (this.tail.length > 16_384) throw new Error("request headers over 16 KiB");
    return { requests, close };
  }
}
