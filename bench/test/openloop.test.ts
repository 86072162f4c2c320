import assert from "node:assert/strict";
import { test } from "node:test";
import { OpenLoopDriver, simulateOpenLoop } from "../src/openloop.js";

const pct = (values: number[], p: number): number => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
};

test("requests are due at their intended times, whatever the system does", () => {
  const sent: number[] = [];
  const d = new OpenLoopDriver(1000, 10, 4, { send: (_c, k) => sent.push(k), record: () => undefined });
  assert.equal(d.dueAt(-1), 0);
  assert.equal(d.dueAt(0), 1);
  assert.equal(d.dueAt(999_999), 1);
  assert.equal(d.dueAt(1_000_000), 2);
  assert.equal(d.dueAt(1e12), 10, "capped at the total");
  // Rounding: request k's own intended time makes it due, for awkward rates too.
  const odd = new OpenLoopDriver(3, 100, 1, { send: () => undefined, record: () => undefined });
  for (let k = 0; k < 100; k++) assert.equal(odd.dueAt(odd.intendedNs(k)), k + 1);
  d.tick(5_500_000);
  assert.deepEqual(sent, [0, 1, 2, 3], "six due, four connections: four sent");
  assert.equal(d.backlog, 2);
});

test("a fast system: corrected latency equals the service time", () => {
  const r = simulateOpenLoop(1000, 2000, 4, () => 100);
  assert.equal(r.corrected.length, 2000);
  for (const v of r.corrected) assert.ok(Math.abs(v - 100) < 1e-6);
  assert.deepEqual(r.corrected, r.service);
});

test("a stall shows in every request that was due during it (coordinated omission corrected)", () => {
  // One connection, 1000 req/s, 100 µs per request — except request 100, which takes 200 ms.
  const r = simulateOpenLoop(1000, 2000, 1, (k) => (k === 100 ? 200_000 : 100));
  // From the actual send (what a closed-loop or naive generator reports): one slow request.
  assert.equal(r.service.filter((v) => v > 1000).length, 1);
  assert.ok(pct(r.service, 99) <= 100.001);
  // From the intended time: the ~200 requests due during the stall waited, and the backlog drained
  // at 9 requests per ms (10 served, 1 arriving), so about 222 requests (11 %) are late; p90 is
  // still ~20 ms and p99 ~180 ms.
  const late = r.corrected.filter((v) => v > 1000).length;
  assert.ok(late > 200 && late < 240, `late requests: ${late}`);
  assert.ok(pct(r.corrected, 90) > 10_000, `p90 ${pct(r.corrected, 90)}`);
  assert.ok(pct(r.corrected, 99) > 150_000, `p99 ${pct(r.corrected, 99)}`);
  assert.ok(Math.max(...r.corrected) <= 200_100);
  // The request right after the stall was due 1 ms after the stalled one was sent.
  assert.ok(Math.abs((r.corrected[101] as number) - (200_000 - 1000 + 100)) < 1);
});

test("more connections absorb a single stall", () => {
  const r = simulateOpenLoop(1000, 2000, 8, (k) => (k === 100 ? 200_000 : 100));
  assert.equal(r.corrected.filter((v) => v > 1000).length, 1);
});

test("an overloaded system: latency from intended time grows with the backlog", () => {
  // 1000 req/s offered, 1 connection that can do 500 req/s: the n-th request waits ~n ms.
  const r = simulateOpenLoop(1000, 1000, 1, () => 2000);
  const last = r.corrected[r.corrected.length - 1] as number;
  assert.ok(last > 990_000 && last < 1_010_000, `last ${last}`);
  assert.ok((r.service[r.service.length - 1] as number) === 2000);
});
