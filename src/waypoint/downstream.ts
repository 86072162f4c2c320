// What the waypoint needs of a downstream request and response, whichever HTTP version carries
// them (node:http's IncomingMessage/ServerResponse or node:http2's compatibility objects).
import type * as http from "node:http";
import type * as http2 from "node:http2";

export type DownstreamRequest = http.IncomingMessage | http2.Http2ServerRequest;

export type Downstream = http.ServerResponse | http2.Http2ServerResponse;
