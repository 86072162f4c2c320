// What the waypoint needs of a downstream request and response, whichever HTTP version carries
// them (node:http's IncomingMessage/ServerResponse or node:http2's compatibility objects).
import type * as http from "node:http";
import * as http2 from "node:http2";

export type DownstreamRequest = http.IncomingMessage | http2.Http2ServerRequest;

export type Downstream = http.ServerResponse | http2.Http2ServerResponse;

/**
 * Answer with headers and nothing else. Over HTTP/2 that is one HEADERS frame with END_STREAM —
 * gRPC's trailers-only form, which is how a status without messages must travel: the
 * compatibility API would send the headers, then an empty DATA frame to end the stream, and
 * gRPC clients read a status in leading headers that are not the end of the stream as no status.
 */
export function respondHeadersOnly(
  res: Downstream,
  status: number,
  headers: Record<string, string | string[]>,
): void {
  if (res instanceof http2.Http2ServerResponse) {
    const stream = res.stream;
    if (stream.destroyed || stream.headersSent) return void res.destroy();
    try {
      stream.respond({ ...headers, ":status": status }, { endStream: true });
    } catch {
      res.destroy();
    }
    return;
  }
  res.writeHead(status, headers);
  res.end();
}
