// The node proxy's DNS proxy on real loopback sockets: mesh Service names (fully qualified, short
// forms, search-path forms) answered here with AA, NODATA for a family the Service lacks, other
// names relayed from a fake node resolver with the client's id, SERVFAIL when no resolver answers
// or too many queries are in flight, DNS over TCP (pipelined, forwarded over TCP), malformed
// input dropped without harm.
import assert from "node:assert/strict";
import * as dgram from "node:dgram";
import { promises as nodeDns } from "node:dns";
import { once } from "node:events";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import * as dns from "dns-packet";
import { DnsProxy, dnsTableOf, type DnsOutcome, type DnsProxyOptions } from "../../../src/node/proxy/dns.js";

const table = dnsTableOf([
  { hostname: "backend.demo.svc.cluster.local", vips: ["10.96.0.20"] },
  { hostname: "api.shop.svc.cluster.local", vips: ["10.96.0.30", "fd00::30"] },
  { hostname: "Mixed.Case.svc.cluster.local.", vips: ["10.96.0.40", "not-an-ip"] },
  { hostname: "db.external.example", vips: ["240.240.0.1"] },
]);

/** Binds a TCP server and a UDP socket to one free port on 127.0.0.1 (other jobs use loopback ports too). */
async function bindPair(udp: dgram.Socket, tcp: net.Server): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(0, "127.0.0.1", () => resolve());
    });
    const port = (tcp.address() as net.AddressInfo).port;
    const bound = await new Promise<boolean>((resolve) => {
      const onError = (): void => resolve(false);
      udp.once("error", onError);
      udp.bind(port, "127.0.0.1", () => {
        udp.off("error", onError);
        resolve(true);
      });
    });
    if (bound) return port;
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (attempt >= 20) throw new Error("no port free for both TCP and UDP");
  }
}

interface Seen {
  id: number;
  name: string;
  transport: "udp" | "tcp";
}

/** A stand-in for the node's resolver: knows example.org, says NXDOMAIN to the rest, is silent to *.silent and tricks spoof.example. */
class FakeResolver {
  readonly seen: Seen[] = [];
  private readonly udp = dgram.createSocket("udp4");
  private readonly tcp: net.Server = net.createServer((c) => this.serveTcp(c));
  port = 0;

  async start(silent = false): Promise<this> {
    this.udp.on("message", (msg, rinfo) => {
      if (silent) return;
      for (const r of this.answer(msg, "udp")) this.udp.send(r, rinfo.port, rinfo.address);
    });
    this.port = await bindPair(this.udp, this.tcp);
    return this;
  }

  close(): void {
    this.udp.close();
    this.tcp.close();
  }

  private serveTcp(c: net.Socket): void {
    let buf: Buffer = Buffer.alloc(0);
    c.on("error", () => undefined);
    c.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        for (const r of this.answer(msg, "tcp")) {
          const head = Buffer.alloc(2);
          head.writeUInt16BE(r.length);
          c.write(Buffer.concat([head, r]));
        }
      }
    });
  }

  private answer(msg: Buffer, transport: "udp" | "tcp"): Buffer[] {
    const q = dns.decode(msg);
    const question = q.questions?.[0];
    if (!question) return [];
    this.seen.push({ id: q.id ?? 0, name: question.name, transport });
    if (question.name.endsWith(".silent")) return [];
    const reply = (p: Partial<dns.Packet>): Buffer =>
      dns.encode({
        id: q.id ?? 0,
        type: "response",
        flags: dns.RECURSION_AVAILABLE,
        questions: [question],
        ...p,
      });
    if (question.name === "spoof.example") {
      // A reply with our id but another question, and one with the question but another id.
      return [
        reply({ questions: [{ ...question, name: "evil.example" }] }),
        reply({ id: ((q.id ?? 0) + 1) & 0xffff }),
      ];
    }
    if (question.name === "example.org" && question.type === "A")
      return [reply({ answers: [{ type: "A", name: question.name, ttl: 60, data: "93.184.216.34" }] })];
    return [reply({ flags: dns.RECURSION_AVAILABLE | 3 })];
  }
}

interface Event {
  name: string;
  type: string;
  answered: DnsOutcome;
}

async function startProxy(
  upstream: { host: string; port: number }[],
  extra: Partial<DnsProxyOptions> = {},
): Promise<{ proxy: DnsProxy; port: number; events: Event[] }> {
  const events: Event[] = [];
  const proxy = new DnsProxy({
    table: () => table,
    podNamespace: "demo",
    upstream,
    onQuery: (e) => events.push({ name: e.name, type: e.type, answered: e.answered }),
    ...extra,
  });
  const udp = dgram.createSocket("udp4");
  const tcp = net.createServer();
  const port = await bindPair(udp, tcp);
  proxy.serveUdp(udp);
  proxy.serveTcp(tcp);
  return { proxy, port, events };
}

function query(name: string, type: dns.RecordType = "A", id = 0x1234, flags = dns.RECURSION_DESIRED): Buffer {
  return dns.encode({ id, type: "query", flags, questions: [{ name, type, class: "IN" }] });
}

/** Sends one datagram and waits for one reply (undefined after `ms`). */
async function udpAsk(port: number, msg: Buffer, ms = 3000): Promise<dns.DecodedPacket | undefined> {
  const sock = dgram.createSocket("udp4");
  try {
    const reply = new Promise<dns.DecodedPacket | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), ms);
      sock.on("message", (m) => {
        clearTimeout(t);
        resolve(dns.decode(m));
      });
    });
    sock.send(msg, port, "127.0.0.1");
    return await reply;
  } finally {
    sock.close();
  }
}

/** Opens a TCP connection, sends the messages pipelined, and collects `want` replies (or sees it close). */
async function tcpAsk(
  port: number,
  msgs: Buffer[],
  want: number,
): Promise<{ replies: dns.DecodedPacket[]; closed: boolean }> {
  const c = net.connect(port, "127.0.0.1");
  await once(c, "connect");
  const replies: dns.DecodedPacket[] = [];
  let buf: Buffer = Buffer.alloc(0);
  const done = new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 3000);
    c.on("close", () => {
      clearTimeout(t);
      resolve(true);
    });
    c.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(dns.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (replies.length >= want) {
        clearTimeout(t);
        resolve(false);
      }
    });
  });
  for (const m of msgs) {
    const head = Buffer.alloc(2);
    head.writeUInt16BE(m.length);
    c.write(Buffer.concat([head, m]));
  }
  const closed = await done;
  c.destroy();
  return { replies, closed };
}

const rcodeOf = (p: dns.DecodedPacket): string => (p as dns.DecodedPacket & { rcode: string }).rcode;
const addresses = (p: dns.DecodedPacket | undefined): string[] =>
  (p?.answers ?? []).map((a) => (a as dns.StringAnswer).data);

describe("dnsTableOf", () => {
  test("lower-cases names, drops the trailing dot and anything that is not an IP address", () => {
    assert.deepEqual(table.resolve("mixed.case.svc.cluster.local"), ["10.96.0.40"]);
    assert.deepEqual(table.resolve("api.shop.svc.cluster.local"), ["10.96.0.30", "fd00::30"]);
    assert.equal(table.resolve("nope.demo.svc.cluster.local"), undefined);
  });

  test("merges services sharing a hostname", () => {
    const t = dnsTableOf([
      { hostname: "a.x.svc.cluster.local", vips: ["10.0.0.1"] },
      { hostname: "A.x.svc.cluster.local", vips: ["10.0.0.1", "10.0.0.2"] },
    ]);
    assert.deepEqual(t.resolve("a.x.svc.cluster.local"), ["10.0.0.1", "10.0.0.2"]);
  });
});

describe("DnsProxy", () => {
  let upstream: FakeResolver;
  let silent: FakeResolver;
  let p: Awaited<ReturnType<typeof startProxy>>;

  before(async () => {
    upstream = await new FakeResolver().start();
    silent = await new FakeResolver().start(true);
    p = await startProxy([{ host: "127.0.0.1", port: upstream.port }]);
  });

  after(() => {
    p.proxy.close();
    upstream.close();
    silent.close();
  });

  test("answers a Service FQDN from the mesh: id, question, AA and RA, TTL", async () => {
    const before = upstream.seen.length;
    const r = await udpAsk(p.port, query("backend.demo.svc.cluster.local", "A", 4242));
    assert.ok(r);
    assert.equal(r.id, 4242);
    assert.equal(r.type, "response");
    assert.equal(rcodeOf(r), "NOERROR");
    assert.equal(r.flag_aa, true);
    assert.equal(r.flag_ra, true);
    assert.equal(r.flag_rd, true);
    assert.deepEqual(r.questions, [{ name: "backend.demo.svc.cluster.local", type: "A", class: "IN" }]);
    assert.equal(r.answers?.length, 1);
    const a = r.answers?.[0] as dns.StringAnswer;
    assert.equal(a.name, "backend.demo.svc.cluster.local");
    assert.equal(a.data, "10.96.0.20");
    assert.equal(a.ttl, 30);
    assert.equal(upstream.seen.length, before, "a mesh name is not forwarded");
    assert.deepEqual(p.events.at(-1), {
      name: "backend.demo.svc.cluster.local",
      type: "A",
      answered: "mesh",
    });
  });

  test("expands short names as the pod's search path does; answers under the name asked", async () => {
    for (const [name, ip] of [
      ["backend", "10.96.0.20"],
      ["backend.demo", "10.96.0.20"],
      ["backend.demo.svc", "10.96.0.20"],
      ["BackEnd", "10.96.0.20"],
      ["api.shop", "10.96.0.30"],
      ["api.shop.svc", "10.96.0.30"],
      // A resolver walking search domains: NAME.NS + "<podNs>.svc.cluster.local" and the like.
      ["api.shop.demo.svc.cluster.local", "10.96.0.30"],
      ["db.external.example.demo.svc.cluster.local", "240.240.0.1"],
      ["db.external.example", "240.240.0.1"],
    ] as const) {
      const r = await udpAsk(p.port, query(name));
      assert.ok(r, name);
      assert.equal(rcodeOf(r), "NOERROR", name);
      assert.deepEqual(addresses(r), [ip], name);
      assert.equal(r.answers?.[0]?.name, name, "the answer carries the name asked");
      assert.equal(r.questions?.[0]?.name, name);
    }
    // Short forms are relative to the pod's namespace: "api" alone is not shop's api.
    const before = upstream.seen.length;
    const r = await udpAsk(p.port, query("api"));
    assert.equal(r && rcodeOf(r), "NXDOMAIN");
    assert.equal(upstream.seen.length, before + 1, "unknown short name forwarded");
  });

  test("AAAA for a v4-only Service is NODATA (NOERROR, no answers), not forwarded", async () => {
    const before = upstream.seen.length;
    const r = await udpAsk(p.port, query("backend", "AAAA"));
    assert.ok(r);
    assert.equal(rcodeOf(r), "NOERROR");
    assert.equal(r.flag_aa, true);
    assert.deepEqual(r.answers, []);
    const txt = await udpAsk(p.port, query("backend.demo.svc.cluster.local", "TXT"));
    assert.equal(txt && rcodeOf(txt), "NOERROR");
    assert.deepEqual(txt?.answers, []);
    assert.equal(upstream.seen.length, before);
    // A dual-stack Service answers each family with its own addresses.
    assert.deepEqual(addresses(await udpAsk(p.port, query("api.shop", "AAAA"))), ["fd00::30"]);
    assert.deepEqual(addresses(await udpAsk(p.port, query("api.shop", "A"))), ["10.96.0.30"]);
  });

  test("forwards unknown names to the node's resolver and relays the reply with the client's id", async () => {
    const before = upstream.seen.length;
    const r = await udpAsk(p.port, query("example.org", "A", 777));
    assert.ok(r);
    assert.equal(r.id, 777);
    assert.equal(r.flag_aa, false);
    assert.deepEqual(addresses(r), ["93.184.216.34"]);
    assert.deepEqual(
      upstream.seen.slice(before).map((s) => [s.name, s.transport]),
      [["example.org", "udp"]],
    );
    assert.deepEqual(p.events.at(-1), { name: "example.org", type: "A", answered: "forwarded" });

    // Under svc.cluster.local too, when the mesh does not know the name: the resolver decides.
    const nx = await udpAsk(p.port, query("ghost.demo.svc.cluster.local", "A", 778));
    assert.ok(nx);
    assert.equal(nx.id, 778);
    assert.equal(rcodeOf(nx), "NXDOMAIN");
    assert.equal(upstream.seen.at(-1)?.name, "ghost.demo.svc.cluster.local");
    assert.deepEqual(p.events.at(-1), {
      name: "ghost.demo.svc.cluster.local",
      type: "A",
      answered: "nxdomain",
    });

    // The root and other types are forwarded as they are.
    const root = await udpAsk(p.port, query(".", "NS", 779));
    assert.equal(root?.id, 779);
    assert.equal(upstream.seen.at(-1)?.name, ".");
  });

  test("tries the next resolver on timeout; SERVFAIL in bounded time when none answers", async () => {
    const q = await startProxy(
      [
        { host: "127.0.0.1", port: silent.port },
        { host: "127.0.0.1", port: upstream.port },
      ],
      { upstreamTimeoutMs: 200 },
    );
    try {
      let t0 = Date.now();
      const ok = await udpAsk(q.port, query("example.org", "A", 9));
      assert.equal(ok?.id, 9);
      assert.deepEqual(addresses(ok), ["93.184.216.34"]);
      assert.ok(Date.now() - t0 >= 150, "waited for the first resolver");

      t0 = Date.now();
      const fail = await udpAsk(q.port, query("nobody.silent", "A", 10));
      const ms = Date.now() - t0;
      assert.ok(fail);
      assert.equal(fail.id, 10);
      assert.equal(rcodeOf(fail), "SERVFAIL");
      assert.deepEqual(fail.questions?.[0]?.name, "nobody.silent");
      assert.ok(ms >= 350 && ms < 1500, `SERVFAIL after ${ms} ms`);
      assert.deepEqual(q.events.at(-1), { name: "nobody.silent", type: "A", answered: "error" });
    } finally {
      q.proxy.close();
    }
  });

  test("ignores upstream replies that do not match id and question", async () => {
    const q = await startProxy([{ host: "127.0.0.1", port: upstream.port }], { upstreamTimeoutMs: 200 });
    try {
      const r = await udpAsk(q.port, query("spoof.example", "A", 55));
      assert.equal(r?.id, 55);
      assert.equal(r && rcodeOf(r), "SERVFAIL");
    } finally {
      q.proxy.close();
    }
  });

  test("bounds queries in flight upstream: beyond the limit, SERVFAIL at once", async () => {
    const q = await startProxy([{ host: "127.0.0.1", port: silent.port }], {
      upstreamTimeoutMs: 1000,
      maxInFlight: 2,
    });
    try {
      const slow = [udpAsk(q.port, query("a.silent", "A", 1)), udpAsk(q.port, query("b.silent", "A", 2))];
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      const third = await udpAsk(q.port, query("c.silent", "A", 3));
      assert.equal(third && rcodeOf(third), "SERVFAIL");
      assert.ok(Date.now() - t0 < 500, "not queued behind the others");
      // Mesh names need no upstream and are still answered.
      assert.deepEqual(addresses(await udpAsk(q.port, query("backend"))), ["10.96.0.20"]);
      for (const r of await Promise.all(slow)) assert.equal(r && rcodeOf(r), "SERVFAIL");
    } finally {
      q.proxy.close();
    }
  });

  test("serves DNS over TCP: pipelined queries on one connection; unknown names forwarded over TCP", async () => {
    const before = upstream.seen.length;
    const { replies, closed } = await tcpAsk(
      p.port,
      [query("backend", "A", 1), query("example.org", "A", 2), query("api.shop", "AAAA", 3)],
      3,
    );
    assert.equal(closed, false, "the connection stays open for more queries");
    const byId = new Map(replies.map((r) => [r.id, r]));
    assert.deepEqual(addresses(byId.get(1)), ["10.96.0.20"]);
    assert.equal(byId.get(1)?.flag_aa, true);
    assert.deepEqual(addresses(byId.get(2)), ["93.184.216.34"]);
    assert.deepEqual(addresses(byId.get(3)), ["fd00::30"]);
    assert.deepEqual(
      upstream.seen.slice(before).map((s) => [s.name, s.transport]),
      [["example.org", "tcp"]],
    );
  });

  test("works with Node's own resolver as the client", async () => {
    const resolver = new nodeDns.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${p.port}`]);
    assert.deepEqual(await resolver.resolve4("backend.demo.svc.cluster.local"), ["10.96.0.20"]);
    assert.deepEqual(await resolver.resolve6("api.shop.svc.cluster.local"), ["fd00::30"]);
    assert.deepEqual(await resolver.resolve4("example.org"), ["93.184.216.34"]);
    await assert.rejects(resolver.resolve6("backend.demo.svc.cluster.local"), { code: "ENODATA" });
  });

  test("drops malformed datagrams and keeps answering", async () => {
    const errorsBefore = p.events.filter((e) => e.answered === "error").length;
    assert.equal(await udpAsk(p.port, Buffer.from("not dns at all"), 300), undefined);
    assert.equal(await udpAsk(p.port, Buffer.alloc(0), 300), undefined);
    // A header promising a question that is not there.
    assert.equal(await udpAsk(p.port, query("backend").subarray(0, 16), 300), undefined);
    // A response sent to us is not a query.
    const resp = dns.encode({ id: 1, type: "response", questions: [{ name: "backend", type: "A" }] });
    assert.equal(await udpAsk(p.port, resp, 300), undefined);
    assert.equal(p.events.filter((e) => e.answered === "error").length, errorsBefore + 4);
    assert.deepEqual(addresses(await udpAsk(p.port, query("backend"))), ["10.96.0.20"]);
  });

  test("closes a TCP connection on a malformed message and keeps serving others", async () => {
    const { closed } = await tcpAsk(p.port, [Buffer.from("garbage!garbage!")], 1);
    assert.equal(closed, true);
    const { replies } = await tcpAsk(p.port, [query("backend.demo", "A", 99)], 1);
    assert.equal(replies[0]?.id, 99);
    assert.deepEqual(addresses(replies[0]), ["10.96.0.20"]);
  });

  test("sets TC when a mesh answer does not fit the client's datagram", async () => {
    const many = Array.from({ length: 60 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
    const big = dnsTableOf([{ hostname: "big.demo.svc.cluster.local", vips: many }]);
    const q = await startProxy([], { table: () => big });
    try {
      const r = await udpAsk(q.port, query("big"));
      assert.equal(r?.flag_tc, true);
      assert.deepEqual(r?.answers, []);
      const { replies } = await tcpAsk(q.port, [query("big")], 1);
      assert.equal(replies[0]?.flag_tc, false);
      assert.equal(replies[0]?.answers?.length, 60);
    } finally {
      q.proxy.close();
    }
  });
});
