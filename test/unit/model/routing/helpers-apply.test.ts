// The router's helpers: weighted backend choice with a seeded random, percentages, header
// modifiers, path rewrites (Gateway API's prefix table, Envoy prefix_rewrite, regex) and
// redirect Locations; plus RE2 translation for full-match regexes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  applyHeaderModifier,
  pickBackend,
  redirectLocation,
  rewritePath,
  shouldApply,
  type RouteDecision,
} from "../../../../src/model/routing/index.js";
import { compileRe2 } from "../../../../src/model/routing/regex.js";
import { seeded } from "./helpers.js";

const backend = (name: string, weight: number) => ({
  service: { namespace: "default", name },
  host: `${name}.default.svc.cluster.local`,
  port: 80,
  weight,
});

const decision = (over: Partial<RouteDecision>): RouteDecision => ({
  route: "HTTPRoute/default/r#0",
  kind: "HTTPRoute",
  backends: [],
  invalidBackends: [],
  mirrors: [],
  ...over,
});

describe("pickBackend", () => {
  test("follows the weights, invalid shares included (seeded, 20000 picks)", () => {
    const d = decision({
      backends: [backend("a", 70), backend("b", 20)],
      invalidBackends: [{ weight: 10, status: 500, reason: "backend_not_found" }],
    });
    const random = seeded(42);
    const counts: Record<string, number> = { a: 0, b: 0, err: 0 };
    for (let i = 0; i < 20000; i++) {
      const p = pickBackend(d, random);
      if ("backend" in p) counts[p.backend.service.name] = (counts[p.backend.service.name] ?? 0) + 1;
      else {
        assert.equal(p.status, 500);
        counts.err = (counts.err ?? 0) + 1;
      }
    }
    assert.ok(Math.abs((counts.a ?? 0) / 20000 - 0.7) < 0.02, JSON.stringify(counts));
    assert.ok(Math.abs((counts.b ?? 0) / 20000 - 0.2) < 0.02, JSON.stringify(counts));
    assert.ok(Math.abs((counts.err ?? 0) / 20000 - 0.1) < 0.02, JSON.stringify(counts));
  });

  test("edges: random 0 and just below 1; nothing to pick is a 500", () => {
    const d = decision({ backends: [backend("a", 1), backend("b", 1)] });
    assert.deepEqual(
      pickBackend(d, () => 0),
      { backend: d.backends[0] },
    );
    assert.deepEqual(
      pickBackend(d, () => 0.9999999),
      { backend: d.backends[1] },
    );
    assert.deepEqual(
      pickBackend(decision({}), () => 0.5),
      { status: 500, reason: "no_backends" },
    );
  });
});

test("shouldApply: 0 never, 100 always, fractions by the random", () => {
  assert.equal(
    shouldApply(0, () => 0),
    false,
  );
  assert.equal(
    shouldApply(100, () => 0.999),
    true,
  );
  assert.equal(
    shouldApply(0.5, () => 0.004),
    true,
  );
  assert.equal(
    shouldApply(0.5, () => 0.006),
    false,
  );
});

test("applyHeaderModifier: remove, then set (replacing all values), then add (appending)", () => {
  const h = new Map([
    ["x-a", ["1", "2"]],
    ["x-drop", ["d"]],
    ["x-b", ["b"]],
  ]);
  applyHeaderModifier(h, {
    set: [
      { name: "x-a", value: "set" },
      { name: "x-drop", value: "back" },
    ],
    add: [
      { name: "x-b", value: "more" },
      { name: "x-new", value: "n" },
    ],
    remove: ["x-drop"],
  });
  assert.deepEqual(Object.fromEntries(h), {
    "x-a": ["set"],
    "x-drop": ["back"],
    "x-b": ["b", "more"],
    "x-new": ["n"],
  });
  applyHeaderModifier(h, undefined);
  assert.equal(h.size, 4);
});

describe("rewritePath", () => {
  // Gateway API's ReplacePrefixMatch table.
  const table: [string, string, string, string][] = [
    ["/foo/bar", "/foo", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo", "/xyz/", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz/", "/xyz/bar"],
    ["/foo", "/foo", "/xyz", "/xyz"],
    ["/foo/", "/foo", "/xyz", "/xyz/"],
    ["/foo/bar", "/foo", "", "/bar"],
    ["/foo/", "/foo", "", "/"],
    ["/foo", "/foo", "", "/"],
    ["/foo/", "/foo", "/", "/"],
    ["/foo", "/foo", "/", "/"],
    ["/bar", "/", "/xyz", "/xyz/bar"],
  ];
  for (const [path, prefix, value, want] of table) {
    test(`ReplacePrefixMatch ${path} ${prefix} → "${value}"`, () => {
      assert.equal(rewritePath(path, { type: "ReplacePrefixMatch", value, matchedPrefix: prefix }), want);
    });
  }

  test("the query is kept; full, Envoy prefix and regex rewrites", () => {
    assert.equal(
      rewritePath("/foo/bar?x=1&y", { type: "ReplacePrefixMatch", value: "/v2", matchedPrefix: "/foo" }),
      "/v2/bar?x=1&y",
    );
    assert.equal(rewritePath("/a/b?q", { type: "ReplaceFullPath", value: "/c" }), "/c?q");
    assert.equal(
      rewritePath("/oldx/y", { type: "ReplacePrefix", value: "/new", matchedPrefix: "/old" }),
      "/newx/y",
    );
    assert.equal(
      rewritePath("/re/a/b?k=v", { type: "RegexReplace", pattern: /^\/re\/(.*)$/g, substitution: "/x/$1" }),
      "/x/a/b?k=v",
    );
    assert.equal(rewritePath("/same", undefined), "/same");
    assert.equal(rewritePath("/empty?", { type: "ReplaceFullPath", value: "/e" }), "/e?");
  });
});

describe("redirectLocation", () => {
  const cur = { scheme: "http", authority: "reviews.default:9080" };
  test("request port kept, default ports omitted, scheme default port", () => {
    assert.equal(
      redirectLocation(
        { path: "/a?x=1" },
        { statusCode: 302, derivePort: "FROM_REQUEST_PORT", path: { type: "ReplaceFullPath", value: "/b" } },
        cur,
      ),
      "http://reviews.default:9080/b?x=1",
    );
    assert.equal(
      redirectLocation(
        { path: "/a" },
        { statusCode: 301, scheme: "https", hostname: "secure.example", derivePort: "FROM_PROTOCOL_DEFAULT" },
        cur,
      ),
      "https://secure.example/a",
    );
    assert.equal(
      redirectLocation({ path: "/a" }, { statusCode: 302, port: 443, scheme: "https" }, cur),
      "https://reviews.default/a",
    );
    assert.equal(
      redirectLocation({ path: "/a" }, { statusCode: 302, port: 8443, scheme: "https" }, cur),
      "https://reviews.default:8443/a",
    );
    assert.equal(
      redirectLocation(
        { path: "/go/x" },
        { statusCode: 301, path: { type: "ReplacePrefix", value: "/went", matchedPrefix: "/go" } },
        { scheme: "http", authority: "h" },
      ),
      "http://h/went/x",
    );
  });
});

test("compileRe2: full match, RE2-only syntax, untranslatable patterns", () => {
  const full = compileRe2("a+b");
  assert.ok(full?.test("aab"));
  assert.equal(full?.test("xaab"), false);
  assert.ok(compileRe2("(?i)abc")?.test("ABC"));
  assert.ok(compileRe2("(?P<v>v[0-9])/x")?.test("v1/x"));
  assert.ok(compileRe2("[[:digit:]]+")?.test("123"));
  assert.ok(compileRe2("\\Qa.b\\E")?.test("a.b"));
  assert.equal(compileRe2("\\Qa.b\\E")?.test("axb"), false);
  assert.ok(compileRe2("\\pL+")?.test("héllo"));
  assert.ok(compileRe2("a|b")?.test("b"));
  assert.equal(compileRe2("a|b")?.test("ab"), false);
  assert.equal(compileRe2("(?U)a+"), null);
});
