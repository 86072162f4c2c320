// Shared checks: the RE2 regex validator (what Istio and Envoy accept, not what JavaScript does)
// and Istio's host-name rules.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { re2Problem } from "../../../../src/model/resources/common.js";
import {
  fqdnProblem,
  hostsOverlap,
  hostSubsetOf,
  wildcardHostProblem,
} from "../../../../src/model/resources/networking.js";

describe("re2Problem", () => {
  const valid = [
    "^/api/v[0-9]+/.*$",
    "GET|HEAD",
    "(?i)/Reviews",
    "(?i:abc)def",
    "(?P<id>[0-9]+)",
    "(?<id>[0-9]+)",
    "\\pL+",
    "\\p{Greek}\\P{Han}",
    "[[:alpha:]]+[[:digit:]]",
    "\\Qa.b*c\\E+",
    "a{2,5}b{1000}",
    "\\x41\\x{263a}",
    "\\Aabc\\z",
    "[^]a]",
    "[\\d\\-_]+",
    "\\.\\*\\/",
    "a*?b+?",
    "\\012",
    "",
  ];
  for (const re of valid)
    test(`accepts ${JSON.stringify(re)}`, () => assert.equal(re2Problem(re), undefined));

  const invalid = [
    "(a)\\1",
    "\\8",
    "(?=a)b",
    "(?!a)b",
    "(?<=a)b",
    "(?<!a)b",
    "(?>a)",
    "(?<x>a)\\k<x>",
    "(?P<x>a)(?P=x)",
    "a**",
    "a{1001}",
    "a{1,2000}",
    "(",
    "a)",
    "[a-",
    "*a",
    "\\e",
    "\\Z",
    "\\uFFFF",
    "\\x4",
    "(?)",
    "(?#comment)",
    "x".repeat(1025),
    "a\\",
  ];
  for (const re of invalid)
    test(`rejects ${JSON.stringify(re.length > 30 ? `${re.slice(0, 30)}…` : re)}`, () =>
      assert.notEqual(re2Problem(re), undefined));
});

describe("Istio host names", () => {
  test("wildcard hosts", () => {
    for (const ok of [
      "reviews",
      "reviews.bookinfo.svc.cluster.local",
      "*",
      "*.example.com",
      "*-foo.example.com",
      "Reviews.Example.com",
      "istio.io.",
    ]) {
      assert.equal(wildcardHostProblem(ok), undefined, ok);
    }
    for (const bad of ["", "foo.*.com", "a..b", "example.123", "a_b.com", "x".repeat(64), "a.".repeat(130)]) {
      assert.notEqual(wildcardHostProblem(bad), undefined, bad);
    }
  });

  test("FQDNs reject wildcards", () => {
    assert.equal(fqdnProblem("api.example.com"), undefined);
    assert.notEqual(fqdnProblem("*.example.com"), undefined);
  });

  test("overlap and subset follow Istio's host.Name rules", () => {
    assert.ok(hostsOverlap("foo.com", "foo.com"));
    assert.ok(hostsOverlap("*.com", "foo.com"));
    assert.ok(hostsOverlap("*.foo.com", "*.com"));
    assert.ok(hostsOverlap("*", "anything.example"));
    assert.ok(!hostsOverlap("foo.com", "bar.com"));
    assert.ok(hostSubsetOf("a.foo.com", "*.foo.com"));
    assert.ok(hostSubsetOf("*.a.foo.com", "*.foo.com"));
    assert.ok(!hostSubsetOf("*.foo.com", "*.a.foo.com"));
    assert.ok(!hostSubsetOf("*.foo.com", "a.foo.com"));
  });
});
