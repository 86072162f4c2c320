// Revocation list semantics shared by the control plane and the data plane.
import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeSerial, RevocationList } from "../../../src/model/revocation.js";

const at = "2026-01-01T00:00:00Z";

test("an identity revocation covers every certificate of that identity", () => {
  const l = new RevocationList([
    { identity: "spiffe://cluster.local/ns/a/sa/b", reason: "gone", revokedAt: at },
  ]);
  assert.equal(l.check("spiffe://cluster.local/ns/a/sa/b", "01")?.reason, "gone");
  assert.equal(l.check("spiffe://cluster.local/ns/a/sa/b"), l.entries[0]);
  assert.equal(l.check("spiffe://cluster.local/ns/a/sa/c", "01"), undefined);
});

test("a serial revocation covers one certificate, whatever the serial's spelling", () => {
  const l = new RevocationList([{ serial: "00AB:CD", reason: "key leak", revokedAt: at }]);
  assert.equal(l.check("spiffe://cluster.local/ns/a/sa/b", "abcd")?.reason, "key leak");
  assert.equal(l.check("spiffe://cluster.local/ns/a/sa/b", "0x00ABCD")?.reason, "key leak");
  assert.equal(l.check("spiffe://cluster.local/ns/a/sa/b", "abce"), undefined);
  assert.equal(l.check("spiffe://cluster.local/ns/a/sa/b"), undefined);
});

test("serial normalization", () => {
  assert.equal(normalizeSerial("00:0A:FF"), "aff");
  assert.equal(normalizeSerial("0"), "0");
  assert.equal(normalizeSerial("0x1F"), "1f");
});
