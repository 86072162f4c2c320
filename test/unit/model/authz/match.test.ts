// String, address and port matchers: the building blocks every policy field compiles to.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CidrMatcher, parseIp, portSet, StringMatcher } from "../../../../src/model/authz/match.js";

void describe("StringMatcher", () => {
  void test("exact, prefix*, *suffix and * (presence) are OR'ed", () => {
    const m = new StringMatcher(["exact", "pre*", "*suf"]);
    assert.ok(m.matches("exact"));
    assert.ok(m.matches("prefix"));
    assert.ok(m.matches("pre"));
    assert.ok(m.matches("a-suf"));
    assert.ok(!m.matches("exactly"));
    assert.ok(!m.matches("xpre"));
    assert.ok(!m.matches(""));
  });

  void test("'*' alone needs a non-empty value", () => {
    const m = new StringMatcher(["*"]);
    assert.ok(m.matches("x"));
    assert.ok(!m.matches(""));
  });

  void test("case-sensitive unless built with ignoreCase (the caller lowercases the input)", () => {
    assert.ok(!new StringMatcher(["GET"]).matches("get"));
    const hosts = new StringMatcher(["Example.COM", "*.Example.com"], true);
    assert.ok(hosts.matches("example.com"));
    assert.ok(hosts.matches("api.example.com"));
  });
});

void describe("parseIp", () => {
  void test("IPv4 and IPv6 forms", () => {
    assert.deepEqual(parseIp("10.1.2.3"), { v4: true, n: (10 << 24) + (1 << 16) + (2 << 8) + 3 });
    assert.deepEqual(parseIp("::1"), { v4: false, parts: [0, 0, 0, 0, 0, 0, 0, 1] });
    assert.deepEqual(parseIp("2001:db8::8:800:200c:417a"), {
      v4: false,
      parts: [0x2001, 0xdb8, 0, 0, 8, 0x800, 0x200c, 0x417a],
    });
    assert.deepEqual(parseIp("::ffff:1.2.3.4"), { v4: false, parts: [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304] });
    assert.deepEqual(parseIp("fe80::1%eth0"), { v4: false, parts: [0xfe80, 0, 0, 0, 0, 0, 0, 1] });
    assert.deepEqual(parseIp("255.255.255.255"), { v4: true, n: 0xffffffff });
  });

  void test("garbage is null, never an exception", () => {
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "a.b.c.d",
      "1:::2",
      "1:2:3:4:5:6:7:8:9",
      "g::1",
      "not-an-ip",
      "1.2.3.4/24",
    ]) {
      assert.equal(parseIp(bad), null, bad);
    }
  });
});

void describe("CidrMatcher", () => {
  void test("IPv4 blocks and single addresses", () => {
    const m = new CidrMatcher(["10.10.0.0/16", "192.168.1.7"]);
    assert.ok(m.contains(parseIp("10.10.200.1")));
    assert.ok(!m.contains(parseIp("10.11.0.1")));
    assert.ok(m.contains(parseIp("192.168.1.7")));
    assert.ok(!m.contains(parseIp("192.168.1.8")));
    assert.ok(!m.contains(null));
  });

  void test("/0 matches every address of its family; host bits in the block are ignored", () => {
    assert.ok(new CidrMatcher(["0.0.0.0/0"]).contains(parseIp("203.0.113.9")));
    assert.ok(!new CidrMatcher(["0.0.0.0/0"]).contains(parseIp("::1")));
    assert.ok(new CidrMatcher(["10.1.2.3/8"]).contains(parseIp("10.200.0.1")));
  });

  void test("IPv6 blocks, including prefixes that split a 16-bit group", () => {
    const m = new CidrMatcher(["2001:db8::/32", "fd00:1234:5600::/40"]);
    assert.ok(m.contains(parseIp("2001:db8:ffff::1")));
    assert.ok(!m.contains(parseIp("2001:db9::1")));
    assert.ok(m.contains(parseIp("fd00:1234:56ff::1")));
    assert.ok(!m.contains(parseIp("fd00:1234:5700::1")));
    assert.ok(!m.contains(parseIp("10.0.0.1")), "an IPv4 address is never inside an IPv6 block");
    assert.ok(new CidrMatcher(["::1"]).contains(parseIp("::1")));
  });

  void test("an unparseable block matches nothing instead of throwing", () => {
    assert.ok(!new CidrMatcher(["nope", "10.0.0.0/99"]).contains(parseIp("10.0.0.1")));
  });
});

void test("portSet keeps valid port numbers", () => {
  assert.deepEqual([...portSet(["80", "8080", "70000", "x"])], [80, 8080]);
});
