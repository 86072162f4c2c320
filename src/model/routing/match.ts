// Request matchers compiled from route matches: path (exact, element-wise prefix, plain prefix,
// full-match regex), method, headers (present / absent / value), query parameters, port,
// authority and scheme — and the one function that tests a request against them.
import { compileRe2 } from "./regex.js";

export type StringTest = (value: string) => boolean;

export interface HeaderTest {
  name: string;
  /** null: the header only has to be present. */
  test: StringTest | null;
  /** VirtualService withoutHeaders: the match holds when the header does not match. */
  invert: boolean;
}

export interface QueryTest {
  name: string;
  test: StringTest | null;
}

export interface CompiledMatch {
  path?: StringTest;
  method?: StringTest;
  headers: readonly HeaderTest[];
  query: readonly QueryTest[];
  port?: number;
  authority?: StringTest;
  scheme?: StringTest;
}

/** What a match is tested against, derived once per request. */
export interface MatchContext {
  /** The path without query or fragment. */
  path: string;
  method: string;
  headers: ReadonlyMap<string, readonly string[]>;
  query: ReadonlyMap<string, string>;
  port: number;
  authority: string;
  scheme: string;
}

export const NEVER: StringTest = () => false;

export function exact(value: string, ignoreCase = false): StringTest {
  if (!ignoreCase) return (v) => v === value;
  const lower = value.toLowerCase();
  return (v) => v.toLowerCase() === lower;
}

export function prefix(value: string, ignoreCase = false): StringTest {
  if (!ignoreCase) return (v) => v.startsWith(value);
  const lower = value.toLowerCase();
  return (v) => v.toLowerCase().startsWith(lower);
}

/** The matched prefix of a Gateway API PathPrefix: a trailing '/' is ignored ("/" stays "/"). */
export function trimPrefix(value: string): string {
  return value !== "/" && value.endsWith("/") ? value.slice(0, -1) : value;
}

/** Gateway API PathPrefix (Envoy path_separated_prefix): "/abc" matches /abc, /abc/, /abc/d, not /abcd. */
export function pathPrefix(value: string): StringTest {
  const p = trimPrefix(value);
  if (p === "/") return (v) => v.startsWith("/");
  return (v) => v.startsWith(p) && (v.length === p.length || v.charCodeAt(p.length) === 47);
}

/** A full-match RE2 test; an untranslatable pattern never matches (the compiler reports it). */
export function regex(pattern: string, ignoreCase = false): StringTest | null {
  const re = compileRe2(pattern, ignoreCase);
  return re ? (v) => re.test(v) : null;
}

/** Split a request-target into path and query (the fragment, if any, dropped). */
export function splitTarget(raw: string): { path: string; query: string } {
  const hash = raw.indexOf("#");
  const target = hash < 0 ? raw : raw.slice(0, hash);
  const q = target.indexOf("?");
  return q < 0 ? { path: target, query: "" } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Query parameters, decoded; the first value of a repeated name wins (Gateway API, Envoy). */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === "") return out;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = decode(eq < 0 ? part : part.slice(0, eq));
    if (!out.has(name)) out.set(name, eq < 0 ? "" : decode(part.slice(eq + 1)));
  }
  return out;
}

/** Several values of one header are matched as Envoy does: joined with ",". */
function headerValue(headers: ReadonlyMap<string, readonly string[]>, name: string): string | undefined {
  const values = headers.get(name);
  if (!values || values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values.join(",");
}

export function matchesRequest(m: CompiledMatch, ctx: MatchContext): boolean {
  if (m.port !== undefined && m.port !== ctx.port) return false;
  if (m.path && !m.path(ctx.path)) return false;
  if (m.method && !m.method(ctx.method)) return false;
  if (m.authority && !m.authority(ctx.authority)) return false;
  if (m.scheme && !m.scheme(ctx.scheme)) return false;
  for (const h of m.headers) {
    const v = headerValue(ctx.headers, h.name);
    const hit = v !== undefined && (h.test === null || h.test(v));
    if (hit === h.invert) return false;
  }
  for (const q of m.query) {
    const v = ctx.query.get(q.name);
    if (v === undefined || (q.test !== null && !q.test(v))) return false;
  }
  return true;
}
