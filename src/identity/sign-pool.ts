// The CA's signing pool: spreads CSR checking and signing over a few worker threads with a bounded
// number of requests in flight (refused with AMBIT_E_UNAVAILABLE beyond it); 0 workers signs inline.
import { Worker } from "node:worker_threads";
import type { CsrPolicy } from "./csr-policy.js";
import {
  LeafSigner,
  type FromWorker,
  type QueuedJob,
  type SignJob,
  type SignOutcome,
  type ToWorker,
} from "./sign-job.js";

export interface SignPoolOptions {
  workers: number;
  /** Requests accepted but not yet answered, across all workers. */
  maxPending: number;
  policy: CsrPolicy;
}

/** Jobs per message: large enough to amortize messaging, small enough to keep every worker fed. */
const MAX_BATCH = 8;

interface Waiter {
  resolve: (out: SignOutcome) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  inflight: Map<number, Waiter>;
  outbox: QueuedJob[];
  flushScheduled: boolean;
}

export class SignPool {
  private readonly slots: Slot[] = [];
  private readonly issuers = new Map<number, { certPem: string; keyPem: string }>();
  private readonly inline = new Map<number, LeafSigner>();
  private pending = 0;
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: SignPoolOptions) {
    for (let i = 0; i < opts.workers; i++) this.slots.push(this.spawn());
  }

  get workerCount(): number {
    return this.slots.length;
  }

  /** Requests accepted and not yet answered. */
  get pendingCount(): number {
    return this.pending;
  }

  /** Make an issuer available under `id`; messages to a worker are ordered, so later jobs see it. */
  addIssuer(id: number, certPem: string, keyPem: string): void {
    if (this.slots.length === 0) this.inline.set(id, LeafSigner.fromPem(certPem, keyPem, this.opts.policy));
    this.issuers.set(id, { certPem, keyPem });
    for (const s of this.slots) {
      this.flush(s);
      s.worker.postMessage({ t: "issuer", id, certPem, keyPem } satisfies ToWorker);
    }
  }

  dropIssuer(id: number): void {
    this.issuers.delete(id);
    this.inline.delete(id);
    for (const s of this.slots) {
      this.flush(s);
      s.worker.postMessage({ t: "drop", id } satisfies ToWorker);
    }
  }

  hasIssuer(id: number): boolean {
    return this.issuers.has(id);
  }

  run(issuer: number, job: SignJob): Promise<SignOutcome> {
    if (this.closed)
      return Promise.resolve({ ok: false, code: "AMBIT_E_UNAVAILABLE", reason: "the CA is shutting down" });
    if (this.pending >= this.opts.maxPending) {
      return Promise.resolve({
        ok: false,
        code: "AMBIT_E_UNAVAILABLE",
        reason: `the CA's signing queue is full (${this.pending} requests pending); retry with backoff`,
      });
    }
    if (this.slots.length === 0) {
      const signer = this.inline.get(issuer);
      if (!signer) return Promise.reject(new Error(`issuer ${issuer} is not loaded`));
      return Promise.resolve(signer.sign(job));
    }
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.inflight.size < slot.inflight.size) slot = s;
    const seq = ++this.seq;
    this.pending++;
    return new Promise<SignOutcome>((resolve, reject) => {
      if (slot.inflight.size === 0) slot.worker.ref();
      slot.inflight.set(seq, { resolve, reject });
      slot.outbox.push({ seq, issuer, job });
      if (slot.outbox.length >= MAX_BATCH) this.flush(slot);
      else if (!slot.flushScheduled) {
        slot.flushScheduled = true;
        queueMicrotask(() => this.flush(slot));
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
    for (const s of slots) this.failAll(s, new Error("the CA signing pool was closed"));
  }

  private flush(slot: Slot): void {
    slot.flushScheduled = false;
    if (slot.outbox.length === 0) return;
    const jobs = slot.outbox;
    slot.outbox = [];
    slot.worker.postMessage({ t: "sign", jobs } satisfies ToWorker);
  }

  private spawn(): Slot {
    const worker = new Worker(new URL("./sign-worker.js", import.meta.url), {
      workerData: { policy: this.opts.policy },
    });
    const slot: Slot = { worker, inflight: new Map(), outbox: [], flushScheduled: false };
    worker.unref(); // referenced only while it has work, so an idle pool never holds the process open
    worker.on("message", (m: FromWorker) => {
      for (const r of m.results) {
        const w = slot.inflight.get(r.seq);
        if (!w) continue;
        slot.inflight.delete(r.seq);
        this.pending--;
        if ("error" in r) w.reject(new Error(`signing worker: ${r.error}`));
        else w.resolve(r.out);
      }
      if (slot.inflight.size === 0) worker.unref();
    });
    const replace = (err: Error): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.failAll(slot, err);
      if (this.closed) return;
      const fresh = this.spawn();
      for (const [id, iss] of this.issuers)
        fresh.worker.postMessage({ t: "issuer", id, ...iss } satisfies ToWorker);
      this.slots[i] = fresh;
    };
    worker.on("error", (err) => replace(err));
    worker.on("exit", (code) => replace(new Error(`signing worker exited with code ${code}`)));
    return slot;
  }

  private failAll(slot: Slot, err: Error): void {
    for (const w of slot.inflight.values()) w.reject(err);
    this.pending -= slot.inflight.size;
    slot.inflight.clear();
    slot.outbox = [];
  }
}
