// verifyPeerChain: how the control plane authenticates a presented certificate chain — good chains,
// expiry on the injected clock, other CAs, other trust domains, malformed input.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CertificateAuthority } from "../../../src/identity/ca.js";
import {
  csrFor,
  ID_A,
  makeIntermediate,
  makeLeaf,
  makeRoot,
  ManualClock,
  NODE_ID,
  T0,
  TD,
  tempDir,
  writePluginFiles,
} from "./support.js";

describe("verifyPeerChain", () => {
  const tmp = tempDir();
  const clock = new ManualClock();
  const root = makeRoot(TD, new Date(T0 - 86_400_000));
  const mid = makeIntermediate(root, "issuing", new Date(T0 - 86_400_000));
  let ca: CertificateAuthority;
  let other: CertificateAuthority;

  before(async () => {
    ca = await CertificateAuthority.open({
      stateDir: `${tmp.dir}/a`,
      trustDomain: TD,
      now: clock.now,
      workers: 0,
      pluginCa: writePluginFiles(tmp.dir, mid, [root.certPem]),
    });
    other = await CertificateAuthority.open({
      stateDir: `${tmp.dir}/b`,
      trustDomain: TD,
      now: clock.now,
      workers: 0,
    });
  });
  after(async () => {
    await ca.close();
    await other.close();
    tmp.cleanup();
  });

  const issue = async (authority: CertificateAuthority, validitySeconds = 3600): Promise<string[]> => {
    const r = await authority.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A, validitySeconds });
    assert.ok(r.ok, r.ok ? "" : r.reason);
    return r.ok ? r.certChain : [];
  };

  test("a good chain gives the identity, serial and expiry; the node name only for node certificates", async () => {
    const chain = await issue(ca);
    const v = ca.verifyPeerChain(chain);
    assert.ok(v.ok, v.ok ? "" : v.reason);
    if (!v.ok) return;
    assert.equal(v.identity, ID_A);
    assert.match(v.serial, /^[0-9a-f]{32}$/);
    assert.equal(v.notAfter.getTime(), T0 + 3_600_000);
    assert.equal(v.nodeName, undefined);
    const node = await ca.signNodeCsr({ csrPem: csrFor([NODE_ID]), nodeName: "n1" });
    assert.ok(node.ok);
    if (node.ok) {
      const n = ca.verifyPeerChain(node.certChain.slice(0, 2));
      assert.ok(n.ok && n.nodeName === "n1" && n.identity === NODE_ID);
    }
  });

  test("an expired certificate is refused, and so is one not yet valid", async () => {
    const chain = await issue(ca, 3600);
    clock.advance(3_600_000 + 1000);
    try {
      const v = ca.verifyPeerChain(chain);
      assert.ok(!v.ok && v.code === "AMBIT_E_UNAUTHENTICATED", JSON.stringify(v));
    } finally {
      clock.t = T0;
    }
    clock.t = T0 - 120_000;
    try {
      const v = ca.verifyPeerChain(chain);
      assert.ok(!v.ok && v.code === "AMBIT_E_UNAUTHENTICATED");
    } finally {
      clock.t = T0;
    }
  });

  test("a certificate from another CA is refused, even with that CA's root appended", async () => {
    const chain = await issue(other);
    for (const presented of [chain, chain.slice(0, 1)]) {
      const v = ca.verifyPeerChain(presented);
      assert.ok(!v.ok && v.code === "AMBIT_E_UNAUTHENTICATED", JSON.stringify(v));
    }
  });

  test("a certificate of this CA's root for another trust domain is refused with AMBIT_E_TRUST_DOMAIN", () => {
    const leaf = makeLeaf(
      mid,
      ["spiffe://other.org/ns/shop/sa/payments"],
      new Date(T0 - 1000),
      new Date(T0 + 3_600_000),
    );
    const v = ca.verifyPeerChain([leaf.certPem, mid.certPem]);
    assert.ok(!v.ok && v.code === "AMBIT_E_TRUST_DOMAIN", JSON.stringify(v));
  });

  test("a leaf without exactly one SPIFFE URI, a CA presented as a leaf, and garbage are refused", () => {
    const window: [Date, Date] = [new Date(T0 - 1000), new Date(T0 + 3_600_000)];
    const two = makeLeaf(mid, [ID_A, `spiffe://${TD}/ns/x/sa/y`], ...window);
    const none = makeLeaf(mid, [], ...window);
    for (const presented of [
      [two.certPem],
      [none.certPem],
      [mid.certPem, root.certPem],
      [],
      ["junk"],
      [root.certPem],
    ]) {
      const v = ca.verifyPeerChain(presented);
      assert.ok(!v.ok && v.code === "AMBIT_E_UNAUTHENTICATED", JSON.stringify(v));
    }
    assert.equal(ca.verifyPeerChain(undefined as unknown as string[]).ok, false);
  });
});
