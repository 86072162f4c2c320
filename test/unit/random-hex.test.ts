import assert from "node:assert/strict";
import { test } from "node:test";
import { randomHex } from "../../src/core/random-hex.js";

test("randomHex: lower-case hex of the asked length, different every time, across pool refills", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = randomHex(16);
    assert.match(id, /^[0-9a-f]{32}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
  assert.match(randomHex(8), /^[0-9a-f]{16}$/);
});

test("randomHex: a request larger than the pool is served whole", () => {
  assert.match(randomHex(5000), /^[0-9a-f]{10000}$/);
});
