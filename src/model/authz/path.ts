// Request paths as Istio's default (BASE) normalization leaves them, and path matchers built from
// policy `paths`: exact, "prefix*", "*suffix", "*", and the {*} / {**} templates.
import { StringMatcher } from "./match.js";

/**
 * Istio BASE normalization (Envoy `normalize_path`, slashes not merged): drop the query and the
 * fragment, turn '\' into '/', decode percent-encoded unreserved characters once (so "%2E" is a
 * dot but "%2F" stays encoded), then resolve "." and ".." segments per RFC 3986. Returns null
 * when Envoy would reject the request outright (an encoded NUL), so no policy is ever consulted.
 */
export function normalizePath(raw: string): string | null {
  // One scan finds both the end of the path and whether anything needs rewriting; plain paths
  // (the common case) come back untouched.
  let end = raw.length;
  let work = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
    if (c === 37 /* % */ || c === 92 /* \ */ || c === 46 /* . */) work = true;
  }
  let path = end === raw.length ? raw : raw.slice(0, end);
  if (!work) return path;
  if (path.includes("%00")) return null;
  if (path.includes("\\")) path = path.replace(/\\/g, "/");
  if (path.includes("%")) path = decodeUnreserved(path);
  if (!path.startsWith("/")) return path;
  return removeDotSegments(path);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

function decodeUnreserved(path: string): string {
  let out = "";
  let i = 0;
  while (i < path.length) {
    if (path.charCodeAt(i) === 37 && i + 2 < path.length) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      const code = hi * 16 + lo;
      if (hi >= 0 && lo >= 0 && isUnreserved(code)) {
        out += String.fromCharCode(code);
        i += 3;
        continue;
      }
    }
    out += path[i] ?? "";
    i++;
  }
  return out;
}

/** RFC 3986 section 5.2.4 on an absolute path; empty segments are kept ("//" stays). */
export function removeDotSegments(path: string): string {
  const segs = path.split("/");
  const out: string[] = [];
  const last = segs.length - 1;
  for (let i = 1; i < segs.length; i++) {
    const seg = segs[i] ?? "";
    if (seg === "." || seg === "..") {
      if (seg === ".." && out.length > 0) out.pop();
      if (i === last) out.push("");
      continue;
    }
    out.push(seg);
  }
  return `/${out.join("/")}`;
}

export function isPathTemplate(value: string): boolean {
  return value.includes("{*}") || value.includes("{**}");
}

// Envoy's uri_template: a path segment character is an RFC 3986 pchar minus '*' and '='.
const SEGMENT_CHARS = "a-zA-Z0-9\\-._~%!$&'()+,;:@";

/** {*} is exactly one non-empty segment; {**} is any run of segments, possibly empty ("/a/{**}/b" matches "/a//b"). */
export function pathTemplateRegExp(template: string): RegExp {
  const body = template
    .split("/")
    .map((seg) => {
      if (seg === "{*}") return `[${SEGMENT_CHARS}]+`;
      if (seg === "{**}") return `[${SEGMENT_CHARS}/]*`;
      return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return new RegExp(`^${body}$`);
}

const pathCache = new WeakMap<readonly string[], PathMatcher>();

/** One PathMatcher per value list: a policy's forms share their lists (see cidrMatcher). */
export function pathMatcher(values: readonly string[]): PathMatcher {
  let m = pathCache.get(values);
  if (m === undefined) {
    m = new PathMatcher(values);
    pathCache.set(values, m);
  }
  return m;
}

/**
 * Matches the normalized path against a policy's `paths` (or `notPaths`) list; case-sensitive.
 * Plain values use Istio's string forms; `{*}` / `{**}` templates become anchored regexes.
 */
export class PathMatcher {
  private readonly plain: StringMatcher;
  private readonly templates: readonly RegExp[];
  readonly source: readonly string[];

  constructor(values: readonly string[]) {
    this.plain = new StringMatcher(values.filter((v) => !isPathTemplate(v)));
    this.templates = values.filter(isPathTemplate).map(pathTemplateRegExp);
    this.source = values;
  }

  matches(path: string): boolean {
    if (this.plain.matches(path)) return true;
    for (const t of this.templates) if (t.test(path)) return true;
    return false;
  }
}
