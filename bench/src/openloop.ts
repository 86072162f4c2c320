// The open-loop core: requests are due at fixed intended times (rate R: request k at start + k/R),
// whatever the system under test is doing. A due request waits for an idle connection (HTTP/1.1,
// one request at a time per connection), and its latency is measured from its intended send time,
// not from when it could be sent: a stall of the system shows in every request that was due during
// it (coordinated omission corrected, as wrk2 does). Pure and clock-free, so the same driver runs
// the real generator (loadgen.ts) and the simulation the unit test checks.

export interface OpenLoopSink {
  /** Send request `k` on connection `conn` now. */
  send(conn: number, k: number): void;
  /** Request `k` completed: latency from its intended time and from its actual send (µs). */
  record(correctedUs: number, serviceUs: number, k: number): void;
}

export class OpenLoopDriver {
  private due = 0;
  private nextToSend = 0;
  private readonly idle: number[] = [];
  private readonly inflight: (number | undefined)[];
  private readonly sentAtNs: number[];
  completed = 0;

  constructor(
    /** Requests per second. */
    readonly rate: number,
    /** Requests in the run. */
    readonly total: number,
    connections: number,
    private readonly sink: OpenLoopSink,
  ) {
    if (!(rate > 0) || !Number.isInteger(total) || total < 0 || connections < 1)
      throw new Error(`open loop: bad parameters rate=${rate} total=${total} connections=${connections}`);
    this.inflight = new Array<number | undefined>(connections).fill(undefined);
    this.sentAtNs = new Array<number>(connections).fill(0);
    for (let c = connections - 1; c >= 0; c--) this.idle.push(c);
  }

  /** Intended send time of request k, in ns from the start of the run. */
  intendedNs(k: number): number {
    return (k * 1e9) / this.rate;
  }

  /** How many requests are due at `nowNs` (ns from the start), capped at the total. */
  dueAt(nowNs: number): number {
    if (nowNs < 0) return 0;
    // The epsilon keeps intendedNs(k) due at k despite floating-point rounding.
    return Math.min(this.total, Math.floor((nowNs * this.rate) / 1e9 + 1e-9) + 1);
  }

  /** Requests due but not yet sent (waiting for a connection). */
  get backlog(): number {
    return this.due - this.nextToSend;
  }

  get sent(): number {
    return this.nextToSend;
  }

  /** The clock says `nowNs`: make every request intended by then due and send what can be sent. */
  tick(nowNs: number): void {
    const d = this.dueAt(nowNs);
    if (d > this.due) this.due = d;
    this.dispatch(nowNs);
  }

  /** The response on `conn` completed at `nowNs`. */
  complete(conn: number, nowNs: number): void {
    const k = this.inflight[conn];
    if (k === undefined) throw new Error(`open loop: no request in flight on connection ${conn}`);
    this.inflight[conn] = undefined;
    this.completed++;
    this.sink.record(
      (nowNs - this.intendedNs(k)) / 1000,
      (nowNs - (this.sentAtNs[conn] as number)) / 1000,
      k,
    );
    this.idle.push(conn);
    this.tick(nowNs);
  }

  private dispatch(nowNs: number): void {
    while (this.nextToSend < this.due && this.idle.length > 0) {
      const conn = this.idle.pop() as number;
      const k = this.nextToSend++;
      this.inflight[conn] = k;
      this.sentAtNs[conn] = nowNs;
      this.sink.send(conn, k);
    }
  }
}

/**
 * Discrete-event simulation of the driver against a system whose service time for request k is
 * `serviceUs(k)` (each connection serves one request at a time). Returns both latency series.
 */
export function simulateOpenLoop(
  rate: number,
  total: number,
  connections: number,
  serviceUs: (k: number) => number,
): { corrected: number[]; service: number[] } {
  const corrected: number[] = [];
  const service: number[] = [];
  // Pending completions: [time ns, connection], kept sorted by time.
  const events: { at: number; conn: number }[] = [];
  let now = 0;
  const driver = new OpenLoopDriver(rate, total, connections, {
    send: (conn, k) => {
      const at = now + serviceUs(k) * 1000;
      let i = events.length;
      while (i > 0 && (events[i - 1] as { at: number }).at > at) i--;
      events.splice(i, 0, { at, conn });
    },
    record: (c, s) => {
      corrected.push(c);
      service.push(s);
    },
  });
  let nextArrival = 0;
  while (driver.completed < total) {
    const ev = events[0];
    const arrivalNs = nextArrival < total ? driver.intendedNs(nextArrival) : Number.POSITIVE_INFINITY;
    if (ev !== undefined && ev.at <= arrivalNs) {
      events.shift();
      now = ev.at;
      driver.complete(ev.conn, now);
    } else {
      now = arrivalNs;
      driver.tick(now);
      nextArrival = Math.max(nextArrival + 1, driver.dueAt(now));
    }
  }
  return { corrected, service };
}
