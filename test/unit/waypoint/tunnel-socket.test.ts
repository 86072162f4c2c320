// TunnelSocket's net.Socket-like idle timeout (lazy: bytes stamp the time, the timer re-arms for
// what is left): "timeout" after the set time without bytes either way, postponed by bytes in
// both directions, off with 0, armed again by activity after it fired; `timeout` says what was
// set (the HTTP Agent skips re-setting an equal value). Runs over a PassThrough pair.
import assert from "node:assert/strict";
import { Duplex, PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { TunnelSocket } from "../../../src/waypoint/tunnel-socket.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A duplex whose writes are collected and whose reads come from `feed`. */
function inner(): { stream: Duplex; feed: PassThrough; written: Buffer[] } {
  const feed = new PassThrough();
  const written: Buffer[] = [];
  const stream = new Duplex({
    read() {
      const c = feed.read() as Buffer | null;
      if (c !== null) this.push(c);
      else feed.once("readable", () => this._read(0));
    },
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
  });
  return { stream, feed, written };
}

function socket(): { s: TunnelSocket; feed: PassThrough; written: Buffer[] } {
  const i = inner();
  const s = new TunnelSocket(i.stream, { remoteAddress: "127.0.0.1", remotePort: 1 });
  s.on("data", () => undefined);
  return { s, feed: i.feed, written: i.written };
}

async function timeouts(s: TunnelSocket, during: () => Promise<void>): Promise<number[]> {
  const t0 = performance.now();
  const at: number[] = [];
  const on = (): void => void at.push(performance.now() - t0);
  s.on("timeout", on);
  await during();
  s.off("timeout", on);
  return at;
}

describe("TunnelSocket idle timeout", () => {
  test("fires once after the idle time, and again only after new activity", async () => {
    const { s } = socket();
    assert.equal(s.timeout, undefined);
    s.setTimeout(150);
    assert.equal(s.timeout, 150);
    const at = await timeouts(s, async () => {
      await sleep(600);
    });
    assert.equal(at.length, 1, `fired at ${at.join(", ")}`);
    assert.ok((at[0] ?? 0) >= 140, `fired too early: ${at[0]} ms`);
    const again = await timeouts(s, async () => {
      s.write("x");
      await sleep(600);
    });
    assert.equal(again.length, 1);
    s.destroy();
  });

  test("bytes either way postpone it; 0 turns it off; a shorter time takes effect at once", async () => {
    const { s, feed } = socket();
    s.setTimeout(300);
    const busy = await timeouts(s, async () => {
      for (let i = 0; i < 6; i++) {
        await sleep(100);
        if (i % 2 === 0) s.write("ping");
        else feed.write("pong");
      }
    });
    assert.deepEqual(busy, [], "activity every 100 ms must hold off a 300 ms idle timeout");
    s.setTimeout(0);
    assert.equal(s.timeout, 0);
    const off = await timeouts(s, () => sleep(500));
    assert.deepEqual(off, []);
    s.setTimeout(10_000);
    s.setTimeout(100);
    const short = await timeouts(s, () => sleep(500));
    assert.equal(short.length, 1);
    assert.ok((short[0] ?? 0) < 400, `the shorter timeout fired late: ${short[0]} ms`);
    s.destroy();
  });

  test("a callback passed to setTimeout runs on timeout; destroy stops the timer", async () => {
    const { s } = socket();
    let called = 0;
    s.setTimeout(80, () => called++);
    await sleep(300);
    assert.equal(called, 1);
    const { s: t } = socket();
    let fired = 0;
    t.setTimeout(80, () => fired++);
    t.destroy();
    await sleep(300);
    assert.equal(fired, 0);
  });

  test("writes pass through as buffers", async () => {
    const { s, written } = socket();
    await new Promise<void>((r) => s.write("hello", () => r()));
    assert.equal(Buffer.concat(written).toString(), "hello");
    s.destroy();
  });
});
