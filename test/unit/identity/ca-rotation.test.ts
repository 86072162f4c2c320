// Root rotation on an injected clock: the new root is trusted at once, signs only after the grace
// period, certificates from both roots verify, removal rules, and persistence across restarts.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CertificateAuthority } from "../../../src/identity/ca.js";
import { csrFor, ID_A, ManualClock, TD, tempDir } from "./support.js";

const GRACE_S = 3600;

async function rootOf(ca: CertificateAuthority): Promise<{ chain: string[]; rootFp: string }> {
  const r = await ca.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A, validitySeconds: 86_400 });
  assert.ok(r.ok, r.ok ? "" : r.reason);
  if (!r.ok) throw new Error("unreachable");
  return {
    chain: r.certChain,
    rootFp: new X509Certificate(r.certChain[r.certChain.length - 1] ?? "").fingerprint256,
  };
}

test("rotation: trusted immediately, signing after the grace period, removal rules, persisted", async () => {
  const { dir, cleanup } = tempDir();
  const clock = new ManualClock();
  const open = () =>
    CertificateAuthority.open({
      stateDir: dir,
      trustDomain: TD,
      now: clock.now,
      rootGraceSeconds: GRACE_S,
      workers: 1,
    });
  let ca = await open();
  try {
    const v1 = ca.bundleVersion();
    const [oldRoot] = ca.roots();
    assert.ok(oldRoot?.signing);
    const before = await rootOf(ca);
    assert.equal(before.rootFp, oldRoot?.fingerprint);

    const added = await ca.rotateRoot();
    assert.equal(added.signing, false);
    assert.equal(added.signingFrom.getTime(), clock.t + GRACE_S * 1000);
    assert.equal(ca.trustBundle().length, 2, "both roots trusted at once");
    assert.notEqual(ca.bundleVersion(), v1, "the bundle version changes");
    assert.deepEqual(
      ca.roots().map((r) => [r.fingerprint, r.signing]),
      [
        [oldRoot?.fingerprint, true],
        [added.fingerprint, false],
      ],
    );

    // The current signer cannot be removed.
    const refuseSigner = await ca.removeRoot(oldRoot?.fingerprint ?? "");
    assert.ok(!refuseSigner.ok && refuseSigner.code === "AMBIT_E_CA_STATE");

    clock.advance(GRACE_S * 1000 - 1000);
    assert.equal((await rootOf(ca)).rootFp, oldRoot?.fingerprint, "old root signs during the grace period");
    clock.advance(1000);
    const after = await rootOf(ca);
    assert.equal(after.rootFp, added.fingerprint, "new root signs after the grace period");
    assert.deepEqual(
      ca.roots().map((r) => r.signing),
      [false, true],
    );

    // Certificates from both roots verify against the bundle.
    assert.ok(ca.verifyPeerChain(before.chain).ok);
    assert.ok(ca.verifyPeerChain(after.chain).ok);
    const bundle = ca.trustBundle().map((p) => new X509Certificate(p));
    for (const chain of [before.chain, after.chain]) {
      const leaf = new X509Certificate(chain[0] ?? "");
      assert.ok(bundle.some((r) => leaf.checkIssued(r) && leaf.verify(r.publicKey)));
    }

    // State survives a restart (same clock: same signer).
    await ca.close();
    ca = await open();
    assert.equal(ca.trustBundle().length, 2);
    assert.deepEqual(
      ca.roots().map((r) => [r.fingerprint, r.signing]),
      [
        [oldRoot?.fingerprint, false],
        [added.fingerprint, true],
      ],
    );

    // Removal: unknown fingerprints, the signer and the last root are refused; the old root goes.
    assert.equal((await ca.removeRoot("AB:CD")).ok, false);
    const refuseNew = await ca.removeRoot(added.fingerprint);
    assert.ok(!refuseNew.ok && refuseNew.code === "AMBIT_E_CA_STATE");
    const v2 = ca.bundleVersion();
    const removed = await ca.removeRoot((oldRoot?.fingerprint ?? "").replace(/:/g, "").toLowerCase());
    assert.ok(removed.ok);
    assert.equal(ca.trustBundle().length, 1);
    assert.notEqual(ca.bundleVersion(), v2);
    const oldVerify = ca.verifyPeerChain(before.chain.slice(0, 1));
    assert.ok(
      !oldVerify.ok && oldVerify.code === "AMBIT_E_UNAUTHENTICATED",
      "the removed root is no longer trusted",
    );
    assert.ok(ca.verifyPeerChain(after.chain).ok);
    const last = await ca.removeRoot(added.fingerprint);
    assert.ok(!last.ok);

    const state = JSON.parse(readFileSync(join(dir, "ca", "bundle.json"), "utf8")) as {
      roots: { n: number; state: string }[];
    };
    assert.deepEqual(
      state.roots.map((r) => [r.n, r.state]),
      [
        [1, "removed"],
        [2, "trusted"],
      ],
    );
    assert.equal(existsSync(join(dir, "ca", "root-1-key.pem")), false, "a removed root's key is deleted");

    await ca.close();
    ca = await open();
    assert.deepEqual(
      ca.roots().map((r) => [r.fingerprint, r.signing]),
      [[added.fingerprint, true]],
    );
  } finally {
    await ca.close();
    cleanup();
  }
});

test("a root added while another rotation is pending takes over after its own grace period", async () => {
  const { dir, cleanup } = tempDir();
  const clock = new ManualClock();
  const ca = await CertificateAuthority.open({
    stateDir: dir,
    trustDomain: TD,
    now: clock.now,
    rootGraceSeconds: 100,
    workers: 0,
  });
  try {
    const first = await ca.rotateRoot();
    clock.advance(50_000);
    const second = await ca.rotateRoot();
    assert.equal(ca.trustBundle().length, 3);
    clock.advance(50_000);
    assert.equal(ca.roots().find((r) => r.signing)?.fingerprint, first.fingerprint);
    clock.advance(50_000);
    assert.equal(ca.roots().find((r) => r.signing)?.fingerprint, second.fingerprint);
    // A pending (not yet signing) root may be withdrawn.
    const third = await ca.rotateRoot();
    assert.ok((await ca.removeRoot(third.fingerprint)).ok);
    assert.equal(ca.trustBundle().length, 3);
  } finally {
    await ca.close();
    cleanup();
  }
});
