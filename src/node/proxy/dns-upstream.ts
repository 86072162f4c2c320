// One exchange with one of the node's resolvers, for the DNS proxy's forwarding: UDP (a fresh
// connected socket per query, so both the source port and the id are random) or TCP (RFC 1035
// §4.2.2, length-prefixed), within a deadline. A reply counts only if it carries our id and
// echoes our question; it is handed back with the client's original id. Every failure resolves
// to undefined; nothing here throws.
import { randomInt } from "node:crypto";
import * as dgram from "node:dgram";
import * as net from "node:net";
import * as dns from "dns-packet";

export interface Upstream {
  host: string;
  port: number;
}

/** Cancel hooks of exchanges in flight, so the proxy can end them all on close. */
export type CancelSet = Set<() => void>;

function sameQuestion(a: dns.Question, b: dns.Question | undefined): boolean {
  return (
    b !== undefined &&
    a.name.toLowerCase() === b.name.toLowerCase() &&
    a.type === b.type &&
    (a.class ?? "IN") === (b.class ?? "IN")
  );
}

/** The reply, if `reply` answers our query `id` about `question`; with `clientId` put back. */
function matchReply(reply: Buffer, id: number, question: dns.Question, clientId: number): Buffer | undefined {
  let p: dns.DecodedPacket;
  try {
    p = dns.decode(reply);
  } catch {
    return undefined;
  }
  if (p.type !== "response" || p.id !== id || !sameQuestion(question, p.questions?.[0])) return undefined;
  const out = Buffer.from(reply);
  out.writeUInt16BE(clientId, 0);
  return out;
}

/**
 * Sends `query` (wire format; its id is replaced by a random one) to `up` and resolves with the
 * matching reply, or undefined on timeout, error or a mismatched TCP reply.
 */
export function exchange(
  transport: "udp" | "tcp",
  up: Upstream,
  query: Buffer,
  question: dns.Question,
  timeoutMs: number,
  inFlight: CancelSet,
): Promise<Buffer | undefined> {
  const clientId = query.readUInt16BE(0);
  const id = randomInt(0, 65536);
  const out = Buffer.from(query);
  out.writeUInt16BE(id, 0);
  return new Promise((resolve) => {
    let finished = false;
    let cleanup = (): void => undefined;
    const finish = (reply: Buffer | undefined): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      inFlight.delete(cancel);
      try {
        cleanup();
      } catch {
        // already closed
      }
      resolve(reply);
    };
    const cancel = (): void => finish(undefined);
    const timer = setTimeout(cancel, timeoutMs);
    inFlight.add(cancel);
    try {
      cleanup = transport === "udp" ? viaUdp() : viaTcp();
    } catch {
      finish(undefined);
    }

    function viaUdp(): () => void {
      const sock = dgram.createSocket(net.isIPv6(up.host) ? "udp6" : "udp4");
      sock.on("error", cancel);
      sock.on("message", (msg) => {
        const reply = matchReply(msg, id, question, clientId);
        if (reply) finish(reply);
      });
      // Connected: the kernel drops datagrams from anyone else and reports ICMP errors to us.
      // The callback gets the error when connecting fails (e.g. no free port), though typed without.
      sock.connect(up.port, up.host, (...args: unknown[]) => {
        if (finished) return;
        if (args[0]) return cancel();
        try {
          sock.send(out, (err) => err && cancel());
        } catch {
          cancel();
        }
      });
      return () => sock.close();
    }

    function viaTcp(): () => void {
      const conn = net.connect({ host: up.host, port: up.port });
      const head = Buffer.alloc(2);
      head.writeUInt16BE(out.length);
      conn.on("error", cancel);
      conn.on("close", cancel);
      conn.on("connect", () => conn.write(Buffer.concat([head, out])));
      let buf = Buffer.alloc(0);
      conn.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) return;
        finish(matchReply(buf.subarray(2, 2 + len), id, question, clientId));
      });
      return () => conn.destroy();
    }
  });
}
