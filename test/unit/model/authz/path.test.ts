// Path normalization (Istio BASE) and path matching, including {*} / {**} templates.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { normalizePath, PathMatcher, pathTemplateRegExp } from "../../../../src/model/authz/path.js";

void describe("normalizePath (BASE)", () => {
  const cases: [string, string | null][] = [
    ["/", "/"],
    ["/plain/path", "/plain/path"],
    ["/foo?v=1", "/foo"],
    ["/foo#frag", "/foo"],
    ["/foo?a=/../x#y", "/foo"],
    ["/a/../b", "/b"],
    ["/public/./data/abc/../xyz", "/public/data/xyz"],
    ["/a/b/..", "/a/"],
    ["/a/b/.", "/a/b/"],
    ["/..", "/"],
    ["/../../x", "/x"],
    ["/public/%2E%2E/private", "/private"],
    ["/public/%2e%2e/private", "/private"],
    ["/%2e/x", "/x"],
    ["/some%2fdata", "/some%2fdata"],
    ["/some%2Fdata/%61%62%63", "/some%2Fdata/abc"],
    ["/%41%5a%30%2d%5f%7e", "/AZ0-_~"],
    ["/%252e%252e/x", "/%252e%252e/x"],
    ["/a//b", "/a//b"],
    ["/a//../b", "/a/b"],
    ["/some\\data", "/some/data"],
    ["/a\\..\\b", "/b"],
    ["/Case/Sensitive", "/Case/Sensitive"],
    ["/bad%zz", "/bad%zz"],
    ["/trailing%2", "/trailing%2"],
    ["/x%00y", null],
    ["/x.y/z.html", "/x.y/z.html"],
    ["/.hidden/..well", "/.hidden/..well"],
  ];
  for (const [input, want] of cases) {
    void test(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
      assert.equal(normalizePath(input), want);
    });
  }
});

void describe("path templates", () => {
  void test("{*} is exactly one non-empty segment", () => {
    const re = pathTemplateRegExp("/foo/{*}/bar");
    assert.ok(re.test("/foo/x/bar"));
    assert.ok(!re.test("/foo//bar"));
    assert.ok(!re.test("/foo/x/y/bar"));
  });

  void test("{**} is zero or more segments, empty ones included", () => {
    const re = pathTemplateRegExp("/store/{**}/cart");
    assert.ok(re.test("/store//cart"));
    assert.ok(re.test("/store/a/b/c/cart"));
    assert.ok(!re.test("/store/cart"));
    const tail = pathTemplateRegExp("/allow/admin/{**}");
    assert.ok(tail.test("/allow/admin/"));
    assert.ok(tail.test("/allow/admin/foo/temp.txt"));
    assert.ok(!tail.test("/allow/admin"));
  });

  void test("literal segments are literal (dots, plus, parentheses)", () => {
    const re = pathTemplateRegExp("/v1.0/{*}/a+b(c)");
    assert.ok(re.test("/v1.0/x/a+b(c)"));
    assert.ok(!re.test("/v1x0/x/a+b(c)"));
  });

  void test("template segments do not match characters outside a path segment", () => {
    assert.ok(!pathTemplateRegExp("/a/{*}").test("/a/x y"));
    assert.ok(pathTemplateRegExp("/a/{*}").test("/a/x%20y"));
  });
});

void describe("PathMatcher", () => {
  void test("exact, prefix, suffix, presence and templates together", () => {
    const m = new PathMatcher(["/exact", "/api/*", "*.png", "/foo/{*}/bar/{**}"]);
    assert.ok(m.matches("/exact"));
    assert.ok(!m.matches("/exact/"));
    assert.ok(m.matches("/api/v1"));
    assert.ok(!m.matches("/api"));
    assert.ok(m.matches("/img/logo.png"));
    assert.ok(m.matches("/foo/1/bar/"));
    assert.ok(m.matches("/foo/1/bar/x/y"));
    assert.ok(!m.matches("/foo/1/2/bar/x"));
    assert.ok(new PathMatcher(["*"]).matches("/"));
  });

  void test("case-sensitive", () => {
    assert.ok(!new PathMatcher(["/Admin"]).matches("/admin"));
  });
});
