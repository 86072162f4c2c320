// SOCKS5 CONNECT (no authentication, IPv4): how an application in a loopback-mode pod names its
// destination to the Ambit node proxy's outbound listener.
import * as net from "node:net";

export interface Target {
  host: string;
  port: number;
}

/** A connected socket to `target`, through `socks` when given; rejects after `timeoutMs`. */
export function dial(target: Target, socks?: Target, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const first = socks ?? target;
    const s = net.connect({ host: first.host, port: first.port, noDelay: true });
    const timer = setTimeout(() => fail(new Error(`dial ${target.host}:${target.port}: timeout`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    s.once("error", fail);
    s.once("connect", () => {
      if (!socks) {
        clearTimeout(timer);
        s.off("error", fail);
        return resolve(s);
      }
      if (!net.isIPv4(target.host)) return fail(new Error("SOCKS5: IPv4 destinations only"));
      const req = Buffer.alloc(13);
      req.set([5, 1, 0, 5, 1, 0, 1], 0);
      req.set(target.host.split(".").map(Number), 7);
      req.writeUInt16BE(target.port, 11);
      // Greeting and request in one write (the reply to both arrives as 2 + 10 bytes).
      s.write(req);
      let buf = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 12) return;
        s.off("data", onData);
        if (buf[0] !== 5 || buf[1] !== 0) return fail(new Error("SOCKS5: method refused"));
        if (buf[3] !== 0) return fail(new Error(`SOCKS5: connect refused (reply ${buf[3]})`));
        const rest = buf.subarray(12);
        clearTimeout(timer);
        s.off("error", fail);
        if (rest.length > 0) s.unshift(rest);
        resolve(s);
      };
      s.on("data", onData);
    });
  });
}
