// Scheduling behaviour of the certificate manager on a fake clock with a scripted CA: sharing,
// concurrency, priorities, half-life renewal, backoff, expiry, untrack and shutdown.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AmbitError } from "../../../src/core/errors.js";
import { CertificateManager } from "../../../src/identity/cert-manager.js";
import type {
  CertificateManagerEvents,
  CertificateManagerOptions,
  Clock,
} from "../../../src/identity/cert-manager.js";
import type { CertificateFetcher, IssuedCertificate } from "../../../src/identity/cert-types.js";
import type { Identity } from "../../../src/model/spiffe.js";

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2030, 0, 1);

/** Lets every promise continuation that is ready run (setImmediate comes after the microtasks). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

class FakeClock implements Clock {
  private t = T0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  readonly requestedDelays: number[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    this.requestedDelays.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === "number") this.timers.delete(handle);
  }

  pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward, running due timers in order (and what they set off) as it goes. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      await settle();
    }
    this.t = target;
    await settle();
  }

  advanceTo(at: number): Promise<void> {
    return this.advance(at - this.t);
  }
}

interface Call {
  name: string;
  at: number;
  signal: AbortSignal;
  settled: boolean;
  succeed(opts?: { lifetimeMs?: number; notBefore?: number; notAfter?: number }): IssuedCertificate;
  fail(err: Error): void;
}

/** A CA stand-in: each fetch waits for the test to answer it, unless `auto` answers at once. */
class ScriptedFetcher implements CertificateFetcher {
  readonly calls: Call[] = [];
  auto: ((name: string) => Error | { lifetimeMs: number }) | undefined;
  private readonly serials = new Map<string, number>();

  constructor(private readonly clock: FakeClock) {}

  fetch(identity: Identity, signal: AbortSignal): Promise<IssuedCertificate> {
    return new Promise<IssuedCertificate>((resolve, reject) => {
      const name = identity.serviceAccount;
      const call: Call = {
        name,
        at: this.clock.now(),
        signal,
        settled: false,
        succeed: (opts = {}) => {
          const notBefore = opts.notBefore ?? this.clock.now();
          const notAfter = opts.notAfter ?? notBefore + (opts.lifetimeMs ?? DAY);
          const n = (this.serials.get(name) ?? 0) + 1;
          this.serials.set(name, n);
          const cert: IssuedCertificate = {
            certChainPem: [`-----BEGIN CERTIFICATE-----\n${name}#${n}\n-----END CERTIFICATE-----\n`],
            privateKeyPem: `key for ${name}#${n}`,
            notBefore: new Date(notBefore),
            notAfter: new Date(notAfter),
            serial: `${name}#${n}`,
          };
          call.settled = true;
          resolve(cert);
          return cert;
        },
        fail: (err) => {
          call.settled = true;
          reject(err);
        },
      };
      this.calls.push(call);
      const answer = this.auto?.(name);
      if (answer instanceof Error) call.fail(answer);
      else if (answer) call.succeed({ lifetimeMs: answer.lifetimeMs });
    });
  }

  /** Service-account names in the order their fetches started. */
  names(): string[] {
    return this.calls.map((c) => c.name);
  }

  open(): Call[] {
    return this.calls.filter((c) => !c.settled && !c.signal.aborted);
  }

  openCall(name: string): Call {
    const call = this.open().find((c) => c.name === name);
    assert.ok(
      call,
      `no open fetch for ${name}; open: ${this.open()
        .map((c) => c.name)
        .join(",")}`,
    );
    return call;
  }

  timesOf(name: string): number[] {
    return this.calls.filter((c) => c.name === name).map((c) => c.at);
  }
}

function id(name: string): Identity {
  return { trustDomain: "cluster.local", namespace: "default", serviceAccount: name };
}

type Recorded = {
  [K in keyof CertificateManagerEvents]: [K, CertificateManagerEvents[K][0]];
}[keyof CertificateManagerEvents];

function setup(options: Partial<CertificateManagerOptions> = {}) {
  const clock = new FakeClock();
  const fetcher = new ScriptedFetcher(clock);
  const mgr = new CertificateManager({ fetcher, clock, random: () => 0, ...options });
  const events: Recorded[] = [];
  mgr.on("issued", (e) => events.push(["issued", e]));
  mgr.on("rotated", (e) => events.push(["rotated", e]));
  mgr.on("failed", (e) => events.push(["failed", e]));
  mgr.on("dropped", (e) => events.push(["dropped", e]));
  mgr.on("expired", (e) => events.push(["expired", e]));
  return { clock, fetcher, mgr, events };
}

/** Answers the single running fetch, one at a time, n times; the order fetches started in. */
async function answerOneByOne(fetcher: ScriptedFetcher, n: number): Promise<string[]> {
  for (let i = 0; i < n; i++) {
    const open = fetcher.open();
    assert.equal(
      open.length,
      1,
      `expected exactly one running fetch, got ${open.map((c) => c.name).join(",")}`,
    );
    open[0]?.succeed();
    await settle();
  }
  return fetcher.names();
}

async function rejectsWith(
  p: Promise<unknown>,
  reason: string,
  code = "AMBIT_E_UNAVAILABLE",
): Promise<AmbitError> {
  let caught: unknown;
  await p.then(
    () => assert.fail(`expected a rejection (${reason})`),
    (err: unknown) => {
      caught = err;
    },
  );
  assert.ok(caught instanceof AmbitError, `expected an AmbitError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  if (code === "AMBIT_E_UNAVAILABLE") assert.equal(caught.detail?.["reason"], reason);
  return caught;
}

void describe("fetching on demand", () => {
  void test("concurrent callers for one identity share a single fetch, later callers get the cached certificate", async () => {
    const { mgr, fetcher } = setup();
    const callers = [
      mgr.fetchCertificate(id("a")),
      mgr.fetchCertificate(id("a")),
      mgr.fetchCertificate(id("a"), "Warmup"),
    ];
    await settle();
    assert.deepEqual(fetcher.names(), ["a"]);
    fetcher.openCall("a").succeed();
    const got = await Promise.all(callers);
    assert.deepEqual(
      got.map((c) => c.serial),
      ["a#1", "a#1", "a#1"],
    );
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#1");
    assert.deepEqual(fetcher.names(), ["a"]);
    mgr.close();
  });

  void test("the fetcher gets the identity and an abort signal", async () => {
    const { mgr, fetcher } = setup();
    const seen: Identity[] = [];
    const inner = fetcher.fetch.bind(fetcher);
    fetcher.fetch = (identity, signal) => {
      seen.push(identity);
      return inner(identity, signal);
    };
    const p = mgr.fetchCertificate({ trustDomain: "td.example", namespace: "ns1", serviceAccount: "sa1" });
    fetcher.openCall("sa1").succeed();
    await p;
    assert.deepEqual(seen, [{ trustDomain: "td.example", namespace: "ns1", serviceAccount: "sa1" }]);
    assert.equal(fetcher.calls[0]?.signal.aborted, false);
    mgr.close();
  });

  void test("a CA error code reaches the caller unchanged; other errors become AMBIT_E_UNAVAILABLE naming the identity", async () => {
    const { mgr, fetcher } = setup();
    const denied = mgr.fetchCertificate(id("a"));
    fetcher.openCall("a").fail(new AmbitError("AMBIT_E_NODE_NOT_AUTHORIZED", "no workload a on this node"));
    await rejectsWith(denied, "", "AMBIT_E_NODE_NOT_AUTHORIZED");

    const refused = mgr.fetchCertificate(id("b"));
    const cause = new Error("connect ECONNREFUSED 10.0.0.1:15012");
    fetcher.openCall("b").fail(cause);
    const err = await rejectsWith(refused, "fetch-failed");
    assert.match(err.message, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/b/);
    assert.match(err.message, /ECONNREFUSED/);
    assert.equal(err.cause, cause);
    mgr.close();
  });
});

void describe("concurrency and priority", () => {
  void test("at most maxConcurrentFetches run at once; the next starts as soon as one finishes", async () => {
    const { mgr, fetcher } = setup({ maxConcurrentFetches: 2 });
    for (const n of ["a", "b", "c", "d", "e"]) mgr.track(id(n));
    await settle();
    assert.deepEqual(fetcher.names(), ["a", "b"]);
    fetcher.openCall("a").succeed();
    await settle();
    assert.deepEqual(fetcher.names(), ["a", "b", "c"]);
    fetcher.openCall("b").fail(new Error("boom"));
    await settle();
    assert.deepEqual(fetcher.names(), ["a", "b", "c", "d"]);
    assert.equal(fetcher.open().length, 2);
    mgr.close();
  });

  void test("the default limit is 8 concurrent fetches", async () => {
    const { mgr, fetcher } = setup();
    for (let i = 0; i < 12; i++) mgr.track(id(`w${i}`));
    await settle();
    assert.equal(fetcher.calls.length, 8);
    mgr.close();
  });

  void test("queued fetches run Connection before Warmup before Refresh, first come first served within each", async () => {
    const { mgr, fetcher } = setup({ maxConcurrentFetches: 1 });
    mgr.track(id("busy"));
    const waiting = [
      mgr.fetchCertificate(id("r1"), "Refresh"),
      mgr.fetchCertificate(id("c1")),
      mgr.fetchCertificate(id("r2"), "Refresh"),
      mgr.fetchCertificate(id("c2"), "Connection"),
    ];
    mgr.track(id("w1"));
    mgr.track(id("w2"));
    const order = await answerOneByOne(fetcher, 7);
    assert.deepEqual(order, ["busy", "c1", "c2", "w1", "w2", "r1", "r2"]);
    assert.deepEqual(
      (await Promise.all(waiting)).map((c) => c.serial),
      ["r1#1", "c1#1", "r2#1", "c2#1"],
    );
    mgr.close();
  });

  void test("a waiting connection raises a queued fetch's priority", async () => {
    const { mgr, fetcher } = setup({ maxConcurrentFetches: 1 });
    mgr.track(id("busy"));
    mgr.track(id("w1"));
    const refresh = mgr.fetchCertificate(id("late"), "Refresh");
    mgr.track(id("w2"));
    assert.deepEqual(mgr.snapshot().find((s) => s.identity.endsWith("/sa/late"))?.fetch, {
      state: "queued",
      priority: "Refresh",
    });
    const conn = mgr.fetchCertificate(id("late"));
    assert.deepEqual(mgr.snapshot().find((s) => s.identity.endsWith("/sa/late"))?.fetch, {
      state: "queued",
      priority: "Connection",
    });
    const order = await answerOneByOne(fetcher, 4);
    assert.deepEqual(order, ["busy", "late", "w1", "w2"]);
    assert.equal((await refresh).serial, "late#1");
    assert.equal((await conn).serial, "late#1");
    mgr.close();
  });

  void test("a due rotation yields to a connection waiting for another identity, and its callers never wait", async () => {
    const { mgr, fetcher, clock } = setup({ maxConcurrentFetches: 1, fetchTimeoutMs: 0 });
    mgr.track(id("a"));
    fetcher.openCall("a").succeed({ lifetimeMs: DAY });
    await clock.advance(12 * HOUR - MIN);
    mgr.track(id("slow"));
    await clock.advance(MIN); // a's renewal is due, but the only slot is taken
    const conn = mgr.fetchCertificate(id("c"));
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#1");
    assert.deepEqual(fetcher.names(), ["a", "slow"]);
    const order = await answerOneByOne(fetcher, 3);
    assert.deepEqual(order, ["a", "slow", "c", "a"]);
    assert.equal((await conn).serial, "c#1");
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#2");
    mgr.close();
  });
});

void describe("renewal", () => {
  void test("renews at half-life (notBefore + lifetime/2) and serves the old certificate meanwhile", async () => {
    const { mgr, fetcher, clock, events } = setup();
    mgr.track(id("a"));
    // Backdated an hour, as CAs do for clock skew: half-life is 11 h from now, not 12.
    fetcher.openCall("a").succeed({ notBefore: T0 - HOUR, notAfter: T0 + 23 * HOUR });
    await clock.advanceTo(T0 + 11 * HOUR - 1);
    assert.deepEqual(fetcher.timesOf("a"), [T0]);
    await clock.advance(1);
    assert.deepEqual(fetcher.timesOf("a"), [T0, T0 + 11 * HOUR]);
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#1", "old certificate while renewing");

    fetcher.openCall("a").succeed({ lifetimeMs: DAY });
    await settle();
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#2");
    await clock.advanceTo(T0 + 23 * HOUR);
    assert.deepEqual(fetcher.timesOf("a"), [T0, T0 + 11 * HOUR, T0 + 23 * HOUR]);

    const kinds = events.map(([k, e]) => `${k} ${"serial" in e ? e.serial : ""}`);
    assert.deepEqual(kinds, ["issued a#1", "rotated a#2"]);
    const rotated = events[1];
    assert.ok(rotated?.[0] === "rotated");
    assert.equal(rotated[1].previousSerial, "a#1");
    assert.equal(rotated[1].nextRotation.getTime(), T0 + 23 * HOUR);
    mgr.close();
  });

  void test("renewal jitter only brings renewal forward, by at most refreshJitter of the lifetime", async () => {
    const { mgr, fetcher, clock } = setup({ random: () => 0.999, refreshJitter: 0.05 });
    mgr.track(id("a"));
    fetcher.openCall("a").succeed({ lifetimeMs: DAY });
    await clock.advanceTo(T0 + 12 * HOUR);
    const renewedAt = fetcher.timesOf("a")[1];
    assert.ok(renewedAt !== undefined, "renewed by half-life");
    assert.ok(
      renewedAt >= T0 + 12 * HOUR - 0.05 * DAY && renewedAt < T0 + 12 * HOUR,
      `renewed at +${renewedAt - T0} ms`,
    );
    mgr.close();
  });

  void test("year-long certificates: no timer exceeds setTimeout's limit, renewal still lands on half-life", async () => {
    const { mgr, fetcher, clock } = setup();
    mgr.track(id("a"));
    fetcher.openCall("a").succeed({ lifetimeMs: 365 * DAY });
    await clock.advanceTo(T0 + 182.5 * DAY - 1);
    assert.equal(fetcher.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(fetcher.timesOf("a"), [T0, T0 + 182.5 * DAY]);
    assert.ok(Math.max(...clock.requestedDelays) <= 2 ** 31 - 1);
    mgr.close();
  });
});

void describe("failures", () => {
  void test("retries back off from 500 ms, doubling, capped at 150 s; a success resets the backoff", async () => {
    const { mgr, fetcher, clock, events } = setup();
    fetcher.auto = () => new Error("CA unreachable");
    mgr.track(id("a"));
    await clock.advance(20 * MIN);
    const times = fetcher.timesOf("a");
    const gaps = times.slice(1, 14).map((t, i) => t - (times[i] ?? 0));
    assert.deepEqual(
      gaps,
      [500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 150000, 150000, 150000, 150000],
    );

    const snap = mgr.snapshot()[0];
    assert.equal(snap?.state, "backing-off");
    assert.equal(snap?.attempts, times.length);
    assert.equal(snap?.lastError?.code, "AMBIT_E_UNAVAILABLE");
    assert.match(snap?.lastError?.message ?? "", /CA unreachable/);
    const lastFailed = events.at(-1);
    assert.ok(lastFailed?.[0] === "failed");
    assert.equal(lastFailed[1].attempt, times.length);
    assert.equal(snap?.nextRotation, lastFailed[1].retryAt.toISOString());

    fetcher.auto = () => ({ lifetimeMs: HOUR });
    await clock.advance(150 * SEC);
    assert.equal(mgr.snapshot()[0]?.state, "available");
    assert.equal(mgr.snapshot()[0]?.attempts, 0);
    const renewal = (fetcher.calls.at(-1)?.at ?? NaN) + 30 * MIN; // half-life of the one-hour certificate
    fetcher.auto = () => new Error("CA unreachable again");
    const before = fetcher.calls.length;
    await clock.advanceTo(renewal + 600);
    assert.deepEqual(
      fetcher.calls.slice(before).map((c) => c.at - renewal),
      [0, 500],
    );
    mgr.close();
  });

  void test("backoff jitter only shortens a delay, by at most backoffJitter of it", async () => {
    const { mgr, fetcher, clock } = setup({ random: () => 0.999, backoffJitter: 0.1 });
    fetcher.auto = () => new Error("down");
    mgr.track(id("a"));
    await clock.advance(10 * MIN);
    const times = fetcher.timesOf("a");
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    const nominal = [500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 150000];
    nominal.forEach((d, i) => {
      const g = gaps[i] ?? -1;
      assert.ok(g >= 0.9 * d && g <= d, `retry ${i + 1}: ${g} ms for nominal ${d}`);
    });
    mgr.close();
  });

  void test("the old certificate is served while renewals fail, until it expires; never after", async () => {
    const { mgr, fetcher, clock, events } = setup();
    mgr.track(id("a"));
    fetcher.openCall("a").succeed({ lifetimeMs: 100 * SEC });
    fetcher.auto = () => new Error("CA unreachable");
    await clock.advanceTo(T0 + 60 * SEC);
    assert.ok(fetcher.calls.length > 2, "renewal attempted and retried");
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#1");
    const failed = events.find(([k]) => k === "failed");
    assert.ok(failed?.[0] === "failed");
    assert.equal(failed[1].servingSerial, "a#1");
    assert.equal(mgr.snapshot()[0]?.state, "backing-off");
    assert.equal(mgr.snapshot()[0]?.serial, "a#1");

    await clock.advanceTo(T0 + 100 * SEC - 1);
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#1");
    await clock.advance(1);
    const err = await rejectsWith(mgr.fetchCertificate(id("a")), "fetch-failed");
    assert.match(err.message, /CA unreachable/);
    assert.ok(events.some(([k, e]) => k === "expired" && e.serial === "a#1"));
    assert.equal(mgr.snapshot()[0]?.serial, null);

    fetcher.auto = () => ({ lifetimeMs: DAY });
    await clock.advance(150 * SEC);
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, `a#2`);
    mgr.close();
  });

  void test("callers waiting on a failed fetch get its error; during the backoff new callers get it at once", async () => {
    const { mgr, fetcher, clock } = setup();
    mgr.track(id("a"));
    const waiting = [mgr.fetchCertificate(id("a")), mgr.fetchCertificate(id("a"))];
    fetcher.openCall("a").fail(new Error("CA unreachable"));
    await Promise.all(waiting.map((p) => rejectsWith(p, "fetch-failed")));
    await rejectsWith(mgr.fetchCertificate(id("a")), "fetch-failed");
    assert.equal(fetcher.calls.length, 1, "no extra fetch while backing off");
    await clock.advance(500);
    assert.equal(fetcher.calls.length, 2);
    const p = mgr.fetchCertificate(id("a"));
    fetcher.openCall("a").succeed();
    assert.equal((await p).serial, "a#1");
    mgr.close();
  });

  void test("a certificate that has already expired when it arrives is refused and retried", async () => {
    const { mgr, fetcher, clock } = setup();
    mgr.track(id("a"));
    const p = mgr.fetchCertificate(id("a"));
    fetcher.openCall("a").succeed({ notBefore: T0 - 2 * DAY, notAfter: T0 - DAY });
    const err = await rejectsWith(p, "invalid-certificate");
    assert.match(err.message, /expired/);
    await clock.advance(500);
    assert.equal(fetcher.calls.length, 2);
    mgr.close();
  });

  void test("a caller arriving after expiry waits for the renewal rather than getting the expired certificate", async () => {
    const { mgr, fetcher, clock } = setup({ fetchTimeoutMs: 0 });
    mgr.track(id("a"));
    fetcher.openCall("a").succeed({ lifetimeMs: 100 * SEC });
    await clock.advanceTo(T0 + 100 * SEC); // renewal started at 50 s and hangs
    const got: string[] = [];
    const p = mgr.fetchCertificate(id("a")).then((c) => got.push(c.serial));
    await settle();
    assert.deepEqual(got, [], "still waiting");
    fetcher.openCall("a").succeed();
    await p;
    assert.deepEqual(got, ["a#2"]);
    mgr.close();
  });

  void test("a fetch running longer than fetchTimeoutMs is aborted, frees its slot and is retried", async () => {
    const { mgr, fetcher, clock, events } = setup({ maxConcurrentFetches: 1, fetchTimeoutMs: 10 * SEC });
    mgr.track(id("a"));
    mgr.track(id("b"));
    await clock.advance(10 * SEC);
    assert.equal(fetcher.calls[0]?.signal.aborted, true);
    assert.deepEqual(fetcher.names(), ["a", "b"]);
    const failed = events.find(([k]) => k === "failed");
    assert.ok(failed?.[0] === "failed");
    assert.equal(failed[1].error.detail?.["reason"], "timeout");
    fetcher.openCall("b").succeed();
    await clock.advance(500);
    assert.deepEqual(fetcher.names(), ["a", "b", "a"]);
    mgr.close();
  });
});

void describe("tracking", () => {
  void test("track prefetches; untrack of the last reference drops the certificate and cancels its timers", async () => {
    const { mgr, fetcher, clock, events } = setup();
    mgr.track(id("a"));
    mgr.track(id("a"));
    await settle();
    assert.deepEqual(fetcher.names(), ["a"], "prefetched once");
    fetcher.openCall("a").succeed();
    await settle();
    mgr.untrack(id("a"));
    assert.equal(mgr.snapshot()[0]?.trackedBy, 1);
    assert.ok(clock.pendingTimers() > 0);
    mgr.untrack(id("a"));
    assert.deepEqual(mgr.snapshot(), []);
    assert.equal(clock.pendingTimers(), 0);
    assert.deepEqual(events.at(-1), [
      "dropped",
      { identity: id("a"), spiffeId: "spiffe://cluster.local/ns/default/sa/a", reason: "untracked" },
    ]);
    await clock.advance(3 * DAY);
    assert.equal(fetcher.calls.length, 1, "never renewed after untrack");
    mgr.untrack(id("a")); // extra untrack is harmless
    mgr.close();
  });

  void test("untrack during a fetch aborts it, rejects its waiters and frees the slot", async () => {
    const { mgr, fetcher } = setup({ maxConcurrentFetches: 1 });
    mgr.track(id("a"));
    const p = mgr.fetchCertificate(id("a"));
    mgr.track(id("b"));
    mgr.untrack(id("a"));
    await rejectsWith(p, "dropped");
    assert.equal(fetcher.calls[0]?.signal.aborted, true);
    assert.deepEqual(fetcher.names(), ["a", "b"]);
    fetcher.calls[0]?.succeed(); // a late answer is ignored
    await settle();
    assert.deepEqual(
      mgr.snapshot().map((s) => s.identity),
      ["spiffe://cluster.local/ns/default/sa/b"],
    );
    mgr.close();
  });

  void test("an identity fetched but never tracked is kept until its half-life, then dropped rather than renewed", async () => {
    const { mgr, fetcher, clock, events } = setup();
    const p = mgr.fetchCertificate(id("a"));
    fetcher.openCall("a").succeed({ lifetimeMs: DAY });
    assert.equal((await p).serial, "a#1");
    await clock.advanceTo(T0 + 12 * HOUR - 1);
    assert.equal((await mgr.fetchCertificate(id("a"))).serial, "a#1");
    await clock.advance(1);
    assert.deepEqual(mgr.snapshot(), []);
    assert.equal(clock.pendingTimers(), 0);
    assert.equal(fetcher.calls.length, 1);
    assert.ok(events.some(([k, e]) => k === "dropped" && e.reason === "unused"));
    mgr.close();
  });

  void test("tracking an identity first fetched on demand keeps it renewed", async () => {
    const { mgr, fetcher, clock } = setup();
    const p = mgr.fetchCertificate(id("a"));
    fetcher.openCall("a").succeed({ lifetimeMs: DAY });
    await p;
    mgr.track(id("a"));
    await clock.advanceTo(T0 + 12 * HOUR);
    assert.deepEqual(fetcher.timesOf("a"), [T0, T0 + 12 * HOUR]);
    mgr.close();
  });
});

void describe("bounds and shutdown", () => {
  void test("the wait queue is bounded: past the bound a fetch fails at once and is retried later", async () => {
    const { mgr, fetcher, clock } = setup({ maxConcurrentFetches: 1, maxQueuedFetches: 3 });
    mgr.track(id("busy"));
    const queued = ["q1", "q2", "q3"].map((n) => mgr.fetchCertificate(id(n)));
    mgr.track(id("over"));
    const err = await rejectsWith(mgr.fetchCertificate(id("over")), "queue-full");
    assert.match(err.message, /limit 3/);
    assert.deepEqual(fetcher.names(), ["busy"]);
    await answerOneByOne(fetcher, 4);
    assert.deepEqual(
      (await Promise.all(queued)).map((c) => c.serial),
      ["q1#1", "q2#1", "q3#1"],
    );
    await clock.advance(500);
    assert.deepEqual(fetcher.names(), ["busy", "q1", "q2", "q3", "over"]);
    mgr.close();
  });

  void test("the default queue bound is 10,000 identities", async () => {
    const { mgr, fetcher } = setup();
    for (let i = 0; i < 8 + 10_000; i++) mgr.track(id(`w${i}`));
    assert.equal(fetcher.calls.length, 8);
    await rejectsWith(mgr.fetchCertificate(id("one-too-many")), "queue-full");
    mgr.close();
  });

  void test("close rejects waiting callers, aborts running fetches and leaves no timers", async () => {
    const { mgr, fetcher, clock } = setup({ maxConcurrentFetches: 1 });
    mgr.track(id("done"));
    fetcher.openCall("done").succeed();
    await settle();
    const running = mgr.fetchCertificate(id("running"));
    const queued = mgr.fetchCertificate(id("queued"));
    assert.ok(clock.pendingTimers() > 0);
    mgr.close();
    await Promise.all([rejectsWith(running, "shutdown"), rejectsWith(queued, "shutdown")]);
    assert.equal(fetcher.calls.find((c) => c.name === "running")?.signal.aborted, true);
    assert.equal(clock.pendingTimers(), 0);
    assert.deepEqual(mgr.snapshot(), []);
    await rejectsWith(mgr.fetchCertificate(id("done")), "shutdown");
    mgr.track(id("later"));
    await clock.advance(DAY);
    assert.deepEqual(fetcher.names(), ["done", "running"]);
    mgr.close(); // idempotent
  });

  void test("options out of range are refused", () => {
    const fetcher = new ScriptedFetcher(new FakeClock());
    assert.throws(() => new CertificateManager({ fetcher, maxConcurrentFetches: 0 }), RangeError);
    assert.throws(
      () => new CertificateManager({ fetcher, initialBackoffMs: 1000, maxBackoffMs: 10 }),
      RangeError,
    );
    assert.throws(() => new CertificateManager({ fetcher, refreshJitter: 0.6 }), RangeError);
  });
});

void describe("snapshot", () => {
  void test("reports state, serial, validity, next rotation, fetch, last error and attempts per identity", async () => {
    const { mgr, fetcher, clock } = setup({ maxConcurrentFetches: 1 });
    mgr.track(id("ok"));
    mgr.track(id("broken"));
    mgr.track(id("waiting"));
    fetcher.openCall("ok").succeed({ lifetimeMs: DAY });
    await settle();
    fetcher.openCall("broken").fail(new Error("CA unreachable"));
    await settle();
    fetcher.openCall("waiting"); // running now
    await clock.advance(100);
    const byName = new Map(mgr.snapshot().map((s) => [s.identity.split("/").at(-1), s]));
    assert.deepEqual(
      mgr.snapshot().map((s) => s.identity),
      [
        "spiffe://cluster.local/ns/default/sa/broken",
        "spiffe://cluster.local/ns/default/sa/ok",
        "spiffe://cluster.local/ns/default/sa/waiting",
      ],
    );
    assert.deepEqual(byName.get("ok"), {
      identity: "spiffe://cluster.local/ns/default/sa/ok",
      state: "available",
      trackedBy: 1,
      serial: "ok#1",
      notBefore: new Date(T0).toISOString(),
      notAfter: new Date(T0 + DAY).toISOString(),
      nextRotation: new Date(T0 + 12 * HOUR).toISOString(),
      fetch: null,
      lastError: null,
      attempts: 0,
      waiters: 0,
    });
    const broken = byName.get("broken");
    assert.equal(broken?.state, "backing-off");
    assert.equal(broken?.serial, null);
    assert.equal(broken?.attempts, 1);
    assert.equal(broken?.nextRotation, new Date(T0 + 500).toISOString());
    assert.equal(broken?.lastError?.at, new Date(T0).toISOString());
    const waiting = byName.get("waiting");
    assert.equal(waiting?.state, "initializing");
    assert.deepEqual(waiting?.fetch, { state: "in-flight", priority: "Warmup" });
    assert.equal(waiting?.nextRotation, null);
    mgr.close();
  });
});
