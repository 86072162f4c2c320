// Per-stream Delta xDS bookkeeping, pure: what a client has (name → version) per type, what it has
// acknowledged, which response nonces are in flight, and the diff to send when the server's
// resources change. A client in sync with the current view holds no map of its own: its versions
// are the view itself, by reference, so 50 synced clients share one map per type.

export interface VersionedResource {
  name: string;
  version: string;
  /** Encoded google.protobuf.Any. */
  resource: { typeUrl: string; value: Buffer };
}

/**
 * The server's current resources for one client, by type URL then name. An immutable snapshot: a
 * new config builds new maps, because clients in sync hold the view's maps by reference.
 */
export type ResourceView = ReadonlyMap<string, ReadonlyMap<string, VersionedResource>>;
type TypeView = ReadonlyMap<string, VersionedResource>;

export interface PendingResponse {
  typeUrl: string;
  nonce: string;
  /** name → version sent in this response. */
  sent: ReadonlyMap<string, string>;
  removed: readonly string[];
  sentAt: number;
}

interface Pending extends PendingResponse {
  /** What the client held, for every name this response changes, before it (undefined: nothing). */
  before: Map<string, string | undefined>;
}

export interface Diff {
  typeUrl: string;
  /** Shared between clients: never modified. */
  resources: readonly VersionedResource[];
  removed: readonly string[];
  /** The resources the client holds once it applies this diff. */
  target: TypeView;
}

const EMPTY: TypeView = new Map();

/**
 * Diffs between two views, computed once for all the clients that hold the same one: clients in
 * sync share their base map, so a push to 50 of them compares the views once, not 50 times.
 */
const sharedDiffs = new WeakMap<TypeView, WeakMap<TypeView, Omit<Diff, "typeUrl">>>();

function viewDiff(from: TypeView, target: TypeView): Omit<Diff, "typeUrl"> {
  let byTarget = sharedDiffs.get(from);
  const hit = byTarget?.get(target);
  if (hit) return hit;
  const resources: VersionedResource[] = [];
  for (const r of target.values()) if (from.get(r.name)?.version !== r.version) resources.push(r);
  const removed: string[] = [];
  for (const name of from.keys()) if (!target.has(name)) removed.push(name);
  const d = { resources, removed, target };
  if (!byTarget) sharedDiffs.set(from, (byTarget = new WeakMap()));
  byTarget.set(target, d);
  return d;
}

/**
 * name → version as a shared base (a view's resources, by reference) plus this client's own
 * differences from it (null: a base name the client does not hold).
 */
export class VersionSet {
  private base: TypeView = EMPTY;
  private readonly own = new Map<string, string | null>();
  private count = 0;

  get(name: string): string | undefined {
    const o = this.own.get(name);
    if (o !== undefined) return o ?? undefined;
    return this.base.get(name)?.version;
  }

  set(name: string, version: string | undefined): void {
    const had = this.get(name) !== undefined;
    const inBase = this.base.get(name)?.version;
    if (version === inBase) this.own.delete(name);
    else this.own.set(name, version ?? null);
    this.count += (version !== undefined ? 1 : 0) - (had ? 1 : 0);
  }

  delete(name: string): void {
    this.set(name, undefined);
  }

  get size(): number {
    return this.count;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const [name, r] of this.base) if (!this.own.has(name)) yield [name, r.version];
    for (const [name, v] of this.own) if (v !== null) yield [name, v];
  }

  /** The shared base, when this holds exactly it (no differences of its own). */
  exactBase(): TypeView | undefined {
    return this.own.size === 0 ? this.base : undefined;
  }

  /** Hold exactly `view`'s resources. */
  adopt(view: TypeView): void {
    this.base = view;
    this.own.clear();
    this.count = view.size;
  }

  /** Whether this holds exactly `view`'s resources. */
  equals(view: TypeView): boolean {
    if (this.count !== view.size) return false;
    if (this.base === view && this.own.size === 0) return true;
    for (const r of view.values()) if (this.get(r.name) !== r.version) return false;
    return true;
  }
}

interface TypeState {
  subscribed: boolean;
  /** What the client has, as far as the server knows (sent or announced by the client on reconnect). */
  known: VersionSet;
  /** Names whose last push the client rejected, with the version it kept (undefined: none). */
  kept: Map<string, string | undefined>;
  /** Whether a response for this subscription was sent (the first one goes out even when empty). */
  answered: boolean;
}

export class StreamState {
  private readonly types = new Map<string, TypeState>();
  /** In flight, oldest first (Map keeps insertion order). */
  private readonly pending = new Map<string, Pending>();
  private nonceSeq = 0;

  /** A subscription request (no nonce): wildcard subscription, with versions the client already holds. */
  subscribe(typeUrl: string, initialVersions: Readonly<Record<string, string>>): void {
    const t = this.types.get(typeUrl) ?? {
      subscribed: true,
      known: new VersionSet(),
      kept: new Map<string, string | undefined>(),
      answered: false,
    };
    t.subscribed = true;
    t.answered = false;
    for (const [name, version] of Object.entries(initialVersions)) t.known.set(name, version);
    this.types.set(typeUrl, t);
  }

  unsubscribe(typeUrl: string): void {
    this.types.delete(typeUrl);
    for (const [nonce, p] of this.pending) if (p.typeUrl === typeUrl) this.pending.delete(nonce);
  }

  subscribedTypes(): string[] {
    return [...this.types.keys()];
  }

  /** What to send for one type so the client ends up with exactly `view`'s resources. */
  diff(typeUrl: string, view: ResourceView): Diff | undefined {
    const t = this.types.get(typeUrl);
    if (!t?.subscribed) return undefined;
    const target = view.get(typeUrl) ?? EMPTY;
    const base = t.known.exactBase();
    let resources: readonly VersionedResource[];
    let removed: readonly string[];
    if (base) ({ resources, removed } = viewDiff(base, target));
    else {
      const own: VersionedResource[] = [];
      for (const r of target.values()) if (t.known.get(r.name) !== r.version) own.push(r);
      const gone: string[] = [];
      for (const [name] of t.known.entries()) if (!target.has(name)) gone.push(name);
      [resources, removed] = [own, gone];
    }
    // A subscription is always answered once, empty or not, so that a client knows it is in sync.
    if (resources.length === 0 && removed.length === 0 && t.answered) {
      t.known.adopt(target); // same contents; share the view's map
      return undefined;
    }
    return { typeUrl, resources, removed, target };
  }

  /** Record a response as sent: the client is assumed to hold it unless it NACKs. */
  sent(d: Diff, now: number): PendingResponse {
    const t = this.types.get(d.typeUrl);
    const nonce = `${++this.nonceSeq}`;
    const before = new Map<string, string | undefined>();
    for (const r of d.resources) before.set(r.name, t?.known.get(r.name));
    for (const n of d.removed) before.set(n, t?.known.get(n));
    const p: Pending = {
      typeUrl: d.typeUrl,
      nonce,
      sent: new Map(d.resources.map((r) => [r.name, r.version])),
      removed: d.removed,
      sentAt: now,
      before,
    };
    if (t) {
      t.answered = true;
      t.known.adopt(d.target);
    }
    this.pending.set(nonce, p);
    return p;
  }

  /** An in-flight response by nonce. */
  pendingResponse(nonce: string): PendingResponse | undefined {
    return this.pending.get(nonce);
  }

  /**
   * The client answered a response: ACK (`rejected` empty) or NACK of the named resources (which it
   * keeps at their earlier versions). Returns the response, removed from the in-flight set.
   */
  settle(nonce: string, rejected: ReadonlySet<string> = new Set()): PendingResponse | undefined {
    const p = this.pending.get(nonce);
    if (!p) return undefined;
    this.pending.delete(nonce);
    const t = this.types.get(p.typeUrl);
    if (t) {
      for (const name of p.before.keys()) {
        if (!rejected.has(name)) t.kept.delete(name);
        else if (!t.kept.has(name)) t.kept.set(name, p.before.get(name));
      }
    }
    return p;
  }

  /** The version of `name` the client has acknowledged holding. */
  ackedVersion(typeUrl: string, name: string): string | undefined {
    const t = this.types.get(typeUrl);
    if (!t) return undefined;
    if (t.kept.has(name)) return t.kept.get(name);
    for (const p of this.pending.values())
      if (p.typeUrl === typeUrl && p.before.has(name)) return p.before.get(name);
    return t.known.get(name);
  }

  /** How many resources the client has acknowledged, and whether they are exactly `view`'s. */
  ackedSummary(typeUrl: string, view: ResourceView): { acked: number; inSync: boolean } {
    const t = this.types.get(typeUrl);
    const target = view.get(typeUrl) ?? EMPTY;
    if (!t) return { acked: 0, inSync: target.size === 0 };
    const inFlight = [...this.pending.values()].some((p) => p.typeUrl === typeUrl);
    if (!inFlight && t.kept.size === 0) return { acked: t.known.size, inSync: t.known.equals(target) };
    const acked = new VersionSet();
    for (const [name, version] of t.known.entries()) acked.set(name, version);
    const changed = new Set<string>();
    for (const p of this.pending.values())
      if (p.typeUrl === typeUrl) for (const n of p.before.keys()) changed.add(n);
    for (const n of t.kept.keys()) changed.add(n);
    for (const n of changed) acked.set(n, this.ackedVersion(typeUrl, n));
    return { acked: acked.size, inSync: acked.equals(target) };
  }

  inFlight(): number {
    return this.pending.size;
  }
}
