// Header work the waypoint does on every request: W3C trace context (propagate with a new span
// id, or start a trace), Envoy's x-forwarded-client-cert, and the hop-by-hop headers that must
// not cross a proxy (RFC 9110 §7.6.1).
import { createHash } from "node:crypto";
import { randomHex } from "../core/random-hex.js";

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZEROS = /^0+$/;

/** A traceparent to send upstream: the caller's trace with a new parent id, or a new trace. */
export function nextTraceparent(incoming: string | undefined): { traceparent: string; traceId: string } {
  const m = incoming ? TRACEPARENT.exec(incoming.trim().toLowerCase()) : null;
  const span = randomHex(8);
  if (m && m[1] !== "ff" && !ZEROS.test(m[2] ?? "0") && !ZEROS.test(m[3] ?? "0")) {
    const traceId = m[2] ?? "";
    return { traceparent: `00-${traceId}-${span}-${m[4] ?? "01"}`, traceId };
  }
  const traceId = randomHex(16);
  return { traceparent: `00-${traceId}-${span}-01`, traceId };
}

/**
 * Envoy's XFCC element for the caller: `By=` the waypoint's own SPIFFE ID, `Hash=` the SHA-256 of
 * the caller's certificate, `URI=` the caller's SPIFFE ID. Whatever the client sent under that
 * name is replaced, never appended to: a client cannot vouch for itself.
 */
export function xfccValue(by: string, callerUri: string, callerCertDer: Buffer): string {
  let hash = certHashes.get(callerCertDer);
  if (hash === undefined) {
    hash = createHash("sha256").update(callerCertDer).digest("hex");
    certHashes.set(callerCertDer, hash);
  }
  return `By=${by};Hash=${hash};URI=${callerUri}`;
}

/**
 * SHA-256 of a peer certificate, per DER buffer: one per HBONE connection (its peer object keeps
 * the buffer), not one per request; entries go with the connection.
 */
const certHashes = new WeakMap<Buffer, string>();

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "http2-settings",
]);

/** Names a request's Connection header lists, which are hop-by-hop too. */
export function connectionTokens(value: string | string[] | undefined): string[] {
  const v = Array.isArray(value) ? value.join(",") : (value ?? "");
  return v
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== "");
}
