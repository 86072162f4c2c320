// Per-stream Delta xDS bookkeeping, pure: what a client has (name → version) per type, which
// response nonces are in flight, and the diff to send when the server's resources change.

export interface VersionedResource {
  name: string;
  version: string;
  /** Encoded google.protobuf.Any. */
  resource: { typeUrl: string; value: Buffer };
}

/** The server's current resources for one client, by type URL then name. */
export type ResourceView = ReadonlyMap<string, ReadonlyMap<string, VersionedResource>>;

export interface PendingResponse {
  typeUrl: string;
  nonce: string;
  /** name → version sent in this response. */
  sent: Map<string, string>;
  removed: string[];
  sentAt: number;
}

export interface Diff {
  typeUrl: string;
  resources: VersionedResource[];
  removed: string[];
}

interface TypeState {
  subscribed: boolean;
  /** What the client has, as far as the server knows (sent or announced by the client on reconnect). */
  known: Map<string, string>;
  /** Whether a response for this subscription was sent (the first one goes out even when empty). */
  answered: boolean;
}

export class StreamState {
  private readonly types = new Map<string, TypeState>();
  private readonly pending = new Map<string, PendingResponse>();
  private nonceSeq = 0;

  /** A subscription request (no nonce): wildcard subscription, with versions the client already holds. */
  subscribe(typeUrl: string, initialVersions: Readonly<Record<string, string>>): void {
    const t = this.types.get(typeUrl) ?? {
      subscribed: true,
      known: new Map<string, string>(),
      answered: false,
    };
    t.subscribed = true;
    t.answered = false;
    for (const [name, version] of Object.entries(initialVersions)) t.known.set(name, version);
    this.types.set(typeUrl, t);
  }

  unsubscribe(typeUrl: string): void {
    this.types.delete(typeUrl);
  }

  subscribedTypes(): string[] {
    return [...this.types.keys()];
  }

  /** What to send for one type so the client ends up with exactly `view`'s resources. */
  diff(typeUrl: string, view: ResourceView): Diff | undefined {
    const t = this.types.get(typeUrl);
    if (!t?.subscribed) return undefined;
    const current = view.get(typeUrl) ?? new Map<string, VersionedResource>();
    const resources: VersionedResource[] = [];
    for (const r of current.values()) if (t.known.get(r.name) !== r.version) resources.push(r);
    const removed: string[] = [];
    for (const name of t.known.keys()) if (!current.has(name)) removed.push(name);
    // A subscription is always answered once, empty or not, so that a client knows it is in sync.
    if (resources.length === 0 && removed.length === 0 && t.answered) return undefined;
    return { typeUrl, resources, removed };
  }

  /** Record a response as sent: the client is assumed to hold it unless it NACKs. */
  sent(d: Diff, now: number): PendingResponse {
    const t = this.types.get(d.typeUrl);
    const nonce = `${++this.nonceSeq}`;
    const p: PendingResponse = {
      typeUrl: d.typeUrl,
      nonce,
      sent: new Map(d.resources.map((r) => [r.name, r.version])),
      removed: d.removed,
      sentAt: now,
    };
    if (t) {
      t.answered = true;
      for (const r of d.resources) t.known.set(r.name, r.version);
      for (const n of d.removed) t.known.delete(n);
    }
    this.pending.set(nonce, p);
    return p;
  }

  /** The response a nonce answers (ACK or NACK), removed from the in-flight set. */
  settle(nonce: string): PendingResponse | undefined {
    const p = this.pending.get(nonce);
    this.pending.delete(nonce);
    return p;
  }

  /** Versions the client holds per type (for proxy-status). */
  known(typeUrl: string): ReadonlyMap<string, string> {
    return this.types.get(typeUrl)?.known ?? new Map<string, string>();
  }

  inFlight(): number {
    return this.pending.size;
  }
}
