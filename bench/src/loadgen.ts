// The load generator, run as its own process (so it has a whole event loop to itself, and in the
// netns topology can run inside the client pod). One JSON spec in argv[2], one JSON result line on
// stdout. Every mode is bounded in time and count.
//   open     — open loop at a fixed rate over N keep-alive connections, latency from each request's
//              intended send time (coordinated omission corrected; openloop.ts) in an HDR histogram;
//              a worker thread wakes the event loop at each intended time (sub-millisecond, where
//              Node's own timers have 1 ms resolution).
//   closed   — closed loop: N connections, each sends its next request when the last one returned.
//   connrate — new connections: N in parallel, each connect (+SOCKS) → one request → close.
//   idle     — open N connections (one request each, so the tunnel reaches the backend), report,
//              then hold them until SIGTERM or `holdSeconds`.
import * as hdr from "hdr-histogram-js";
import type * as net from "node:net";
import { Worker } from "node:worker_threads";
import { ResponseParser, requestBytes } from "./http1.js";
import { OpenLoopDriver } from "./openloop.js";
import { dial, type Target } from "./socks.js";

export interface LoadSpec {
  mode: "open" | "closed" | "connrate" | "idle";
  target: Target;
  socks?: Target;
  connections: number;
  seconds: number;
  /** open: requests per second. */
  rate?: number;
  /** Run this long first without recording (JIT, pools, caches); default 1 s (open) or 0.5 s. */
  warmupSeconds?: number;
  /** idle: how long to hold the connections at most. */
  holdSeconds?: number;
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LoadResult {
  mode: LoadSpec["mode"];
  /** Requests (or connections, for connrate) completed. */
  completed: number;
  /** Requests sent but never answered, or due but never sent, when the run ended. */
  unfinished: number;
  errors: number;
  seconds: number;
  /** completed / seconds. */
  perSecond: number;
  /** Open loop: from intended send time (corrected); others: from send. µs. */
  latencyUs: LatencySummary;
  /** Open loop only: from the actual send (what a generator with coordinated omission reports). µs. */
  serviceUs?: LatencySummary;
  held?: number;
  /** idle: why connections failed (error message → count), to tell refusals from timeouts. */
  errorKinds?: Record<string, number>;
}

function histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export function summarize(h: hdr.Histogram): LatencySummary {
  return {
    count: h.totalCount,
    mean: h.mean,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  };
}

const rec = (h: hdr.Histogram, us: number): void => h.recordValue(Math.max(1, Math.round(us)));
const nowNs = (start: bigint): number => Number(process.hrtime.bigint() - start);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const REQ = requestBytes("bench");
const REQ_CLOSE = requestBytes("bench", true);

async function openConnections(spec: LoadSpec, n: number, parallel = 64): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next < n) {
        next++;
        out.push(await dial(spec.target, spec.socks));
      }
    }),
  );
  return out;
}

// The ticker thread: sleeps (Atomics.wait, sub-millisecond) until each request's intended time and
// posts the elapsed ns, which wakes the main event loop.
const TICKER = `
const { workerData, parentPort } = require("node:worker_threads");
const { start, rate, total } = workerData;
const t0 = BigInt(start);
const cell = new Int32Array(new SharedArrayBuffer(4));
let due = 0;
while (due < total) {
  const now = Number(process.hrtime.bigint() - t0);
  const d = now < 0 ? 0 : Math.min(total, Math.floor((now * rate) / 1e9 + 1e-9) + 1);
  if (d > due) { due = d; parentPort.postMessage(now); continue; }
  const waitMs = ((due * 1e9) / rate - now) / 1e6;
  if (waitMs > 0) Atomics.wait(cell, 0, 0, waitMs);
}
`;

async function openLoop(spec: LoadSpec): Promise<LoadResult> {
  const rate = spec.rate ?? 1000;
  const warm = Math.round(rate * (spec.warmupSeconds ?? 1));
  const total = warm + Math.round(rate * spec.seconds);
  const sockets = await openConnections(spec, spec.connections);
  const corrected = histogram();
  const service = histogram();
  let errors = 0;
  // Far enough ahead for the ticker thread to have started.
  const start = process.hrtime.bigint() + 200_000_000n;
  const driver = new OpenLoopDriver(rate, total, sockets.length, {
    send: (conn, _k) => {
      (sockets[conn] as net.Socket).write(REQ);
    },
    record: (c, s, k) => {
      if (k < warm) return;
      rec(corrected, c);
      rec(service, s);
    },
  });
  sockets.forEach((s, conn) => {
    onResponses(
      s,
      (n) => {
        for (let i = 0; i < n; i++) driver.complete(conn, nowNs(start));
      },
      () => errors++,
    );
  });
  const ticker = new Worker(TICKER, { eval: true, workerData: { start: start.toString(), rate, total } });
  ticker.on("message", () => driver.tick(nowNs(start)));
  const runMs = (total / rate) * 1000 + 200;
  const deadline = Date.now() + runMs + Math.max(5_000, runMs);
  while (driver.completed < total && Date.now() < deadline) await sleep(20);
  await ticker.terminate();
  for (const s of sockets) s.destroy();
  return {
    mode: "open",
    completed: corrected.totalCount,
    unfinished: total - driver.completed,
    errors,
    seconds: spec.seconds,
    perSecond: corrected.totalCount / spec.seconds,
    latencyUs: summarize(corrected),
    serviceUs: summarize(service),
  };
}

async function closedLoop(spec: LoadSpec): Promise<LoadResult> {
  const sockets = await openConnections(spec, spec.connections);
  const lat = histogram();
  let errors = 0;
  let completed = 0;
  let inflight = 0;
  const start = process.hrtime.bigint();
  const warmNs = (spec.warmupSeconds ?? 0.5) * 1e9;
  const endNs = warmNs + spec.seconds * 1e9;
  let measuredFromNs = -1;
  for (const s of sockets) {
    let sentAt = 0;
    const send = (): void => {
      sentAt = nowNs(start);
      inflight++;
      s.write(REQ);
    };
    onResponses(
      s,
      (n) => {
        const t = nowNs(start);
        inflight -= n;
        if (t >= warmNs) {
          if (measuredFromNs < 0) measuredFromNs = t;
          completed += n;
          rec(lat, (t - sentAt) / 1000);
        }
        if (t < endNs) send();
      },
      () => errors++,
    );
    send();
  }
  const deadline = Date.now() + spec.seconds * 1000 + 5_000;
  while (nowNs(start) < endNs || (inflight > 0 && Date.now() < deadline)) await sleep(10);
  const elapsed = (nowNs(start) - Math.max(0, measuredFromNs)) / 1e9;
  for (const s of sockets) s.destroy();
  return {
    mode: "closed",
    completed,
    unfinished: inflight,
    errors,
    seconds: elapsed,
    perSecond: completed / elapsed,
    latencyUs: summarize(lat),
  };
}

/**
 * Calls `onComplete(n)` whenever n > 0 whole responses arrived on a keep-alive socket; a malformed
 * response or a socket error calls `onError` (a malformed one also closes the socket).
 */
function onResponses(s: net.Socket, onComplete: (n: number) => void, onError: () => void): void {
  const parser = new ResponseParser();
  s.on("data", (d: Buffer) => {
    let n: number;
    try {
      n = parser.push(d);
    } catch {
      onError();
      s.destroy();
      return;
    }
    if (n > 0) onComplete(n);
  });
  s.on("error", onError);
}

/** One request on a fresh socket; resolves when the whole response arrived. */
function oneRequest(s: net.Socket, close: boolean, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const parser = new ResponseParser();
    const timer = setTimeout(() => done(new Error("response timeout")), timeoutMs);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      s.off("data", onData);
      s.off("error", done);
      s.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onClose = (): void => done(new Error("closed before the response"));
    const onData = (d: Buffer): void => {
      try {
        if (parser.push(d) > 0) done();
      } catch (err) {
        done(err as Error);
      }
    };
    s.on("data", onData);
    s.on("error", done);
    s.on("close", onClose);
    s.write(close ? REQ_CLOSE : REQ);
  });
}

async function connRate(spec: LoadSpec): Promise<LoadResult> {
  const lat = histogram();
  let completed = 0;
  let errors = 0;
  const start = process.hrtime.bigint();
  const warmNs = (spec.warmupSeconds ?? 0.5) * 1e9;
  const endNs = warmNs + spec.seconds * 1e9;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (nowNs(start) < endNs && errors < 1000) {
        const t0 = nowNs(start);
        let s: net.Socket | undefined;
        try {
          s = await dial(spec.target, spec.socks);
          await oneRequest(s, true);
          if (t0 >= warmNs) {
            completed++;
            rec(lat, (nowNs(start) - t0) / 1000);
          }
        } catch {
          errors++;
        } finally {
          s?.destroy();
        }
      }
    }),
  );
  const elapsed = (nowNs(start) - warmNs) / 1e9;
  return {
    mode: "connrate",
    completed,
    unfinished: 0,
    errors,
    seconds: elapsed,
    perSecond: completed / elapsed,
    latencyUs: summarize(lat),
  };
}

async function idle(spec: LoadSpec): Promise<LoadResult> {
  const lat = histogram();
  const sockets: net.Socket[] = [];
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  let next = 0;
  const start = process.hrtime.bigint();
  const openBy = Date.now() + spec.seconds * 1000;
  await Promise.all(
    Array.from({ length: Math.min(100, spec.connections) }, async () => {
      while (next < spec.connections && Date.now() < openBy && errors < 100) {
        next++;
        const t0 = nowNs(start);
        try {
          const s = await dial(spec.target, spec.socks);
          s.on("error", () => undefined);
          sockets.push(s);
          await oneRequest(s, false);
          rec(lat, (nowNs(start) - t0) / 1000);
        } catch (err) {
          errors++;
          const kind = (err as Error).message.slice(0, 120);
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        }
      }
    }),
  );
  const elapsed = nowNs(start) / 1e9;
  const alive = sockets.filter((s) => !s.destroyed).length;
  const result: LoadResult = {
    mode: "idle",
    completed: lat.totalCount,
    unfinished: 0,
    errors,
    seconds: elapsed,
    perSecond: lat.totalCount / elapsed,
    latencyUs: summarize(lat),
    held: alive,
    ...(errors > 0 ? { errorKinds } : {}),
  };
  // Report, then hold until told to stop (SIGTERM) or the hold time is up.
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, (spec.holdSeconds ?? 60) * 1000);
    process.once("SIGTERM", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  for (const s of sockets) s.destroy();
  return result;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  switch (spec.mode) {
    case "open":
      return openLoop(spec);
    case "closed":
      return closedLoop(spec);
    case "connrate":
      return connRate(spec);
    case "idle":
      return idle(spec);
  }
}

if (process.argv[1]?.endsWith("loadgen.js") && process.argv[2]) {
  const spec = JSON.parse(process.argv[2]) as LoadSpec;
  const result = await runLoad(spec);
  if (spec.mode !== "idle") process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
