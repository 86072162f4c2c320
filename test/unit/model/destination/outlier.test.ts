// Passive outlier detection (Envoy's consecutive-error detectors) and circuit breaking: when an
// endpoint is ejected, for how long, the ejection cap, the multiplier, local-origin failures,
// panic mode; the connection limiter's request/pending/retry limits.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ConnectionLimiter,
  DEFAULT_CONNECTION_POOL,
  DEFAULT_OUTLIER,
  OutlierDetector,
  type OutlierPolicy,
} from "../../../../src/model/destination/index.js";

const policy = (p: Partial<OutlierPolicy>): OutlierPolicy => ({
  ...DEFAULT_OUTLIER,
  intervalMs: 1_000,
  baseEjectionTimeMs: 2_000,
  ...p,
});

function detector(p: Partial<OutlierPolicy>, endpoints = ["a", "b", "c", "d"]): OutlierDetector {
  const d = new OutlierDetector();
  d.configure("c", policy(p));
  d.setEndpoints("c", endpoints);
  return d;
}

describe("outlier detection", () => {
  test("consecutive 5xx eject at the threshold; a success in between resets the count", () => {
    const d = detector({ consecutive5xxErrors: 3 });
    d.record("c", "a", { status: 500 }, 0);
    d.record("c", "a", { status: 500 }, 0);
    d.record("c", "a", { status: 200 }, 0);
    d.record("c", "a", { status: 500 }, 0);
    assert.equal(d.record("c", "a", { status: 502 }, 0).ejected, false);
    const r = d.record("c", "a", { status: 503 }, 10);
    assert.deepEqual(r, { ejected: true, reason: "consecutive5xx" });
    assert.equal(d.ejectedUntil("c", "a", 10), 2_010);
    assert.deepEqual(d.healthy("c", ["a", "b", "c", "d"], 100), ["b", "c", "d"]);
    assert.equal(d.isEjected("c", "a", 2_009), true);
    assert.equal(d.isEjected("c", "a", 2_010), false);
  });

  test("gateway errors count 502-504 and connection failures only", () => {
    const d = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 });
    d.record("c", "a", { status: 500 }, 0);
    d.record("c", "a", { status: 502 }, 0);
    assert.equal(d.record("c", "a", { status: 500 }, 0).ejected, false, "a 500 resets the gateway count");
    d.record("c", "a", { localOriginFailure: true }, 0);
    assert.deepEqual(d.record("c", "a", { status: 504 }, 0), { ejected: true, reason: "consecutiveGateway" });
  });

  test("split local-origin failures: counted apart, their own threshold", () => {
    const d = detector({
      consecutive5xxErrors: 2,
      splitExternalLocalOriginErrors: true,
      consecutiveLocalOriginFailures: 3,
    });
    d.record("c", "a", { localOriginFailure: true }, 0);
    d.record("c", "a", { localOriginFailure: true }, 0);
    assert.equal(d.isEjected("c", "a", 0), false, "local failures do not count as 5xx when split");
    assert.deepEqual(d.record("c", "a", { localOriginFailure: true }, 0), {
      ejected: true,
      reason: "consecutiveLocalOrigin",
    });
  });

  test("maxEjectionPercent caps further ejections; the first is always allowed", () => {
    const d = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 30 });
    assert.equal(d.record("c", "a", { status: 500 }, 0).ejected, true); // 0% ejected before
    const capped = d.record("c", "b", { status: 500 }, 0); // 25% < 30%: allowed
    assert.equal(capped.ejected, true);
    const third = d.record("c", "c", { status: 500 }, 0); // 50% ≥ 30%: refused
    assert.deepEqual(third, { ejected: false, reason: "consecutive5xx", capped: true });
    const single = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 10 }, ["x", "y"]);
    assert.equal(
      single.record("c", "x", { status: 500 }, 0).ejected,
      true,
      "first ejection despite 10% of 2",
    );
  });

  test("each ejection lasts base × times ejected, capped at the max; healthy intervals lower the multiplier", () => {
    const d = detector({ consecutive5xxErrors: 1, maxEjectionTimeMs: 5_000 });
    d.record("c", "a", { status: 500 }, 0);
    assert.equal(d.ejectedUntil("c", "a", 0), 2_000);
    d.record("c", "a", { status: 500 }, 2_000);
    assert.equal(d.ejectedUntil("c", "a", 2_000), 6_000, "second ejection: 2 × base");
    d.record("c", "a", { status: 500 }, 6_000);
    assert.equal(d.ejectedUntil("c", "a", 6_000), 11_000, "third: capped at max 5s");
    // Back at 11s with multiplier 3; every healthy interval (1s) takes one off.
    assert.equal(d.ejectionCount("c", "a", 11_000), 3);
    assert.equal(d.ejectionCount("c", "a", 13_500), 1);
    d.record("c", "a", { status: 500 }, 13_500);
    assert.equal(d.ejectedUntil("c", "a", 13_500), 17_500);
  });

  test("minHealthPercent: below it every endpoint is used (panic); 0 never panics", () => {
    const panic = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 60 }, [
      "a",
      "b",
    ]);
    panic.record("c", "a", { status: 500 }, 0);
    assert.deepEqual(panic.healthy("c", ["a", "b"], 1), ["a", "b"]);
    const none = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, ["a", "b"]);
    none.record("c", "a", { status: 500 }, 0);
    none.record("c", "b", { status: 500 }, 0);
    assert.deepEqual(none.healthy("c", ["a", "b"], 1), []);
  });

  test("removed endpoints and unconfigured clusters are forgotten", () => {
    const d = detector({ consecutive5xxErrors: 1 });
    d.record("c", "a", { status: 500 }, 0);
    d.setEndpoints("c", ["b", "c"]);
    assert.equal(d.isEjected("c", "a", 1), false);
    d.configure("c", null);
    assert.equal(d.record("c", "b", { status: 500 }, 0).ejected, false);
    assert.deepEqual(d.healthy("c", ["b"], 0), ["b"]);
  });
});

describe("connection limiter", () => {
  test("maxConnections + http1MaxPendingRequests bound requests in flight; released slots are reusable", () => {
    const l = new ConnectionLimiter();
    l.configure("c", { ...DEFAULT_CONNECTION_POOL, maxConnections: 2, http1MaxPendingRequests: 1 });
    const held = [l.tryAcquire("c", "request"), l.tryAcquire("c", "request"), l.tryAcquire("c", "request")];
    assert.ok(held.every((r) => r !== null));
    assert.deepEqual(l.load("c"), { requests: 3, active: 2, pending: 1, retries: 0, overflows: 0 });
    assert.equal(l.tryAcquire("c", "request"), null);
    assert.equal(l.load("c").overflows, 1);
    held[0]?.();
    held[0]?.(); // idempotent
    assert.equal(l.load("c").requests, 2);
    assert.ok(l.tryAcquire("c", "request"));
  });

  test("http2MaxRequests bounds all requests; maxRetries bounds retries in flight", () => {
    const l = new ConnectionLimiter();
    l.configure("c", { ...DEFAULT_CONNECTION_POOL, http2MaxRequests: 2, maxRetries: 1 });
    const r1 = l.tryAcquire("c", "retry");
    assert.ok(r1);
    assert.equal(l.tryAcquire("c", "retry"), null, "second retry in flight");
    assert.ok(l.tryAcquire("c", "request"));
    assert.equal(l.tryAcquire("c", "request"), null, "third request");
    r1();
    assert.equal(l.load("c").retries, 0);
  });

  test("remove forgets only an idle cluster", () => {
    const l = new ConnectionLimiter();
    l.configure("c", { ...DEFAULT_CONNECTION_POOL, http2MaxRequests: 1 });
    const r = l.tryAcquire("c", "request");
    l.remove("c");
    assert.equal(l.load("c").requests, 1);
    r?.();
    l.remove("c");
    assert.deepEqual(l.load("c"), { requests: 0, active: 0, pending: 0, retries: 0, overflows: 0 });
  });
});
