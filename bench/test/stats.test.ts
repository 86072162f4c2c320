import assert from "node:assert/strict";
import { test } from "node:test";
import { ResponseParser, RequestCounter, requestBytes, responseBytes } from "../src/http1.js";
import { summarize } from "../src/report.js";
import { addedOver, fmtSpread, median, ratio, rotation, spread } from "../src/stats.js";

test("median and spread", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.deepEqual(spread([5, 1, 9]), { median: 5, min: 1, max: 9, runs: [5, 1, 9] });
  const gone = spread([Number.NaN, 2]);
  assert.equal(gone.median, 2, "a missing run does not poison the median");
  assert.equal(fmtSpread(spread([1, 2, 3])), "2 (1…3)");
  assert.equal(fmtSpread(spread([1.5]), 1, " ms"), "1.5 ms");
  assert.equal(fmtSpread(undefined), "—");
});

test("added latency pairs each repetition with the direct run beside it", () => {
  const s = addedOver([110, 250, 130], [100, 200, 100]);
  assert.deepEqual(s.runs, [10, 50, 30]);
  assert.equal(s.median, 30);
  assert.equal(ratio(10, 4), 2.5);
  assert.ok(Number.isNaN(ratio(1, 0)));
  assert.ok(Number.isNaN(ratio(undefined, 1)));
});

test("interleaving rotates the first system", () => {
  assert.deepEqual(rotation(["a", "b", "c"], 0), ["a", "b", "c"]);
  assert.deepEqual(rotation(["a", "b", "c"], 1), ["b", "c", "a"]);
  assert.deepEqual(rotation(["a", "b", "c"], 5), ["c", "a", "b"]);
});

test("summaries: added latency, ratios of medians", () => {
  const loads = [
    { id: "o", kind: "open" as const, title: "o", seconds: 1, rate: 1000, connections: 4 },
    { id: "c", kind: "closed" as const, title: "c", seconds: 1, connections: 50 },
  ];
  const sample = (load: string, system: string, rep: number, metrics: Record<string, number>) => ({
    load,
    system,
    rep,
    metrics,
    cpuSeconds: {},
  });
  const samples = [0, 1, 2].flatMap((rep) => [
    sample("o", "direct", rep, { p50: 100, p90: 200, p99: 300, p999: 400 }),
    sample("o", "ambit", rep, { p50: 150 + rep, p90: 300, p99: 500, p999: 900 }),
    sample("c", "direct", rep, { perSecond: 1000 }),
    sample("c", "ambit", rep, { perSecond: 500 }),
    sample("c", "haproxy", rep, { perSecond: 250 + rep }),
  ]);
  const s = summarize(loads, samples);
  assert.equal(s.o?.added?.ambit?.p50.median, 51);
  assert.equal(s.o?.added?.ambit?.p999.median, 500);
  assert.equal(s.c?.ratios?.ambit?.vsDirect, 0.5);
  assert.equal(s.c?.ratios?.ambit?.vsCPeer, 500 / 251);
});

test("HTTP/1.1 response parser copes with any chunking", () => {
  const one = responseBytes(1024);
  const stream = Buffer.concat([one, one, one]);
  for (const size of [1, 7, 100, 1100, stream.length]) {
    const p = new ResponseParser();
    let done = 0;
    for (let i = 0; i < stream.length; i += size) done += p.push(stream.subarray(i, i + size));
    assert.equal(done, 3, `chunks of ${size}`);
  }
  assert.throws(() =>
    new ResponseParser().push(Buffer.from("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")),
  );
  assert.throws(() => new ResponseParser().push(Buffer.from("SSH-2.0-x\r\n\r\n")));
});

test("the backend counts pipelined and split requests", () => {
  const c = new RequestCounter();
  const req = requestBytes("bench");
  assert.deepEqual(c.push(Buffer.concat([req, req.subarray(0, 10)])), { requests: 1, close: false });
  assert.deepEqual(c.push(req.subarray(10)), { requests: 1, close: false });
  assert.deepEqual(c.push(requestBytes("bench", true)), { requests: 1, close: true });
});
