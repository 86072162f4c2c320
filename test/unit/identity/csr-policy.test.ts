// The CA's CSR policy: every refusal with its stable code, and what passes.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, test } from "node:test";
import type { ErrorCode } from "../../../src/core/errors.js";
import { checkWorkloadCsr, grantedTtl, type CsrPolicy } from "../../../src/identity/csr-policy.js";
import { createCsr, generateKey, parseCsr } from "../../../src/identity/pki.js";
import { csrFor, ID_A, ID_B, tamperCsr, TD } from "./support.js";

const POLICY: CsrPolicy = { trustDomain: TD, maxTtlSeconds: 86_400, defaultTtlSeconds: 86_400 };

function check(pem: string, identity = ID_A, validitySeconds?: number, policy = POLICY) {
  return checkWorkloadCsr(parseCsr(pem, identity), { identity, validitySeconds }, policy);
}

function refused(pem: string, code: ErrorCode, identity = ID_A, validitySeconds?: number): string {
  const r = check(pem, identity, validitySeconds);
  assert.equal(r.ok, false, `expected ${code}`);
  if (r.ok) return "";
  assert.equal(r.code, code, r.reason);
  assert.ok(r.reason.length > 10);
  return r.reason;
}

describe("csr policy refusals", () => {
  test("two URI SANs", () => {
    refused(csrFor([ID_A, ID_B]), "AMBIT_E_CSR_SAN");
  });
  test("no SAN", () => {
    refused(csrFor([]), "AMBIT_E_CSR_SAN");
  });
  test("a DNS SAN next to the URI", () => {
    refused(csrFor([ID_A], ["payments.shop.svc"]), "AMBIT_E_CSR_SAN");
  });
  test("a URI SAN that is not a workload SPIFFE ID", () => {
    refused(csrFor([`spiffe://${TD}/payments`]), "AMBIT_E_CSR_SAN", `spiffe://${TD}/payments`);
    refused(csrFor(["https://example.com/"]), "AMBIT_E_CSR_SAN");
  });
  test("another trust domain", () => {
    const other = "spiffe://evil.org/ns/shop/sa/payments";
    refused(csrFor([other]), "AMBIT_E_TRUST_DOMAIN", other);
  });
  test("a CSR for another identity than requested names both", () => {
    const reason = refused(csrFor([ID_A]), "AMBIT_E_IDENTITY_MISMATCH", ID_B);
    assert.ok(reason.includes(ID_A) && reason.includes("ns/shop/sa/orders"), reason);
  });
  test("a malformed requested identity", () => {
    refused(csrFor([ID_A]), "AMBIT_E_IDENTITY_MISMATCH", "payments");
  });
  test("RSA 1024", () => {
    const key = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
    const reason = refused(createCsr(key, { uris: [ID_A] }), "AMBIT_E_KEY_WEAK");
    assert.match(reason, /RSA 1024/);
  });
  test("validity above the maximum (refused, not capped)", () => {
    const reason = refused(csrFor([ID_A]), "AMBIT_E_TTL_TOO_LONG", ID_A, 86_401);
    assert.match(reason, /86401/);
  });
  test("garbage instead of a CSR", () => {
    refused(
      "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
      "AMBIT_E_CSR_INVALID",
    );
  });
  test("a signature that does not verify", () => {
    refused(tamperCsr(csrFor([ID_A]), -3), "AMBIT_E_CSR_SIGNATURE");
  });
});

describe("csr policy acceptance", () => {
  test("EC P-256, EC P-384 and RSA 2048 with one SPIFFE URI", () => {
    for (const key of [
      generateKey("P-256").privateKey,
      generateKey("P-384").privateKey,
      generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey,
    ]) {
      const r = check(createCsr(key, { uris: [ID_A] }));
      assert.ok(r.ok, r.ok ? "" : r.reason);
      if (r.ok) assert.equal(r.identity, ID_A);
    }
  });

  test("validity: absent or 0 means the default, capped by the maximum; up to the maximum is granted", () => {
    const pem = csrFor([ID_A]);
    for (const [v, want] of [
      [undefined, 86_400],
      [0, 86_400],
      [3600, 3600],
      [86_400, 86_400],
    ] as const) {
      const r = check(pem, ID_A, v);
      assert.ok(r.ok && r.ttlSeconds === want, `${v} → ${JSON.stringify(r)}`);
    }
    assert.deepEqual(
      grantedTtl(undefined, { trustDomain: TD, maxTtlSeconds: 3600, defaultTtlSeconds: 86_400 }),
      { ok: true, ttlSeconds: 3600 },
    );
  });
});
