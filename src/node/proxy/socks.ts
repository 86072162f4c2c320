// SOCKS5 (RFC 1928, CONNECT with no authentication) as the loopback mode's stand-in for
// SO_ORIGINAL_DST: without capture, an application (curl --socks5, a test) names the destination
// it wants in a SOCKS5 request to its pod's outbound or inbound-plaintext listener. Bounded in
// bytes and time; never throws on what the peer sends.
import type { Socket } from "node:net";
import ipaddr from "ipaddr.js";
import type { Destination } from "./route.js";

export const SOCKS_REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export type SocksResult = { ok: true; dst: Destination } | { ok: false; reason: string };

const MAX_HANDSHAKE_BYTES = 600;

type Step = { need: number } | { done: SocksResult; consumed: number; reply?: number };

/** Parse the greeting + request from `buf`; says how many bytes it still needs when incomplete. */
function parse(buf: Buffer, greeted: boolean): Step & { greetingLength?: number } {
  if (!greeted) {
    if (buf.length < 2) return { need: 2 };
    if (buf[0] !== 0x05) return { done: { ok: false, reason: "not a SOCKS5 greeting" }, consumed: 0 };
    const n = buf[1] ?? 0;
    if (buf.length < 2 + n) return { need: 2 + n };
    const methods = buf.subarray(2, 2 + n);
    if (!methods.includes(0x00))
      return {
        done: { ok: false, reason: "SOCKS5 client offers no 'no authentication' method" },
        consumed: 0,
      };
    return { need: 0, greetingLength: 2 + n };
  }
  if (buf.length < 4) return { need: 4 };
  if (buf[0] !== 0x05) return { done: { ok: false, reason: "bad SOCKS5 request version" }, consumed: 0 };
  if (buf[1] !== 0x01)
    return {
      done: { ok: false, reason: `SOCKS5 command ${buf[1]} not supported` },
      consumed: 0,
      reply: SOCKS_REPLY.commandNotSupported,
    };
  const atyp = buf[3];
  let off = 4;
  let ip: string;
  if (atyp === 0x01) {
    if (buf.length < off + 6) return { need: off + 6 };
    ip = ipaddr.fromByteArray([...buf.subarray(off, off + 4)]).toString();
    off += 4;
  } else if (atyp === 0x04) {
    if (buf.length < off + 18) return { need: off + 18 };
    ip = ipaddr.fromByteArray([...buf.subarray(off, off + 16)]).toString();
    off += 16;
  } else {
    return {
      done: { ok: false, reason: "SOCKS5 address type not supported (send an IP address)" },
      consumed: 0,
      reply: SOCKS_REPLY.addressTypeNotSupported,
    };
  }
  const port = buf.readUInt16BE(off);
  off += 2;
  return { done: { ok: true, dst: { ip: ipaddr.process(ip).toString(), port } }, consumed: off };
}

/** Read a SOCKS5 greeting and CONNECT request; bytes after it are pushed back onto the socket. */
export function readSocksRequest(socket: Socket, timeoutMs: number): Promise<SocksResult> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let greeted = false;
    let settled = false;
    const settle = (r: SocksResult, rest?: Buffer, reply?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onEnd);
      if (!r.ok) {
        if (reply !== undefined && !socket.destroyed) socket.end(socksReply(reply));
        else socket.destroy();
      } else if (rest && rest.length > 0) socket.unshift(rest);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > MAX_HANDSHAKE_BYTES) return settle({ ok: false, reason: "SOCKS5 handshake too long" });
      for (;;) {
        const step = parse(buf, greeted);
        if ("done" in step) {
          if (!step.done.ok) return settle(step.done, undefined, step.reply);
          socket.pause();
          return settle(step.done, buf.subarray(step.consumed));
        }
        if (step.greetingLength !== undefined) {
          greeted = true;
          buf = buf.subarray(step.greetingLength);
          socket.write(Buffer.from([0x05, 0x00]));
          continue;
        }
        return;
      }
    };
    const onEnd = (): void => settle({ ok: false, reason: "peer closed during the SOCKS5 handshake" });
    const timer = setTimeout(
      () => settle({ ok: false, reason: `no SOCKS5 request within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("error", onEnd);
  });
}

export function socksReply(code: number): Buffer {
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}
