// The node proxy's splice: bytes both ways with counts, half-close, backpressure against a slow
// reader, reset reporting, and write batching (pieces arriving in one event-loop turn leave in
// one writev). Real TCP sockets on the bench's loopback range.
import assert from "node:assert/strict";
import * as net from "node:net";
import { Duplex, PassThrough } from "node:stream";
import { after, describe, test } from "node:test";
import { splice, type SpliceEnd } from "../../../src/node/proxy/splice.js";

const HOST = "127.0.54.10";

/** A connected TCP pair: [the end we splice, the far end the test drives]. */
const sockets: net.Socket[] = [];

async function tcpPair(servers: net.Server[]): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const client = net.connect({ host: HOST, port, allowHalfOpen: true });
  await new Promise((r) => client.once("connect", r));
  const near = await accepted;
  sockets.push(near, client);
  return [near, client];
}

function collect(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  return new Promise((r) => s.once("end", () => r(Buffer.concat(chunks))));
}

describe("splice", () => {
  const servers: net.Server[] = [];
  after(() => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  });

  test("copies both ways, counts bytes, passes half-close on and ends cleanly", async () => {
    const [a, aFar] = await tcpPair(servers);
    const [b, bFar] = await tcpPair(servers);
    const ended = new Promise<SpliceEnd>((r) => splice(a, b, { a: "client", b: "upstream" }, r));
    const atB = collect(bFar);
    const atA = collect(aFar);
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    aFar.end(big);
    assert.deepEqual(await atB, big);
    // b's side still sends after a's half-close.
    bFar.end("reply");
    assert.equal((await atA).toString(), "reply");
    const end = await ended;
    assert.deepEqual(end, { aToB: big.length, bToA: 5, reason: "" });
  });

  for (const batch of [false, true])
    test(`holds back a fast writer while the reader is slow (bounded buffering, batch ${batch})`, async () => {
      const [a, aFar] = await tcpPair(servers);
      const [b, bFar] = await tcpPair(servers);
      const s = splice(a, b, { a: "client", b: "upstream" }, () => undefined, { batchAToB: batch });
      bFar.pause();
      const chunk = Buffer.alloc(64 * 1024, 1);
      // Write (honouring aFar's own backpressure) for a while: far more than the kernel buffers hold.
      const deadline = Date.now() + 1_500;
      let sent = 0;
      while (Date.now() < deadline && sent < 256 * 1024 * 1024) {
        sent += chunk.length;
        if (!aFar.write(chunk))
          await Promise.race([
            new Promise((r) => aFar.once("drain", r)),
            new Promise((r) => setTimeout(r, 200)),
          ]);
      }
      // The splice paused `a`: what it holds in its write queue stays small.
      assert.ok(b.writableLength <= 1024 * 1024, `buffered ${b.writableLength}`);
      assert.ok(a.isPaused(), "reader paused while the writer is full");
      assert.ok(s.bytes.aToB < sent, `moved ${s.bytes.aToB} of ${sent} while the reader was stopped`);
      const moved = s.bytes.aToB;
      bFar.resume();
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(s.bytes.aToB > moved, "flows again once the reader reads");
      s.close("test over");
      aFar.destroy();
      bFar.destroy();
    });

  test("does not stop the source at every read when the destination drains within the turn", async () => {
    const [a, aFar] = await tcpPair(servers);
    // Like an HTTP/2 stream: a 16 KiB high-water mark, writes completed in the check phase.
    let got = 0;
    const dst = new Duplex({
      highWaterMark: 16 * 1024,
      read(): void {},
      write(chunk: Buffer, _enc, cb): void {
        got += chunk.length;
        setImmediate(cb);
      },
      writev(chunks: { chunk: Buffer }[], cb): void {
        for (const c of chunks) got += c.chunk.length;
        setImmediate(cb);
      },
    });
    let pauses = 0;
    const pause = a.pause.bind(a);
    a.pause = (): net.Socket => {
      pauses++;
      return pause();
    };
    const s = splice(a, dst, { a: "client", b: "stream" }, () => undefined);
    const total = 8 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 5);
    for (let sent = 0; sent < total; sent += chunk.length)
      if (!aFar.write(chunk)) await new Promise((r) => aFar.once("drain", r));
    const deadline = Date.now() + 10_000;
    while (got < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(got, total);
    assert.equal(s.bytes.aToB, total);
    // A pause needs 256 KiB held since the last drain: at most 32 for 8 MiB. Pausing whenever
    // write() returns false would stop the socket after nearly every one of the 64 KiB reads.
    assert.ok(pauses <= total / (256 * 1024), `paused ${pauses} times`);
    s.close("test over");
    aFar.destroy();
  });

  test("reports a side that went away mid-stream as a reset", async () => {
    const [a, aFar] = await tcpPair(servers);
    const [b, bFar] = await tcpPair(servers);
    const ended = new Promise<SpliceEnd>((r) => splice(a, b, { a: "client", b: "upstream" }, r));
    aFar.write("hello");
    await new Promise((r) => setTimeout(r, 100));
    bFar.resetAndDestroy();
    const end = await ended;
    assert.match(end.reason, /upstream/);
    aFar.destroy();
  });

  test("batchAToB: pieces written in one turn leave in one writev", async () => {
    const [b, bFar] = await tcpPair(servers);
    const src = new PassThrough();
    let writev = 0;
    let single = 0;
    const proto = Object.getPrototypeOf(b) as { _writev: unknown; _write: unknown };
    const origWritev = proto._writev as (this: net.Socket, ...args: unknown[]) => void;
    const origWrite = proto._write as (this: net.Socket, ...args: unknown[]) => void;
    b._writev = function (this: net.Socket, ...args: unknown[]): void {
      writev++;
      origWritev.apply(this, args);
    };
    b._write = function (this: net.Socket, ...args: unknown[]): void {
      single++;
      origWrite.apply(this, args);
    };
    const got = collect(bFar);
    splice(src, b, { a: "stream", b: "socket" }, () => undefined, { batchAToB: true });
    // Like an HTTP/2 DATA frame split at a TLS record boundary: a big piece and a tiny one.
    src.write(Buffer.alloc(16_375, 1));
    src.write(Buffer.alloc(9, 2));
    src.write(Buffer.alloc(16_375, 3));
    await new Promise((r) => setTimeout(r, 100));
    src.end();
    const all = await got;
    assert.equal(all.length, 16_375 * 2 + 9);
    assert.ok(writev >= 1, `writev ${writev}, write ${single}`);
    assert.ok(writev + single < 3, `writev ${writev}, write ${single}`);
  });
});
