// Holds the certificates of the workload identities a node (or waypoint) serves: fetches them from
// the CA on demand and by priority, renews them at half-life, and backs off per identity on failure.
import { EventEmitter } from "node:events";
import { AmbitError, isAmbitError } from "../core/errors.js";
import type { ErrorCode } from "../core/errors.js";
import { formatSpiffeId } from "../model/spiffe.js";
import type { Identity } from "../model/spiffe.js";
import type { CertificateFetcher, IssuedCertificate } from "./cert-types.js";

export type { CertificateFetcher, IssuedCertificate } from "./cert-types.js";

/** Time and timers, injectable so that scheduling can be tested on a fake clock. */
export interface Clock {
  /** Milliseconds since the Unix epoch (certificate validity is wall-clock time). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real time; timers are unref'd so a pending renewal never keeps the process alive on its own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Who is waiting: a connection blocked on the certificate, a prefetch for a workload that just
 * arrived, or a rotation while the current certificate is still valid. Highest first.
 */
export type FetchPriority = "Connection" | "Warmup" | "Refresh";
const PRIORITIES: readonly FetchPriority[] = ["Connection", "Warmup", "Refresh"];

export interface CertificateManagerOptions {
  fetcher: CertificateFetcher;
  clock?: Clock;
  /** Fetches running at once; the rest queue by priority. Default 8. */
  maxConcurrentFetches?: number;
  /** Identities allowed to wait for a fetch slot; beyond it a fetch fails at once. Default 10,000. */
  maxQueuedFetches?: number;
  /** A fetch still running after this long is aborted and counts as a failure. Default 30 s; 0 disables. */
  fetchTimeoutMs?: number;
  /** First retry delay after a failure; doubles per consecutive failure. Default 500 ms. */
  initialBackoffMs?: number;
  /** Ceiling for the retry delay. Default 150 s. */
  maxBackoffMs?: number;
  /**
   * Renewal happens at half-life minus up to this fraction of the lifetime, so that certificates
   * issued together (a node restart) are not all renewed in the same instant. Default 0.05, max 0.25.
   */
  refreshJitter?: number;
  /** A retry delay is shortened by up to this fraction of itself. Default 0.1, below 1. */
  backoffJitter?: number;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
}

export interface CertIssuedEvent {
  identity: Identity;
  spiffeId: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** When the manager will start renewing it (for an untracked identity: when it will be dropped). */
  nextRotation: Date;
  /** Serial of the certificate this one replaces ("rotated" only). */
  previousSerial: string | null;
}

export interface CertFailedEvent {
  identity: Identity;
  spiffeId: string;
  error: AmbitError;
  /** Consecutive failures for this identity, this one included. */
  attempt: number;
  retryAt: Date;
  /** The older certificate still being served, if one is valid. */
  servingSerial: string | null;
}

export interface CertDroppedEvent {
  identity: Identity;
  spiffeId: string;
  /** "untracked": the last local workload went away; "unused": fetched on demand and never tracked. */
  reason: "untracked" | "unused";
}

export interface CertExpiredEvent {
  identity: Identity;
  spiffeId: string;
  serial: string;
}

export interface CertificateManagerEvents {
  issued: [CertIssuedEvent];
  rotated: [CertIssuedEvent];
  failed: [CertFailedEvent];
  dropped: [CertDroppedEvent];
  expired: [CertExpiredEvent];
}

/** One identity as the node admin's /config_dump shows it; times are ISO 8601, absent ones null. */
export interface CertificateStatus {
  identity: string;
  /** initializing: no certificate yet and no failure; backing-off: the last fetch failed. */
  state: "initializing" | "available" | "backing-off";
  /** track() references; 0 for an identity fetched on demand only. */
  trackedBy: number;
  /** The certificate served now; null when there is no valid one. */
  serial: string | null;
  notBefore: string | null;
  notAfter: string | null;
  /** When the next renewal or retry is due; null while a fetch is queued or running, or when untracked. */
  nextRotation: string | null;
  fetch: { state: "queued" | "in-flight"; priority: FetchPriority } | null;
  lastError: { code: ErrorCode; message: string; at: string } | null;
  /** Consecutive failed fetches (0 after a success). */
  attempts: number;
  /** Callers waiting for a certificate. */
  waiters: number;
}

/** Why a certificate request failed without reaching (or hearing back from) the CA. */
export type CertFailureReason =
  "fetch-failed" | "timeout" | "invalid-certificate" | "queue-full" | "dropped" | "shutdown";

const DEFAULTS = {
  maxConcurrentFetches: 8,
  maxQueuedFetches: 10_000,
  fetchTimeoutMs: 30_000,
  initialBackoffMs: 500,
  maxBackoffMs: 150_000,
  refreshJitter: 0.05,
  backoffJitter: 0.1,
};

// setTimeout overflows past ~24.8 days and fires at once; a year-long certificate's half-life is
// further than that, so long waits are chained.
const MAX_TIMER_MS = 2 ** 31 - 1;

// A CA handing out certificates already past half-life would otherwise cause a renewal loop.
const MIN_REFRESH_DELAY_MS = 1_000;

interface Timer {
  at: number;
  handle: unknown;
}

interface Waiter {
  resolve(cert: IssuedCertificate): void;
  reject(err: AmbitError): void;
}

interface Fetch {
  controller: AbortController;
  timeout: unknown;
  // Set once the slot is released (result, timeout, drop or close); later results are ignored.
  done: boolean;
}

interface Entry {
  key: string;
  identity: Identity;
  refs: number;
  /** The newest certificate, until it expires. */
  cert: IssuedCertificate | undefined;
  lastSerial: string | null;
  phase: "idle" | "queued" | "fetching";
  priority: FetchPriority;
  fetch: Fetch | undefined;
  /** While idle: the renewal ("refresh") or retry after failure ("retry") that is due next. */
  timer: (Timer & { kind: "refresh" | "retry" }) | undefined;
  expiryTimer: Timer | undefined;
  waiters: Waiter[];
  attempts: number;
  lastError: AmbitError | undefined;
  lastErrorAt: number;
}

/** FIFO per priority level; a Set keeps insertion order and removes in O(1). */
class FetchQueue {
  private readonly levels = new Map<FetchPriority, Set<Entry>>(PRIORITIES.map((p) => [p, new Set()]));
  size = 0;

  add(entry: Entry, priority: FetchPriority): void {
    entry.priority = priority;
    this.levels.get(priority)?.add(entry);
    this.size++;
  }

  remove(entry: Entry): void {
    if (this.levels.get(entry.priority)?.delete(entry)) this.size--;
  }

  shift(): Entry | undefined {
    for (const level of this.levels.values()) {
      for (const entry of level) {
        level.delete(entry);
        this.size--;
        return entry;
      }
    }
    return undefined;
  }

  clear(): void {
    for (const level of this.levels.values()) level.clear();
    this.size = 0;
  }
}

function rank(p: FetchPriority): number {
  return PRIORITIES.indexOf(p);
}

function certError(
  spiffeId: string,
  reason: CertFailureReason,
  message: string,
  cause?: unknown,
  extra?: Record<string, unknown>,
): AmbitError {
  return new AmbitError(
    "AMBIT_E_UNAVAILABLE",
    message,
    { identity: spiffeId, reason, ...extra },
    cause === undefined ? undefined : { cause },
  );
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`CertificateManager: ${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

export class CertificateManager extends EventEmitter<CertificateManagerEvents> {
  private readonly fetcher: CertificateFetcher;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly fetchTimeoutMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly refreshJitter: number;
  private readonly backoffJitter: number;

  private readonly entries = new Map<string, Entry>();
  private readonly queue = new FetchQueue();
  private inFlight = 0;
  private closed = false;

  constructor(options: CertificateManagerOptions) {
    super();
    this.fetcher = options.fetcher;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    const o = options;
    const d = DEFAULTS;
    this.maxConcurrent = checkRange(
      "maxConcurrentFetches",
      o.maxConcurrentFetches ?? d.maxConcurrentFetches,
      1,
      10_000,
    );
    this.maxQueued = checkRange("maxQueuedFetches", o.maxQueuedFetches ?? d.maxQueuedFetches, 0, 10_000_000);
    this.fetchTimeoutMs = checkRange("fetchTimeoutMs", o.fetchTimeoutMs ?? d.fetchTimeoutMs, 0, MAX_TIMER_MS);
    this.initialBackoffMs = checkRange(
      "initialBackoffMs",
      o.initialBackoffMs ?? d.initialBackoffMs,
      1,
      MAX_TIMER_MS,
    );
    this.maxBackoffMs = checkRange(
      "maxBackoffMs",
      o.maxBackoffMs ?? d.maxBackoffMs,
      this.initialBackoffMs,
      MAX_TIMER_MS,
    );
    this.refreshJitter = checkRange("refreshJitter", o.refreshJitter ?? d.refreshJitter, 0, 0.25);
    this.backoffJitter = checkRange("backoffJitter", o.backoffJitter ?? d.backoffJitter, 0, 0.99);
  }

  /**
   * The identity's current certificate. A valid cached one is returned at once (even while its
   * renewal is under way); otherwise the caller joins the identity's single pending fetch, raising
   * its priority if needed. While the identity is backing off after a failure and holds no valid
   * certificate, the last error is returned at once rather than holding a connection until the
   * retry. An identity nobody tracks is fetched too, but kept only until its half-life.
   */
  fetchCertificate(identity: Identity, priority: FetchPriority = "Connection"): Promise<IssuedCertificate> {
    const key = formatSpiffeId(identity);
    if (this.closed) return Promise.reject(this.shutdownError(key));
    const entry = this.entries.get(key) ?? this.createEntry(identity, key);
    const cert = this.validCert(entry);
    if (cert) return Promise.resolve(cert);
    if (entry.phase === "idle" && entry.timer?.kind === "retry" && entry.lastError) {
      return Promise.reject(entry.lastError);
    }
    return new Promise<IssuedCertificate>((resolve, reject) => {
      entry.waiters.push({ resolve, reject });
      this.ensureFetch(entry, priority);
    });
  }

  /** A local workload needs this identity: keep its certificate fetched and renewed (prefetching now). */
  track(identity: Identity): void {
    if (this.closed) return;
    const key = formatSpiffeId(identity);
    const entry = this.entries.get(key) ?? this.createEntry(identity, key);
    entry.refs++;
    if (!this.validCert(entry)) this.ensureFetch(entry, "Warmup");
  }

  /**
   * One fewer local workload needs this identity. At zero the certificate is dropped: timers
   * cancelled, a running fetch aborted, waiting callers rejected. Extra calls are ignored.
   */
  untrack(identity: Identity): void {
    const entry = this.entries.get(formatSpiffeId(identity));
    if (!entry || entry.refs === 0) return;
    entry.refs--;
    if (entry.refs === 0) this.drop(entry, "untracked");
  }

  /** Every identity held, sorted by SPIFFE ID, for the node admin's /config_dump. */
  snapshot(): CertificateStatus[] {
    const out: CertificateStatus[] = [];
    for (const e of this.entries.values()) {
      const cert = this.validCert(e);
      const iso = (d: Date | number) => new Date(d).toISOString();
      out.push({
        identity: e.key,
        state: e.attempts > 0 ? "backing-off" : cert ? "available" : "initializing",
        trackedBy: e.refs,
        serial: cert ? cert.serial : null,
        notBefore: cert ? iso(cert.notBefore) : null,
        notAfter: cert ? iso(cert.notAfter) : null,
        nextRotation: e.timer && e.refs > 0 ? iso(e.timer.at) : null,
        fetch:
          e.phase === "idle"
            ? null
            : { state: e.phase === "queued" ? "queued" : "in-flight", priority: e.priority },
        lastError: e.lastError
          ? { code: e.lastError.code, message: e.lastError.message, at: iso(e.lastErrorAt) }
          : null,
        attempts: e.attempts,
        waiters: e.waiters.length,
      });
    }
    return out.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
  }

  /** Cancels every timer and fetch; waiting and later callers are rejected with a shutdown error. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    this.queue.clear();
    for (const entry of entries) {
      const err = this.shutdownError(entry.key);
      this.cancelTimers(entry);
      this.abortFetch(entry, err);
      entry.phase = "idle";
      this.settleWaiters(entry, undefined, err);
    }
  }

  private createEntry(identity: Identity, key: string): Entry {
    const entry: Entry = {
      key,
      identity: { ...identity },
      refs: 0,
      cert: undefined,
      lastSerial: null,
      phase: "idle",
      priority: "Refresh",
      fetch: undefined,
      timer: undefined,
      expiryTimer: undefined,
      waiters: [],
      attempts: 0,
      lastError: undefined,
      lastErrorAt: 0,
    };
    this.entries.set(key, entry);
    return entry;
  }

  private validCert(entry: Entry): IssuedCertificate | undefined {
    const cert = entry.cert;
    return cert && cert.notAfter.getTime() > this.clock.now() ? cert : undefined;
  }

  /** Makes sure a fetch at `priority` or higher is queued or running, unless a retry is being waited out. */
  private ensureFetch(entry: Entry, priority: FetchPriority): void {
    switch (entry.phase) {
      case "fetching":
        if (rank(priority) < rank(entry.priority)) entry.priority = priority;
        return;
      case "queued":
        if (rank(priority) < rank(entry.priority)) {
          this.queue.remove(entry);
          this.queue.add(entry, priority);
        }
        return;
      case "idle":
        if (entry.timer?.kind === "retry") return;
        this.cancelTimer(entry.timer);
        entry.timer = undefined;
        this.enqueue(entry, priority);
    }
  }

  private enqueue(entry: Entry, priority: FetchPriority): void {
    if (this.queue.size >= this.maxQueued) {
      const err = certError(
        entry.key,
        "queue-full",
        `cannot fetch a certificate for ${entry.key}: ${this.queue.size} identities are already waiting ` +
          `for the CA (limit ${this.maxQueued}); will retry with backoff`,
        undefined,
        { limit: this.maxQueued },
      );
      this.fail(entry, err);
      return;
    }
    entry.phase = "queued";
    this.queue.add(entry, priority);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.maxConcurrent) {
      const entry = this.queue.shift();
      if (!entry) return;
      this.start(entry);
    }
  }

  private start(entry: Entry): void {
    const fetch: Fetch = { controller: new AbortController(), timeout: undefined, done: false };
    entry.phase = "fetching";
    entry.fetch = fetch;
    this.inFlight++;
    if (this.fetchTimeoutMs > 0) {
      fetch.timeout = this.clock.setTimeout(() => this.onTimeout(entry, fetch), this.fetchTimeoutMs);
    }
    let result: Promise<IssuedCertificate>;
    try {
      result = this.fetcher.fetch({ ...entry.identity }, fetch.controller.signal);
    } catch (err) {
      result = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    void result.then(
      (cert) => this.onFetched(entry, fetch, cert),
      (err: unknown) => this.onFetchError(entry, fetch, err),
    );
  }

  /** Releases the fetch slot; false if it was already released (late result of an aborted fetch). */
  private endFetch(entry: Entry, fetch: Fetch): boolean {
    if (fetch.done) return false;
    fetch.done = true;
    if (fetch.timeout !== undefined) this.clock.clearTimeout(fetch.timeout);
    this.inFlight--;
    if (entry.fetch === fetch) {
      entry.fetch = undefined;
      entry.phase = "idle";
    }
    return true;
  }

  private abortFetch(entry: Entry, reason: AmbitError): void {
    const fetch = entry.fetch;
    if (!fetch) return;
    this.endFetch(entry, fetch);
    fetch.controller.abort(reason);
  }

  private onTimeout(entry: Entry, fetch: Fetch): void {
    fetch.timeout = undefined;
    const err = certError(
      entry.key,
      "timeout",
      `fetching the certificate for ${entry.key} took longer than ${this.fetchTimeoutMs} ms; will retry with backoff`,
    );
    if (!this.endFetch(entry, fetch)) return;
    fetch.controller.abort(err);
    this.fail(entry, err);
    this.pump();
  }

  private onFetchError(entry: Entry, fetch: Fetch, cause: unknown): void {
    if (!this.endFetch(entry, fetch)) return;
    // A code the CA gave (not authorized, revoked...) says more than a generic "unavailable".
    const err = isAmbitError(cause)
      ? cause
      : certError(
          entry.key,
          "fetch-failed",
          `fetching the certificate for ${entry.key} failed: ${cause instanceof Error ? cause.message : String(cause)}; will retry with backoff`,
          cause,
        );
    this.fail(entry, err);
    this.pump();
  }

  private onFetched(entry: Entry, fetch: Fetch, cert: IssuedCertificate): void {
    if (!this.endFetch(entry, fetch)) return;
    const problem = this.checkIssued(entry, cert);
    if (problem) {
      this.fail(entry, problem);
      this.pump();
      return;
    }
    const previousSerial = entry.lastSerial;
    entry.cert = cert;
    entry.lastSerial = cert.serial;
    entry.attempts = 0;
    entry.lastError = undefined;
    this.cancelTimer(entry.expiryTimer);
    entry.expiryTimer = this.arm(cert.notAfter.getTime(), () => this.onExpired(entry, cert));
    const refreshAt = this.refreshTime(cert);
    entry.timer = { kind: "refresh", ...this.arm(refreshAt, () => this.onDue(entry)) };
    this.settleWaiters(entry, cert, undefined);
    this.pump();
    this.notify(previousSerial === null ? "issued" : "rotated", {
      identity: { ...entry.identity },
      spiffeId: entry.key,
      serial: cert.serial,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      nextRotation: new Date(refreshAt),
      previousSerial,
    });
  }

  private checkIssued(entry: Entry, cert: IssuedCertificate): AmbitError | undefined {
    // The fetcher is another module's code: a malformed result must become a retry, not a throw
    // that would leave the identity with neither a certificate nor a scheduled fetch.
    const nb = cert.notBefore instanceof Date ? cert.notBefore.getTime() : NaN;
    const na = cert.notAfter instanceof Date ? cert.notAfter.getTime() : NaN;
    let why: string | undefined;
    if (!Number.isFinite(nb) || !Number.isFinite(na) || na <= nb)
      why = "its validity period is empty or invalid";
    else if (na <= this.clock.now()) why = `it expired at ${new Date(na).toISOString()}`;
    else if (!Array.isArray(cert.certChainPem) || cert.certChainPem.length === 0)
      why = "its certificate chain is empty";
    if (why === undefined) return undefined;
    return certError(
      entry.key,
      "invalid-certificate",
      `the CA returned an unusable certificate for ${entry.key} (serial ${cert.serial}): ${why}; will retry with backoff`,
    );
  }

  private refreshTime(cert: IssuedCertificate): number {
    const nb = cert.notBefore.getTime();
    const lifetime = cert.notAfter.getTime() - nb;
    const at = nb + lifetime / 2 - this.refreshJitter * lifetime * this.jitter();
    return Math.max(Math.floor(at), this.clock.now() + MIN_REFRESH_DELAY_MS);
  }

  private backoffDelay(attempt: number): number {
    const base = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (attempt - 1));
    return Math.max(1, Math.floor(base * (1 - this.backoffJitter * this.jitter())));
  }

  // Clamped so that an injected source cannot push a delay outside its documented bounds.
  private jitter(): number {
    const r = this.random();
    return Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  }

  /** A failed attempt: schedule the retry, serve the old certificate if still valid, else the error. */
  private fail(entry: Entry, err: AmbitError): void {
    const now = this.clock.now();
    entry.phase = "idle";
    entry.attempts++;
    entry.lastError = err;
    entry.lastErrorAt = now;
    const retryAt = now + this.backoffDelay(entry.attempts);
    this.cancelTimer(entry.timer);
    entry.timer = { kind: "retry", ...this.arm(retryAt, () => this.onDue(entry)) };
    const cert = this.validCert(entry);
    this.settleWaiters(entry, cert, err);
    this.notify("failed", {
      identity: { ...entry.identity },
      spiffeId: entry.key,
      error: err,
      attempt: entry.attempts,
      retryAt: new Date(retryAt),
      servingSerial: cert ? cert.serial : null,
    });
  }

  /** A renewal or retry is due; an identity nobody tracks is dropped instead of renewed. */
  private onDue(entry: Entry): void {
    entry.timer = undefined;
    if (entry.refs === 0) {
      this.drop(entry, "unused");
      return;
    }
    this.enqueue(entry, this.validCert(entry) ? "Refresh" : "Warmup");
  }

  private onExpired(entry: Entry, cert: IssuedCertificate): void {
    entry.expiryTimer = undefined;
    if (entry.cert !== cert) return;
    // Forget the key as well as the certificate: nothing may use it any more.
    entry.cert = undefined;
    this.notify("expired", { identity: { ...entry.identity }, spiffeId: entry.key, serial: cert.serial });
    if (this.entries.get(entry.key) !== entry) return;
    if (entry.refs > 0) this.ensureFetch(entry, "Warmup");
    else if (entry.phase === "idle") this.drop(entry, "unused");
  }

  private drop(entry: Entry, reason: CertDroppedEvent["reason"]): void {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    this.cancelTimers(entry);
    if (entry.phase === "queued") this.queue.remove(entry);
    const err = certError(
      entry.key,
      "dropped",
      `the certificate for ${entry.key} was dropped: no local workload uses this identity any more`,
    );
    this.abortFetch(entry, err);
    entry.phase = "idle";
    entry.cert = undefined;
    this.settleWaiters(entry, undefined, err);
    this.pump();
    this.notify("dropped", { identity: { ...entry.identity }, spiffeId: entry.key, reason });
  }

  private settleWaiters(
    entry: Entry,
    cert: IssuedCertificate | undefined,
    err: AmbitError | undefined,
  ): void {
    const waiters = entry.waiters;
    entry.waiters = [];
    for (const w of waiters) {
      if (cert) w.resolve(cert);
      else if (err) w.reject(err);
    }
  }

  private shutdownError(spiffeId: string): AmbitError {
    return certError(
      spiffeId,
      "shutdown",
      `the certificate manager is shut down; no certificate for ${spiffeId}`,
    );
  }

  /** A timer at an absolute time, chained past setTimeout's ~24.8-day limit. */
  private arm(at: number, fn: () => void): Timer {
    const timer: Timer = { at, handle: undefined };
    const step = (): void => {
      const delay = Math.max(0, at - this.clock.now());
      if (delay > MAX_TIMER_MS) timer.handle = this.clock.setTimeout(step, MAX_TIMER_MS);
      else timer.handle = this.clock.setTimeout(fn, delay);
    };
    step();
    return timer;
  }

  private cancelTimer(timer: Timer | undefined): void {
    if (timer) this.clock.clearTimeout(timer.handle);
  }

  private cancelTimers(entry: Entry): void {
    this.cancelTimer(entry.timer);
    this.cancelTimer(entry.expiryTimer);
    entry.timer = undefined;
    entry.expiryTimer = undefined;
  }

  // Listeners run after the state change is complete; one that throws must not leave the manager
  // half-updated, so its exception surfaces on its own, as an uncaught error would.
  private notify<K extends keyof CertificateManagerEvents>(
    event: K,
    payload: CertificateManagerEvents[K][0],
  ): void {
    try {
      (this.emit as (e: K, p: CertificateManagerEvents[K][0]) => boolean)(event, payload);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
