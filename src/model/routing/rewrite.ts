// Path rewrites (Gateway API full/prefix replacement, Envoy prefix_rewrite, regex) with the
// query kept, and the Location of a redirect.
import { splitTarget } from "./match.js";
import type { PathRewrite, Redirect } from "./types.js";

/**
 * Gateway API ReplacePrefixMatch: the matched prefix and the replacement both lose a trailing
 * '/', the prefix is swapped for the replacement, and an empty result is "/" (the spec's table:
 * /foo/bar → /xyz/bar, /foo/ → /xyz/, /foo with "" → /).
 */
function replacePrefixMatch(path: string, matchedPrefix: string, value: string): string {
  const p = matchedPrefix.endsWith("/") ? matchedPrefix.slice(0, -1) : matchedPrefix;
  const r = value.endsWith("/") ? value.slice(0, -1) : value;
  const out = r + path.slice(p.length);
  return out === "" ? "/" : out.startsWith("/") ? out : `/${out}`;
}

function rewritePathOnly(path: string, rw: PathRewrite): string {
  switch (rw.type) {
    case "ReplaceFullPath":
      return rw.value;
    case "ReplacePrefixMatch":
      return replacePrefixMatch(path, rw.matchedPrefix, rw.value);
    case "ReplacePrefix":
      return path.length >= rw.matchedPrefix.length ? rw.value + path.slice(rw.matchedPrefix.length) : path;
    case "RegexReplace":
      return path.replace(rw.pattern, rw.substitution);
  }
}

/** Rewrite the path of a request-target; the query string is kept (a fragment dropped). */
export function rewritePath(target: string, rw: PathRewrite | undefined): string {
  if (!rw) return target;
  const { path, query } = splitTarget(target);
  const out = rewritePathOnly(path, rw);
  return query === "" && !target.includes("?") ? out : `${out}?${query}`;
}

const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443 };

function splitAuthority(authority: string): { host: string; port?: number } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority };
  return m[2] !== undefined ? { host: m[1] ?? "", port: Number(m[2]) } : { host: m[1] ?? "" };
}

/**
 * The Location header of a redirect: scheme and host replaced when set, the port per the
 * redirect (explicit, the request's, or the scheme's default, which is never written), the path
 * rewritten, the query kept.
 */
export function redirectLocation(
  req: { path: string },
  redirect: Redirect,
  current: { scheme: string; authority: string },
): string {
  const scheme = redirect.scheme ?? current.scheme;
  const cur = splitAuthority(current.authority);
  const host = redirect.hostname ?? cur.host;
  let port: number | undefined;
  if (redirect.port !== undefined) port = redirect.port;
  else if (redirect.derivePort === "FROM_PROTOCOL_DEFAULT") port = undefined;
  else if (redirect.derivePort === "FROM_REQUEST_PORT") port = cur.port;
  else port = scheme === current.scheme ? cur.port : undefined;
  const portPart = port === undefined || port === DEFAULT_PORT[scheme] ? "" : `:${port}`;
  return `${scheme}://${host}${portPart}${rewritePath(req.path, redirect.path)}`;
}
