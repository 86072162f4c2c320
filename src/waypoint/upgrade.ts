// HTTP/1.1 Upgrade passthrough (WebSocket): once the filter chain let the request through, it is
// sent to the endpoint on a connection of its own (never a pooled keep-alive one) with its
// Upgrade/Connection headers; a 101 answer splices client and endpoint as raw bytes (the node
// proxy's splice: backpressure both ways, half-close passed on) with an idle timeout — and any other
// answer is relayed as a normal response, after which the client connection closes. Never throws.
import * as http from "node:http";
import type { Duplex } from "node:stream";
import { splice } from "../node/proxy/splice.js";
import { HOP_BY_HOP } from "./headers.js";
import { applyHeaderOps, type ForwardPlan } from "./plan.js";
import type { Endpoint, Upstreams } from "./upstream.js";

export interface UpgradeRequest {
  method: string;
  path: string;
  authority: string;
  /** End-to-end headers (hop-by-hop already removed). */
  headers: Map<string, string[]>;
  /** The Upgrade header's value, sent on as it came. */
  upgrade: string;
}

export interface Downstream101 {
  /** The client's connection, detached from the HTTP/1.1 parser and paused. */
  socket: Duplex;
  /** Bytes the client sent after the request head (already upgrade payload). */
  head: Buffer;
  /** Relays a non-101 response (a ServerResponse bound to `socket`). */
  res: http.ServerResponse;
}

export type UpgradeOutcome =
  | {
      ok: true;
      status: number;
      /** Bytes from client to endpoint and back (after the heads). */
      requestBytes: number;
      responseBytes: number;
      upstreamMs: number;
      /** Envoy flags: DC the client went away, UPE the endpoint broke off a relayed body. */
      flags: string[];
    }
  | { ok: false; kind: "connect-failure" | "reset" | "timeout"; flag: "UF" | "UC" | "UT"; detail: string };

/** Headers of a response as raw lines, hop-by-hop ones dropped and the route's changes applied. */
function responseHeaders(plan: ForwardPlan, up: http.IncomingMessage): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  const raw = up.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = (raw[i] ?? "").toLowerCase();
    if (HOP_BY_HOP.has(k)) continue;
    const list = headers.get(k);
    if (list) list.push(raw[i + 1] ?? "");
    else headers.set(k, [raw[i + 1] ?? ""]);
  }
  applyHeaderOps(headers, plan.backend.responseHeaders);
  applyHeaderOps(headers, plan.responseHeaders);
  return headers;
}

/** The 101 head for the client: the endpoint's status text and headers, our hop-by-hop pair. */
function head101(up: http.IncomingMessage, headers: Map<string, string[]>): Buffer {
  let text = `HTTP/1.1 101 ${up.statusMessage || "Switching Protocols"}\r\n`;
  // Node's parser has already refused CR/LF inside names and values, so these lines are safe.
  for (const [k, vs] of headers) for (const v of vs) text += `${k}: ${v}\r\n`;
  text += `upgrade: ${String(up.headers.upgrade ?? "")}\r\nconnection: Upgrade\r\n\r\n`;
  return Buffer.from(text, "latin1");
}

/**
 * Splice two upgraded connections with the node proxy's splice (backpressure, half-close, a
 * reset of either side resets the other), closed after `idleMs` without a byte either way.
 */
function spliceUpgraded(
  client: Duplex,
  endpoint: Duplex,
  idleMs: number,
): Promise<{ requestBytes: number; responseBytes: number; flags: string[] }> {
  return new Promise((resolve) => {
    const flags: string[] = [];
    const s = splice(client, endpoint, { a: "client", b: "upstream" }, (end) =>
      resolve({ requestBytes: end.aToB, responseBytes: end.bToA, flags }),
    );
    const idle = (): void => {
      if (!flags.includes("SI")) flags.push("SI"); // Envoy's stream idle timeout flag
      s.close("idle");
    };
    type Timed = Duplex & { setTimeout?(ms: number, cb: () => void): unknown };
    (client as Timed).setTimeout?.(idleMs, idle);
    (endpoint as Timed).setTimeout?.(idleMs, idle);
  });
}

/** One upgrade attempt on a fresh connection to `e`. */
export async function forwardUpgrade(
  upstreams: Pick<Upstreams, "connect">,
  e: Endpoint,
  plan: ForwardPlan,
  req: UpgradeRequest,
  down: Downstream101,
  opts: { timeoutMs: number | null; idleMs: number },
): Promise<UpgradeOutcome> {
  let conn: Duplex;
  const sentAt = performance.now();
  try {
    conn = await upstreams.connect(e);
  } catch (err) {
    return { ok: false, kind: "connect-failure", flag: "UF", detail: (err as Error).message };
  }
  if (down.socket.destroyed) {
    conn.destroy();
    return { ok: true, status: 0, requestBytes: 0, responseBytes: 0, upstreamMs: 0, flags: ["DC"] };
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of req.headers) {
    if (k.startsWith(":") || k === "host") continue;
    headers[k] = v.length === 1 ? (v[0] ?? "") : v;
  }
  headers["host"] = req.authority;
  headers["connection"] = "Upgrade";
  headers["upgrade"] = req.upgrade;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: UpgradeOutcome): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      down.socket.off("close", onClientGone);
      resolve(r);
    };
    let outgoing: http.ClientRequest;
    try {
      outgoing = http.request({
        method: req.method,
        path: req.path,
        headers,
        setHost: false,
        // No agent: with createConnection alone the request gets this connection and no other.
        createConnection: () => conn,
      });
    } catch (err) {
      conn.destroy();
      return settle({ ok: false, kind: "reset", flag: "UC", detail: String(err) });
    }
    const onClientGone = (): void => {
      outgoing.destroy();
      settle({ ok: true, status: 0, requestBytes: 0, responseBytes: 0, upstreamMs: 0, flags: ["DC"] });
    };
    down.socket.once("close", onClientGone);
    const timer =
      opts.timeoutMs !== null
        ? setTimeout(() => {
            outgoing.destroy();
            settle({
              ok: false,
              kind: "timeout",
              flag: "UT",
              detail: `no response within ${opts.timeoutMs} ms`,
            });
          }, opts.timeoutMs)
        : undefined;
    outgoing.on("error", (err: Error) =>
      settle({ ok: false, kind: "reset", flag: "UC", detail: `upstream reset: ${err.message}` }),
    );
    outgoing.on("upgrade", (up: http.IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
      if (settled) return void upSocket.destroy();
      const upstreamMs = performance.now() - sentAt;
      if (timer) clearTimeout(timer);
      down.socket.off("close", onClientGone);
      const head = head101(up, responseHeaders(plan, up));
      down.socket.write(head);
      if (upHead.length > 0) down.socket.write(upHead);
      if (down.head.length > 0) upSocket.write(down.head);
      void spliceUpgraded(down.socket, upSocket, opts.idleMs).then((s) =>
        settle({
          ok: true,
          status: 101,
          requestBytes: s.requestBytes + down.head.length,
          responseBytes: s.responseBytes + upHead.length + head.length,
          upstreamMs,
          flags: s.flags,
        }),
      );
    });
    outgoing.on("response", (up: http.IncomingMessage) => {
      // Not upgraded: relay it like any response; the client connection closes afterwards.
      const upstreamMs = performance.now() - sentAt;
      if (timer) clearTimeout(timer);
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of responseHeaders(plan, up)) out[k] = v.length === 1 ? (v[0] ?? "") : v;
      let bytes = 0;
      const relayed = (flags: string[]): void =>
        settle({
          ok: true,
          status: up.statusCode ?? 502,
          requestBytes: 0,
          responseBytes: bytes,
          upstreamMs,
          flags,
        });
      try {
        down.res.writeHead(up.statusCode ?? 502, out);
      } catch {
        up.destroy();
        down.socket.destroy();
        return relayed(["DC"]);
      }
      up.on("data", (d: Buffer) => (bytes += d.length));
      up.pipe(down.res);
      up.once("end", () => {
        conn.destroy();
        relayed([]);
      });
      up.once("error", () => undefined);
      up.once("close", () => {
        if (!up.complete) {
          down.socket.destroy();
          relayed(["UPE"]);
        }
      });
    });
    outgoing.end();
  });
}
