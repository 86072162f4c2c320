// Answers the waypoint gives itself (denials, no route, upstream failures), as Envoy words them;
// for gRPC callers a trailers-only response with the matching grpc-status, as Envoy sends.
import { respondHeadersOnly, type Downstream } from "./downstream.js";

const GRPC_FOR_HTTP: Record<number, number> = {
  400: 13, // INTERNAL
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  404: 12, // UNIMPLEMENTED
  429: 14, // UNAVAILABLE
  431: 13,
  500: 13,
  502: 14,
  503: 14,
  504: 14,
};

export interface LocalReply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** Write a local reply; returns the HTTP status and gRPC status actually sent. */
export function sendLocalReply(
  res: Downstream,
  reply: LocalReply,
  grpc: boolean,
): { status: number; grpcStatus: string | null; bytes: number } {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return { status: reply.status, grpcStatus: null, bytes: 0 };
  }
  if (grpc) {
    const code = GRPC_FOR_HTTP[reply.status] ?? 2; // UNKNOWN
    respondHeadersOnly(res, 200, {
      ...reply.headers,
      "content-type": "application/grpc",
      "grpc-status": String(code),
      "grpc-message": encodeURIComponent(reply.body),
    });
    return { status: 200, grpcStatus: String(code), bytes: 0 };
  }
  const body = reply.body;
  res.writeHead(reply.status, {
    ...reply.headers,
    "content-type": "text/plain",
    "content-length": String(Buffer.byteLength(body)),
  });
  res.end(body);
  return { status: reply.status, grpcStatus: null, bytes: Buffer.byteLength(body) };
}
