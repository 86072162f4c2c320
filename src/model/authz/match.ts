// Value matchers compiled once from policy strings: Istio's exact / "prefix*" / "*suffix" / "*"
// string forms, and CIDR sets. Evaluation never allocates and never throws.
import ipaddr from "ipaddr.js";

/**
 * A list of Istio match values, pre-split by kind. "*" alone means "present": any non-empty value
 * (Istio generates the regex ".+"), so an empty string never matches it.
 */
export class StringMatcher {
  private readonly exact: ReadonlySet<string> | null;
  private readonly prefixes: readonly string[];
  private readonly suffixes: readonly string[];
  private readonly presence: boolean;
  /** The values as written, for reasons. */
  readonly source: readonly string[];

  constructor(values: readonly string[], ignoreCase = false) {
    const exact = new Set<string>();
    const prefixes: string[] = [];
    const suffixes: string[] = [];
    let presence = false;
    for (const raw of values) {
      const v = ignoreCase ? raw.toLowerCase() : raw;
      if (v === "*") presence = true;
      else if (v.startsWith("*")) suffixes.push(v.slice(1));
      else if (v.endsWith("*")) prefixes.push(v.slice(0, -1));
      else exact.add(v);
    }
    this.exact = exact.size > 0 ? exact : null;
    this.prefixes = prefixes;
    this.suffixes = suffixes;
    this.presence = presence;
    this.source = values;
  }

  /** The caller lowercases `s` when the matcher was built with ignoreCase. */
  matches(s: string): boolean {
    if (this.presence && s.length > 0) return true;
    if (this.exact !== null && this.exact.has(s)) return true;
    for (const p of this.prefixes) if (s.startsWith(p)) return true;
    for (const p of this.suffixes) if (s.endsWith(p)) return true;
    return false;
  }
}

/** A parsed address: IPv4 as one unsigned 32-bit number, IPv6 as eight 16-bit groups. */
export type IpAddress = { v4: true; n: number } | { v4: false; parts: readonly number[] };

/** Parse without throwing; null for anything that is not an IPv4 or IPv6 address. */
export function parseIp(s: string): IpAddress | null {
  const v4 = parseIpv4(s);
  if (v4 !== null) return { v4: true, n: v4 };
  if (!s.includes(":")) return null; // IPv4 only in its four-part decimal form, as validation requires
  const v6 = parseIpv6(s);
  if (v6 !== null) return { v4: false, parts: v6 };
  return parseIpv6WithLibrary(s);
}

/** ipaddr.js as the reference for any IPv6 form the fast path declines, so both agree on what an address is. */
function parseIpv6WithLibrary(s: string): IpAddress | null {
  try {
    return fromLibrary(ipaddr.IPv6.parse(s));
  } catch {
    return null;
  }
}

function fromLibrary(a: ipaddr.IPv4 | ipaddr.IPv6): IpAddress {
  if (a.kind() === "ipv4") {
    const [b0 = 0, b1 = 0, b2 = 0, b3 = 0] = a.toByteArray();
    return { v4: true, n: ((b0 << 24) >>> 0) + (b1 << 16) + (b2 << 8) + b3 };
  }
  return { v4: false, parts: (a as ipaddr.IPv6).parts };
}

// Hand-rolled because this runs once per request and ipaddr.js's generic parser is far slower.
function parseIpv4(s: string): number | null {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      digits++;
      if (digits > 3 || part > 255) return null;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return n * 256 + part;
}

/** Eight 16-bit groups; "::" compression, a trailing dotted IPv4 part and a zone ("%eth0") are accepted. */
function parseIpv6(address: string): number[] | null {
  const zone = address.indexOf("%");
  const s = zone >= 0 ? address.slice(0, zone) : address;
  const gap = s.indexOf("::");
  if (gap >= 0 && s.indexOf("::", gap + 1) >= 0) return null;
  const head = groups(gap >= 0 ? s.slice(0, gap) : s, gap >= 0);
  const tail = gap >= 0 ? groups(s.slice(gap + 2), true) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (gap >= 0 ? missing < 1 : missing !== 0) return null;
  const out = head;
  for (let i = 0; i < missing; i++) out.push(0);
  for (const g of tail) out.push(g);
  return out;
}

function groups(part: string, mayBeEmpty: boolean): number[] | null {
  if (part === "") return mayBeEmpty ? [] : null;
  const out: number[] = [];
  let start = 0;
  while (start <= part.length) {
    let end = part.indexOf(":", start);
    if (end < 0) end = part.length;
    const last = end === part.length;
    const field = part.slice(start, end);
    if (last && field.includes(".")) {
      const v4 = parseIpv4(field);
      if (v4 === null) return null;
      out.push(Math.floor(v4 / 65536), v4 % 65536);
    } else {
      const g = hex16(field);
      if (g < 0) return null;
      out.push(g);
    }
    start = end + 1;
  }
  return out;
}

/** 1-4 hex digits → their value; -1 otherwise. */
function hex16(s: string): number {
  if (s.length === 0 || s.length > 4) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

interface V4Block {
  base: number;
  mask: number;
}
interface V6Block {
  parts: readonly number[];
  bits: number;
}

/** A set of CIDR blocks (a bare address is a /32 or /128 block), as Envoy's CidrRange matches them. */
export class CidrMatcher {
  private readonly v4: readonly V4Block[];
  private readonly v6: readonly V6Block[];
  readonly source: readonly string[];

  constructor(values: readonly string[]) {
    const v4: V4Block[] = [];
    const v6: V6Block[] = [];
    for (const value of values) {
      // Parsed once here with ipaddr.js; a block that does not parse (validation rejects those) matches nothing.
      let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
      try {
        // Straight to the right family: ipaddr.parseCIDR tries IPv6 first, which is slow to fail.
        const v6 = value.includes(":");
        if (value.includes("/")) parsed = v6 ? ipaddr.IPv6.parseCIDR(value) : ipaddr.IPv4.parseCIDR(value);
        else parsed = v6 ? [ipaddr.IPv6.parse(value), 128] : [ipaddr.IPv4.parse(value), 32];
      } catch {
        continue;
      }
      const [lib, bits] = parsed;
      const addr = fromLibrary(lib);
      if (addr.v4) {
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        v4.push({ base: (addr.n & mask) >>> 0, mask });
      } else {
        v6.push({ parts: addr.parts, bits });
      }
    }
    this.v4 = v4;
    this.v6 = v6;
    this.source = values;
  }

  contains(ip: IpAddress | null): boolean {
    if (ip === null) return false;
    if (ip.v4) {
      for (const b of this.v4) if ((ip.n & b.mask) >>> 0 === b.base) return true;
      return false;
    }
    for (const b of this.v6) if (v6InBlock(ip.parts, b)) return true;
    return false;
  }
}

function v6InBlock(parts: readonly number[], block: V6Block): boolean {
  let remaining = block.bits;
  for (let i = 0; i < 8 && remaining > 0; i++) {
    const take = remaining >= 16 ? 16 : remaining;
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((parts[i] ?? 0) & mask) !== ((block.parts[i] ?? 0) & mask)) return false;
    remaining -= take;
  }
  return true;
}

/**
 * Matchers are pure functions of their value list, and the forms of one policy (HTTP, TCP, L4)
 * share the same lists, so each list is compiled once.
 */
const cidrCache = new WeakMap<readonly string[], CidrMatcher>();
export function cidrMatcher(values: readonly string[]): CidrMatcher {
  let m = cidrCache.get(values);
  if (m === undefined) {
    m = new CidrMatcher(values);
    cidrCache.set(values, m);
  }
  return m;
}

/** Ports written as strings in policies ("8080"); validation has already checked the range. */
export function portSet(values: readonly string[]): ReadonlySet<number> {
  const out = new Set<number>();
  for (const v of values) {
    const n = Number(v);
    if (Number.isInteger(n) && n >= 0 && n <= 65535) out.add(n);
  }
  return out;
}
