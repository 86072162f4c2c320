// Load balancers for a cluster's endpoints, following Envoy's algorithms, and the consistent-hash
// key of a request. Pure: randomness and in-flight counts come from the caller.
//
// - ROUND_ROBIN: a cursor over the endpoints as given; stable while the set is unchanged, kept
//   (modulo the new size) when it changes.
// - RANDOM: uniform.
// - LEAST_REQUEST: Envoy's power of two choices (equal weights) — two random picks (with
//   replacement), the one with fewer requests in flight; ties go to the first.
// - RING_HASH: a ketama-style ring of xxHash64("endpoint_i") points, minimumRingSize per
//   endpoint (Envoy: ceil(ringSize / n), see buildRing); a key goes to the first point at or after
//   xxHash64(key), wrapping. Removing an endpoint remaps only the keys it owned.
// - MAGLEV: Envoy's Maglev table (offset = xxHash64(endpoint) mod M, skip = xxHash64(endpoint,
//   seed 1) mod (M-1) + 1, table filled round-robin by permutation); a key goes to
//   table[xxHash64(key) mod M].
// - PASSTHROUGH: the original destination the caller asked for, when it is among the endpoints.
// With no hash key (header absent...), hash balancers use a random point, as Envoy does.
import { MAX_RING_SIZE, type ClusterPolicy, type HashPolicy } from "./policy.js";
import { xxhash64, xxhash64Hex } from "./xxhash.js";

export interface PickContext {
  /** The request's consistent-hash key (see hashKeyFor); null: none. */
  hashKey: string | null;
  /** Requests currently in flight to an endpoint. */
  inFlight: (key: string) => number;
  /** Uniform in [0, 1). */
  random: () => number;
  /** PASSTHROUGH: the endpoint the client addressed. */
  originalDestination?: string;
}

export interface Balancer {
  readonly kind: ClusterPolicy["lb"]["kind"];
  /** An endpoint key from `endpoints`, or null when there is none to pick. */
  pick(endpoints: readonly string[], ctx: PickContext): string | null;
}

const U64 = 2n ** 64n;

function randomIndex(n: number, random: () => number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}

function randomHash(random: () => number): bigint {
  // Two 32-bit halves: Math.random alone has 52 bits.
  const hi = BigInt(Math.floor(random() * 2 ** 32));
  const lo = BigInt(Math.floor(random() * 2 ** 32));
  return ((hi << 32n) | lo) % U64;
}

function setKey(endpoints: readonly string[]): string {
  return endpoints.join("\u0000");
}

class RoundRobin implements Balancer {
  readonly kind = "ROUND_ROBIN" as const;
  private cursor = 0;
  pick(endpoints: readonly string[]): string | null {
    if (endpoints.length === 0) return null;
    const i = this.cursor % endpoints.length;
    this.cursor = (i + 1) % endpoints.length;
    return endpoints[i] ?? null;
  }
}

class RandomBalancer implements Balancer {
  readonly kind = "RANDOM" as const;
  pick(endpoints: readonly string[], ctx: PickContext): string | null {
    if (endpoints.length === 0) return null;
    return endpoints[randomIndex(endpoints.length, ctx.random)] ?? null;
  }
}

class LeastRequest implements Balancer {
  readonly kind = "LEAST_REQUEST" as const;
  constructor(private readonly choices = 2) {}
  pick(endpoints: readonly string[], ctx: PickContext): string | null {
    if (endpoints.length === 0) return null;
    if (endpoints.length === 1) return endpoints[0] ?? null;
    let best: string | null = null;
    let bestLoad = Infinity;
    for (let c = 0; c < this.choices; c++) {
      const e = endpoints[randomIndex(endpoints.length, ctx.random)];
      if (e === undefined) continue;
      const load = ctx.inFlight(e);
      if (load < bestLoad) {
        best = e;
        bestLoad = load;
      }
    }
    return best;
  }
}

class Passthrough implements Balancer {
  readonly kind = "PASSTHROUGH" as const;
  pick(endpoints: readonly string[], ctx: PickContext): string | null {
    const want = ctx.originalDestination;
    return want !== undefined && endpoints.includes(want) ? want : null;
  }
}

interface Ring {
  /** Ring positions: the top 52 bits of xxHash64, exact as doubles. */
  points: Float64Array;
  owners: string[];
}

/** A ring position: the top 52 bits of a 64-bit hash (exactly representable as a number). */
function position(h: bigint): number {
  return Number(h >> 12n);
}

/** Points per endpoint: fixed by minimumRingSize (the ring holds n × that, capped at 8M). */
export function ringPointsPerEndpoint(minimumRingSize: number, endpointCount: number): number {
  return Math.max(1, Math.min(minimumRingSize, Math.floor(MAX_RING_SIZE / Math.max(1, endpointCount))));
}

function endpointPoints(endpoint: string, count: number): number[] {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = position(xxhash64(`${endpoint}_${i}`));
  return out;
}

/**
 * A ketama-style ring: sorted points, each owned by an endpoint. Every endpoint gets the same
 * number of points whatever the set's size, so removing one remaps only its keys (Envoy derives
 * the count from the ring size and the number of hosts, which also moves a few keys between the
 * remaining hosts). `cache` keeps each endpoint's points across rebuilds.
 */
export function buildRing(
  endpoints: readonly string[],
  minimumRingSize: number,
  cache: Map<string, number[]> = new Map(),
): Ring {
  const unique = [...new Set(endpoints)].sort();
  const perHost = ringPointsPerEndpoint(minimumRingSize, unique.length);
  const entries: { p: number; owner: string }[] = [];
  for (const e of unique) {
    let pts = cache.get(e);
    if (!pts || pts.length !== perHost) {
      pts = endpointPoints(e, perHost);
      cache.set(e, pts);
    }
    for (const p of pts) entries.push({ p, owner: e });
  }
  // Ties (vanishingly rare) broken by owner so the ring does not depend on input order.
  entries.sort((a, b) => a.p - b.p || (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0));
  return { points: Float64Array.from(entries, (x) => x.p), owners: entries.map((x) => x.owner) };
}

export function ringLookup(ring: Ring, hash: bigint): string | null {
  const n = ring.points.length;
  if (n === 0) return null;
  const h = position(hash);
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ring.points[mid] ?? 0) < h) lo = mid + 1;
    else hi = mid;
  }
  return ring.owners[lo === n ? 0 : lo] ?? null;
}

class RingHash implements Balancer {
  readonly kind = "RING_HASH" as const;
  private cache: { key: string; ring: Ring } | null = null;
  private readonly points = new Map<string, number[]>();
  constructor(private readonly hash: HashPolicy) {}
  pick(endpoints: readonly string[], ctx: PickContext): string | null {
    if (endpoints.length === 0) return null;
    const key = setKey(endpoints);
    if (this.cache?.key !== key) {
      const present = new Set(endpoints);
      for (const e of [...this.points.keys()]) if (!present.has(e)) this.points.delete(e);
      this.cache = { key, ring: buildRing(endpoints, this.hash.minimumRingSize, this.points) };
    }
    const h = ctx.hashKey === null ? randomHash(ctx.random) : xxhash64(ctx.hashKey);
    return ringLookup(this.cache.ring, h);
  }
}

/** Envoy's Maglev lookup table: table[i] indexes into the (deduplicated, sorted) endpoints. */
export function buildMaglevTable(endpoints: readonly string[], tableSize: number): string[] {
  // Sorted so the table depends on the set, not the order it was given in.
  const hosts = [...new Set(endpoints)].sort();
  const m = tableSize;
  const table = new Array<string | undefined>(m).fill(undefined);
  if (hosts.length === 0) return [];
  const mm = BigInt(m);
  const offset = hosts.map((h) => Number(xxhash64(h) % mm));
  const skip = hosts.map((h) => Number(xxhash64(h, 1n) % (mm - 1n)) + 1);
  const next = hosts.map((_, i) => offset[i] ?? 0);
  let filled = 0;
  while (filled < m) {
    for (let i = 0; i < hosts.length && filled < m; i++) {
      let c = next[i] ?? 0;
      const s = skip[i] ?? 1;
      while (table[c] !== undefined) c = (c + s) % m;
      table[c] = hosts[i];
      next[i] = (c + s) % m;
      filled++;
    }
  }
  return table as string[];
}

class Maglev implements Balancer {
  readonly kind = "MAGLEV" as const;
  private cache: { key: string; table: string[] } | null = null;
  constructor(private readonly hash: HashPolicy) {}
  pick(endpoints: readonly string[], ctx: PickContext): string | null {
    if (endpoints.length === 0) return null;
    const key = setKey(endpoints);
    if (this.cache?.key !== key)
      this.cache = { key, table: buildMaglevTable(endpoints, this.hash.tableSize) };
    const h = ctx.hashKey === null ? randomHash(ctx.random) : xxhash64(ctx.hashKey);
    return this.cache.table[Number(h % BigInt(this.cache.table.length))] ?? null;
  }
}

export function createBalancer(policy: Pick<ClusterPolicy, "lb">): Balancer {
  const lb = policy.lb;
  switch (lb.kind) {
    case "ROUND_ROBIN":
      return new RoundRobin();
    case "RANDOM":
      return new RandomBalancer();
    case "LEAST_REQUEST":
      return new LeastRequest();
    case "PASSTHROUGH":
      return new Passthrough();
    case "RING_HASH":
      return new RingHash(lb.hash);
    case "MAGLEV":
      return new Maglev(lb.hash);
  }
}

export interface HashRequest {
  /** Lower-case header names. */
  headers: ReadonlyMap<string, readonly string[]>;
  sourceIp: string;
  query: URLSearchParams;
}

export interface HashKey {
  key: string | null;
  /** A Set-Cookie header value to add to the response (generated cookie). */
  setCookie?: string;
}

/** The value of a cookie in the request's Cookie headers. */
export function cookieValue(
  headers: ReadonlyMap<string, readonly string[]>,
  name: string,
): string | undefined {
  for (const line of headers.get("cookie") ?? []) {
    for (const part of line.split(";")) {
      const eq = part.indexOf("=");
      if (eq < 0) continue;
      if (part.slice(0, eq).trim() !== name) continue;
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

/**
 * The consistent-hash key of a request. Header: all values, sorted, joined with ","; absent →
 * null. Cookie: its value; absent with a ttl → Envoy generates one (the hex xxHash64 of the
 * client's address) and asks for it to be set with that Max-Age (none for ttl 0: a session
 * cookie), the path and the attributes; absent without ttl → null. Source IP: the address.
 * Query parameter: its first value; absent → null.
 */
export function hashKeyFor(hash: HashPolicy, req: HashRequest): HashKey {
  const k = hash.key;
  switch (k.kind) {
    case "header": {
      const values = req.headers.get(k.name.toLowerCase());
      if (!values || values.length === 0) return { key: null };
      return { key: [...values].sort().join(",") };
    }
    case "cookie": {
      const v = cookieValue(req.headers, k.name);
      if (v !== undefined) return { key: v };
      if (k.ttlMs === undefined) return { key: null };
      const value = xxhash64Hex(req.sourceIp);
      const parts = [`${k.name}="${value}"`];
      const maxAge = Math.floor(k.ttlMs / 1000);
      if (maxAge > 0) parts.push(`Max-Age=${maxAge}`);
      if (k.path !== undefined && k.path !== "") parts.push(`Path=${k.path}`);
      for (const a of k.attributes ?? []) parts.push(a.value !== undefined ? `${a.name}=${a.value}` : a.name);
      parts.push("HttpOnly");
      return { key: value, setCookie: parts.join("; ") };
    }
    case "sourceIp":
      return { key: req.sourceIp };
    case "queryParameter":
      return { key: req.query.get(k.name) };
    case "none":
      return { key: null };
  }
}
