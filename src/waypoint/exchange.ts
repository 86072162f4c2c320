// One upstream attempt: send the request to an endpoint over HTTP/1.1 or HTTP/2 (through the
// waypoint's HBONE connections) and hand back the response head, or why there is none (connect
// failure, reset, refused stream, per-try timeout). Never throws: untrusted upstreams and
// clients must not be able to raise on the data path.
import * as http from "node:http";
import * as http2 from "node:http2";
import type { Readable } from "node:stream";
import type { ReplayableBody } from "./body.js";
import { UpstreamError, type Endpoint, type Upstreams } from "./upstream.js";

export interface UpstreamRequest {
  method: string;
  path: string;
  authority: string;
  /** Lower-case names, hop-by-hop headers already removed. */
  headers: Map<string, string[]>;
  /** Whether the request has a body at all (false: GET/HEAD without one). */
  hasBody: boolean;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Readable;
  /** Resolves with the trailers (HTTP/2, chunked HTTP/1.1) or null once the body ended. */
  trailers: Promise<Record<string, string | string[]> | null>;
  /** Stop receiving (the client went away, or a retry discards this response). */
  abort(): void;
}

export type AttemptResult =
  | { ok: true; response: UpstreamResponse }
  | {
      ok: false;
      /** Envoy retry-on token this failure counts as. */
      kind: "connect-failure" | "reset" | "refused-stream" | "timeout";
      flag: "UF" | "UC" | "UT";
      detail: string;
    };

function outgoingHeaders(req: UpstreamRequest): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of req.headers) {
    if (k.startsWith(":") || k === "host") continue;
    out[k] = v.length === 1 ? (v[0] ?? "") : v;
  }
  return out;
}

function plainHeaders(
  h: http.IncomingHttpHeaders | http2.IncomingHttpHeaders,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(":")) continue;
    out[k] = typeof v === "number" ? String(v) : v;
  }
  return out;
}

/** HTTP/1.1 attempt over a keep-alive tunnel from the endpoint's agent. */
function http1(
  upstreams: Upstreams,
  e: Endpoint,
  req: UpstreamRequest,
  body: ReplayableBody | null,
  timeoutMs: number | null,
): Promise<AttemptResult> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: AttemptResult): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(r);
    };
    let outgoing: http.ClientRequest;
    try {
      outgoing = httpRequest(upstreams, e, req);
    } catch (err) {
      return settle({ ok: false, kind: "reset", flag: "UC", detail: String(err) });
    }
    const timer =
      timeoutMs !== null
        ? setTimeout(() => {
            outgoing.destroy();
            settle({ ok: false, kind: "timeout", flag: "UT", detail: `no response within ${timeoutMs} ms` });
          }, timeoutMs)
        : undefined;
    outgoing.on("error", (err: Error) => {
      if (body) body.detach(outgoing);
      if (err instanceof UpstreamError)
        settle({ ok: false, kind: "connect-failure", flag: "UF", detail: err.message });
      else settle({ ok: false, kind: "reset", flag: "UC", detail: `upstream reset: ${err.message}` });
    });
    outgoing.on("response", (res: http.IncomingMessage) => {
      if (timer) clearTimeout(timer);
      const trailers = new Promise<Record<string, string | string[]> | null>((done) => {
        res.once("end", () => done(Object.keys(res.trailers).length > 0 ? plainHeaders(res.trailers) : null));
        res.once("close", () => done(null));
        res.once("error", () => done(null));
      });
      settle({
        ok: true,
        response: {
          status: res.statusCode ?? 502,
          headers: plainHeaders(res.headers),
          body: res,
          trailers,
          abort: () => outgoing.destroy(),
        },
      });
    });
    if (body && req.hasBody) body.sendTo(outgoing);
    else outgoing.end();
  });
}

function httpRequest(upstreams: Upstreams, e: Endpoint, req: UpstreamRequest): http.ClientRequest {
  return http.request({
    agent: upstreams.agent(e),
    method: req.method,
    path: req.path,
    headers: { ...outgoingHeaders(req), host: req.authority },
    setHost: false,
  });
}

/** HTTP/2 attempt on the endpoint's multiplexed session. */
async function http2Attempt(
  upstreams: Upstreams,
  e: Endpoint,
  req: UpstreamRequest,
  body: ReplayableBody | null,
  timeoutMs: number | null,
): Promise<AttemptResult> {
  let session: http2.ClientHttp2Session;
  try {
    session = await upstreams.session(e);
  } catch (err) {
    return { ok: false, kind: "connect-failure", flag: "UF", detail: (err as Error).message };
  }
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: AttemptResult): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(r);
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ...outgoingHeaders(req),
          ":method": req.method,
          ":path": req.path,
          ":authority": req.authority,
          ":scheme": "http",
        },
        { endStream: !(body && req.hasBody) },
      );
    } catch (err) {
      return settle({
        ok: false,
        kind: "reset",
        flag: "UC",
        detail: `HTTP/2 request failed: ${String(err)}`,
      });
    }
    const timer =
      timeoutMs !== null
        ? setTimeout(() => {
            stream.close(http2.constants.NGHTTP2_CANCEL);
            settle({ ok: false, kind: "timeout", flag: "UT", detail: `no response within ${timeoutMs} ms` });
          }, timeoutMs)
        : undefined;
    stream.on("error", (err: Error) => {
      if (body) body.detach(stream);
      settle({ ok: false, kind: "reset", flag: "UC", detail: `upstream reset: ${err.message}` });
    });
    stream.on("close", () => {
      if (settled) return;
      const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
      settle({
        ok: false,
        kind: refused ? "refused-stream" : "reset",
        flag: "UC",
        detail: `upstream reset before headers (code ${stream.rstCode ?? "?"})`,
      });
    });
    stream.on("response", (headers) => {
      if (timer) clearTimeout(timer);
      const trailers = new Promise<Record<string, string | string[]> | null>((done) => {
        let got: Record<string, string | string[]> | null = null;
        stream.once("trailers", (t: http2.IncomingHttpHeaders) => (got = plainHeaders(t)));
        stream.once("end", () => done(got));
        stream.once("close", () => done(got));
      });
      settle({
        ok: true,
        response: {
          status: Number(headers[":status"] ?? 502),
          headers: plainHeaders(headers),
          body: stream,
          trailers,
          abort: () => stream.close(http2.constants.NGHTTP2_CANCEL),
        },
      });
    });
    if (body && req.hasBody) body.sendTo(stream);
  });
}

export function attempt(
  upstreams: Upstreams,
  e: Endpoint,
  h2: boolean,
  req: UpstreamRequest,
  body: ReplayableBody | null,
  timeoutMs: number | null,
): Promise<AttemptResult> {
  return h2 ? http2Attempt(upstreams, e, req, body, timeoutMs) : http1(upstreams, e, req, body, timeoutMs);
}
