// The node proxy's DNS proxy (as ztunnel's): answers the mesh's Service hostnames — fully
// qualified, in the short forms a pod's search path produces (NAME, NAME.NS, NAME.NS.svc), or
// with a search domain appended — from the current snapshot, and forwards every other name and
// class to the node's resolvers (UDP queries over UDP, TCP over TCP; next resolver on timeout).
// UDP and TCP (RFC 1035 §4.2.2, length-prefixed, pipelined). Bounded everywhere: message size,
// queries in flight, upstream time, idle TCP connections, per-connection backlog. Malformed
// input is dropped (UDP) or ends the connection (TCP), never thrown.
import type * as dgram from "node:dgram";
import * as net from "node:net";
import * as dns from "dns-packet";
import { exchange, type CancelSet } from "./dns-upstream.js";

export interface DnsTable {
  /** Addresses (IPv4 and/or IPv6 strings) for a lower-case FQDN without trailing dot, or undefined if not a mesh name. */
  resolve(fqdn: string): readonly string[] | undefined;
}

export type DnsOutcome = "mesh" | "forwarded" | "nxdomain" | "error";

export interface DnsProxyOptions {
  /** The current snapshot, read per query. */
  table: () => DnsTable;
  /** The pod's namespace, for search-path expansion of short names. */
  podNamespace: string;
  /** Default "cluster.local". */
  clusterDomain?: string;
  /** The node's resolvers, tried in order. */
  upstream: { host: string; port: number }[];
  /** TTL of mesh answers; default 30. */
  ttlSeconds?: number;
  /** Per resolver and attempt; default 2000. */
  upstreamTimeoutMs?: number;
  /** Upstream exchanges in flight, across all sockets; beyond this, SERVFAIL at once. Default 1024. */
  maxInFlight?: number;
  /**
   * One call per query: "mesh" answered here (including NODATA), "forwarded" relayed from a
   * resolver, "nxdomain" a resolver said the name does not exist, "error" malformed input or
   * SERVFAIL/NOTIMP given (no resolver answered, too many in flight).
   */
  onQuery?: (e: { name: string; type: string; answered: DnsOutcome; ms: number }) => void;
}

const MAX_IN_FLIGHT = 1024;
const TCP_IDLE_MS = 10_000;
/** Queries one TCP connection may have outstanding before we stop reading from it. */
const TCP_MAX_PENDING = 32;
/** Largest UDP reply we build, whatever EDNS the client advertises (DNS flag day 2020). */
const UDP_MAX_PAYLOAD = 1232;
const UDP_DEFAULT_PAYLOAD = 512;

const RCODE = { SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

/** What dns-packet decodes but its typings omit. */
type Decoded = dns.DecodedPacket & { opcode?: string };

/** Our OPT record (EDNS version 0), sent back when the query had one. */
function ednsOpt(): dns.OptAnswer {
  return {
    type: "OPT",
    name: ".",
    udpPayloadSize: UDP_MAX_PAYLOAD,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

export function dnsTableOf(services: Iterable<{ hostname: string; vips: readonly string[] }>): DnsTable {
  const map = new Map<string, string[]>();
  for (const s of services) {
    const name = s.hostname.toLowerCase().replace(/\.$/, "");
    const ips = map.get(name) ?? [];
    // Only well-formed addresses: an answer is never built from something that cannot be encoded.
    for (const ip of s.vips) if (net.isIP(ip) !== 0 && !ips.includes(ip)) ips.push(ip);
    map.set(name, ips);
  }
  return { resolve: (fqdn) => map.get(fqdn) };
}

export class DnsProxy {
  private inFlight = 0;
  private readonly exchanges: CancelSet = new Set();
  private readonly udpSockets = new Set<dgram.Socket>();
  private readonly tcpServers = new Set<net.Server>();
  private readonly tcpConns = new Set<net.Socket>();
  private closed = false;
  private readonly domain: string;

  constructor(private readonly opts: DnsProxyOptions) {
    this.domain = (opts.clusterDomain ?? "cluster.local").toLowerCase().replace(/^\.|\.$/g, "");
  }

  /** Serve on an already-bound UDP socket (the caller creates it, possibly inside a pod netns). */
  serveUdp(socket: dgram.Socket): void {
    this.udpSockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("message", (msg, rinfo) => {
      this.handle(msg, "udp")
        .then((reply) => {
          if (reply && !this.closed) socket.send(reply, rinfo.port, rinfo.address, () => undefined);
        })
        .catch(() => undefined);
    });
  }

  /** Serve DNS over TCP on an already-listening server: length-prefixed, several queries per connection. */
  serveTcp(server: net.Server): void {
    this.tcpServers.add(server);
    server.on("error", () => undefined);
    server.on("connection", (conn) => {
      if (this.closed) conn.destroy();
      else this.serveTcpConnection(conn);
    });
  }

  /** Stops serving: closes the sockets given, TCP connections and upstream exchanges in flight. */
  close(): void {
    this.closed = true;
    for (const s of this.udpSockets) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
    for (const s of this.tcpServers) s.close(() => undefined);
    for (const c of this.tcpConns) c.destroy();
    for (const cancel of [...this.exchanges]) cancel();
    this.udpSockets.clear();
    this.tcpServers.clear();
    this.tcpConns.clear();
  }

  private serveTcpConnection(conn: net.Socket): void {
    this.tcpConns.add(conn);
    conn.on("close", () => this.tcpConns.delete(conn));
    conn.on("error", () => undefined);
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0;
    // Reading stops while the connection has too many queries outstanding or its replies are
    // not being read, so neither the input buffer nor the output queue grows without bound.
    const pump = (): void => {
      while (!conn.destroyed && pending < TCP_MAX_PENDING && !conn.writableNeedDrain && buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        pending++;
        this.handle(msg, "tcp")
          .then((reply) => {
            if (!reply) conn.destroy();
            else if (conn.writable) {
              const head = Buffer.alloc(2);
              head.writeUInt16BE(reply.length);
              conn.write(Buffer.concat([head, reply]));
            }
          })
          .catch(() => conn.destroy())
          .finally(() => {
            pending--;
            pump();
          });
      }
      if (conn.destroyed) return;
      if (pending >= TCP_MAX_PENDING || conn.writableNeedDrain) conn.pause();
      else conn.resume();
    };
    conn.on("drain", pump);
    conn.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      pump();
    });
  }

  /** The reply to one query, or undefined to drop it (UDP) or end the connection (TCP). */
  private async handle(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    const started = performance.now();
    let query: Decoded;
    try {
      query = dns.decode(msg);
    } catch {
      this.report("", "", "error", started);
      return undefined;
    }
    const q = query.questions?.[0];
    if (query.type !== "query" || !q || query.questions?.length !== 1) {
      this.report(q?.name ?? "", q?.type ?? "", "error", started);
      return undefined;
    }
    const id = query.id ?? 0;
    const rd = (query.flags ?? 0) & dns.RECURSION_DESIRED;
    try {
      if (query.opcode !== "QUERY") {
        this.report(q.name, q.type, "error", started);
        return this.rcodeReply(query, q, RCODE.NOTIMP);
      }
      const ips = (q.class ?? "IN") === "IN" ? this.lookup(q.name) : undefined;
      if (ips) {
        // A mesh name: addresses of the asked family; no address of it (or another type) is NODATA.
        const v6 = q.type === "AAAA";
        const ttl = this.opts.ttlSeconds ?? 30;
        const answers: dns.Answer[] =
          q.type === "A" || q.type === "AAAA"
            ? ips
                .filter((ip) => (net.isIPv6(ip) ? v6 : !v6))
                .map((ip) => ({ type: v6 ? "AAAA" : "A", name: q.name, class: "IN", ttl, data: ip }))
            : [];
        const edns = query.additionals?.find((a): a is dns.OptAnswer => a.type === "OPT");
        const reply: dns.Packet = {
          id,
          type: "response",
          flags: rd | dns.AUTHORITATIVE_ANSWER | dns.RECURSION_AVAILABLE,
          questions: [q],
          answers,
          additionals: edns ? [ednsOpt()] : [],
        };
        let out = dns.encode(reply);
        const limit = Math.min(UDP_MAX_PAYLOAD, Math.max(UDP_DEFAULT_PAYLOAD, edns?.udpPayloadSize ?? 0));
        if (transport === "udp" && out.length > limit) {
          // Too big for the client's datagram: say so, and it asks again over TCP.
          out = dns.encode({ ...reply, answers: [], flags: (reply.flags ?? 0) | dns.TRUNCATED_RESPONSE });
        }
        this.report(q.name, q.type, "mesh", started);
        return out;
      }
      const reply = await this.forward(msg, q, transport);
      if (!reply) {
        this.report(q.name, q.type, "error", started);
        return this.rcodeReply(query, q, RCODE.SERVFAIL);
      }
      const rcode = reply.length >= 4 ? reply.readUInt16BE(2) & 0xf : 0;
      this.report(q.name, q.type, rcode === RCODE.NXDOMAIN ? "nxdomain" : "forwarded", started);
      return reply;
    } catch {
      // Only encoding could fail here (e.g. a question dns-packet decodes but cannot re-encode).
      this.report(q.name, q.type, "error", started);
      return undefined;
    }
  }

  private report(name: string, type: string, answered: DnsOutcome, started: number): void {
    if (!this.opts.onQuery) return;
    try {
      this.opts.onQuery({ name, type, answered, ms: performance.now() - started });
    } catch {
      // an observer's failure is not the query's
    }
  }

  private rcodeReply(query: Decoded, q: dns.Question, rcode: number): Buffer {
    const flags = query.flags ?? 0;
    return dns.encode({
      id: query.id ?? 0,
      type: "response",
      // Echo the opcode (bits 11-14) and RD, as RFC 1035 asks of a response.
      flags: (flags & (0x7800 | dns.RECURSION_DESIRED)) | dns.RECURSION_AVAILABLE | rcode,
      questions: [q],
    });
  }

  /** The mesh's addresses for a name as asked, or undefined when the mesh does not know it. */
  private lookup(asked: string): readonly string[] | undefined {
    const table = this.opts.table();
    for (const fqdn of this.candidates(asked)) {
      const ips = table.resolve(fqdn);
      if (ips) return ips;
    }
    return undefined;
  }

  /**
   * The FQDNs a name may mean, in order: itself; its Kubernetes expansion (NAME →
   * NAME.<podNs>.svc.D, NAME.NS → NAME.NS.svc.D, NAME.NS.svc → NAME.NS.svc.D); then, when it
   * ends in one of the pod's search domains (<podNs>.svc.D, svc.D, D), the same for the name
   * without it — a resolver walking the search path gets its answer on the first query.
   */
  private candidates(asked: string): string[] {
    const d = this.domain;
    const n = asked.toLowerCase().replace(/\.$/, "");
    const out: string[] = [];
    const add = (s: string): void => {
      if (s !== "" && !out.includes(s)) out.push(s);
    };
    const expand = (name: string): void => {
      if (name === "" || name === ".") return; // the root: nothing to expand
      add(name);
      const labels = name.split(".");
      if (labels.length === 1) add(`${name}.${this.opts.podNamespace}.svc.${d}`);
      else if (labels.length === 2) add(`${name}.svc.${d}`);
      else if (labels.length === 3 && labels[2] === "svc") add(`${name}.${d}`);
    };
    expand(n);
    for (const search of [`${this.opts.podNamespace}.svc.${d}`, `svc.${d}`, d]) {
      if (n.endsWith(`.${search}`)) expand(n.slice(0, -search.length - 1));
    }
    return out;
  }

  /** Tries each resolver in turn; undefined when none answered in time or too many are in flight. */
  private async forward(msg: Buffer, q: dns.Question, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    if (this.inFlight >= (this.opts.maxInFlight ?? MAX_IN_FLIGHT) || this.closed) return undefined;
    this.inFlight++;
    try {
      for (const up of this.opts.upstream) {
        if (this.closed) return undefined;
        const timeout = this.opts.upstreamTimeoutMs ?? 2_000;
        const reply = await exchange(transport, up, msg, q, timeout, this.exchanges);
        if (reply) return reply;
      }
      return undefined;
    } finally {
      this.inFlight--;
    }
  }
}
