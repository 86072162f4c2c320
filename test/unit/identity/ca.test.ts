// The certificate authority: first start and reuse of its on-disk root, key-file permissions,
// workload/node/server certificates, the worker pool and its bound, and plug-in CAs.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isAmbitError } from "../../../src/core/errors.js";
import { CertificateAuthority, nodeNameOf } from "../../../src/identity/ca.js";
import { certificateInfo, generateKey } from "../../../src/identity/pki.js";
import {
  csrFor,
  ID_A,
  ID_B,
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

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => isAmbitError(err) && err.code === code);
}

describe("CA state on disk", () => {
  test("first start creates an EC P-256 root, 10 years, key 0600 in a 0700 directory; later starts reuse it", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const clock = new ManualClock();
      const ca = await CertificateAuthority.open({
        stateDir: dir,
        trustDomain: TD,
        now: clock.now,
        workers: 0,
      });
      const bundle = ca.trustBundle();
      assert.equal(bundle.length, 1);
      const root = new X509Certificate(bundle[0] ?? "");
      assert.equal(root.ca, true);
      assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
      assert.equal(certificateInfo(root).subjectOrganization, TD);
      const years = (Date.parse(root.validTo) - T0) / (365.25 * 86_400_000);
      assert.ok(years > 9.9 && years < 10.1, String(years));
      assert.equal(statSync(join(dir, "ca")).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, "ca", "root-1-key.pem")).mode & 0o777, 0o600);
      assert.ok(readFileSync(join(dir, "ca", "root-1-cert.pem"), "utf8").includes("BEGIN CERTIFICATE"));
      const state = JSON.parse(readFileSync(join(dir, "ca", "bundle.json"), "utf8")) as {
        roots: { fingerprint: string; state: string }[];
      };
      assert.deepEqual(
        state.roots.map((r) => [r.fingerprint, r.state]),
        [[root.fingerprint256, "trusted"]],
      );
      const version = ca.bundleVersion();
      assert.deepEqual(
        ca.roots().map((r) => [r.fingerprint, r.signing]),
        [[root.fingerprint256, true]],
      );
      await ca.close();

      const again = await CertificateAuthority.open({
        stateDir: dir,
        trustDomain: TD,
        now: clock.now,
        workers: 0,
      });
      assert.deepEqual(again.trustBundle(), bundle);
      assert.equal(again.bundleVersion(), version);
      await again.close();
    } finally {
      cleanup();
    }
  });

  test("refuses a CA key readable by group or others, and another trust domain", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const ca = await CertificateAuthority.open({ stateDir: dir, trustDomain: TD, workers: 0 });
      await ca.close();
      await rejectsWithCode(
        CertificateAuthority.open({ stateDir: dir, trustDomain: "other.org", workers: 0 }),
        "AMBIT_E_CA_STATE",
      );
      chmodSync(join(dir, "ca", "root-1-key.pem"), 0o644);
      await rejectsWithCode(
        CertificateAuthority.open({ stateDir: dir, trustDomain: TD, workers: 0 }),
        "AMBIT_E_CA_STATE",
      );
      chmodSync(join(dir, "ca", "root-1-key.pem"), 0o640);
      await rejectsWithCode(
        CertificateAuthority.open({ stateDir: dir, trustDomain: TD, workers: 0 }),
        "AMBIT_E_CA_STATE",
      );
      chmodSync(join(dir, "ca", "root-1-key.pem"), 0o600);
      writeFileSync(join(dir, "ca", "root-1-key.pem"), generateKey().privateKeyPem);
      await rejectsWithCode(
        CertificateAuthority.open({ stateDir: dir, trustDomain: TD, workers: 0 }),
        "AMBIT_E_CA_STATE",
      );
    } finally {
      cleanup();
    }
  });
});

describe("signing", () => {
  const { dir, cleanup } = tempDir();
  const clock = new ManualClock();
  let ca: CertificateAuthority;
  before(async () => {
    ca = await CertificateAuthority.open({ stateDir: dir, trustDomain: TD, now: clock.now, workers: 0 });
  });
  after(async () => {
    await ca.close();
    cleanup();
  });

  test("a workload certificate: chain leaf+root, only the URI SAN, backdated 60 s, serial and notAfter reported", async () => {
    const r = await ca.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A, validitySeconds: 3600 });
    assert.ok(r.ok, r.ok ? "" : r.reason);
    if (!r.ok) return;
    assert.equal(r.certChain.length, 2);
    assert.equal(r.certChain[1], ca.trustBundle()[0]);
    const leaf = new X509Certificate(r.certChain[0] ?? "");
    const root = new X509Certificate(r.certChain[1] ?? "");
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey));
    assert.equal(leaf.subjectAltName, `URI:${ID_A}`);
    assert.equal(certificateInfo(leaf).subject, "");
    assert.equal(leaf.ca, false);
    assert.equal(r.serial, leaf.serialNumber.toLowerCase());
    assert.match(r.serial, /^[0-9a-f]{32}$/);
    assert.equal(Date.parse(leaf.validFrom), T0 - 60_000);
    assert.equal(Date.parse(leaf.validTo), T0 + 3_600_000);
    assert.equal(r.notAfter.getTime(), T0 + 3_600_000);
  });

  test("no validity means the default 24 h", async () => {
    const r = await ca.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A });
    assert.ok(r.ok);
    if (r.ok) assert.equal(r.notAfter.getTime(), T0 + 86_400_000);
  });

  test("refusals carry the policy's codes and never throw", async () => {
    const cases: [Parameters<CertificateAuthority["signWorkloadCsr"]>[0], string][] = [
      [{ csrPem: csrFor([ID_B]), identity: ID_A }, "AMBIT_E_IDENTITY_MISMATCH"],
      [{ csrPem: csrFor([ID_A]), identity: ID_A, validitySeconds: 90_000 }, "AMBIT_E_TTL_TOO_LONG"],
      [{ csrPem: csrFor([ID_A, ID_B]), identity: ID_A }, "AMBIT_E_CSR_SAN"],
      [{ csrPem: "garbage", identity: ID_A }, "AMBIT_E_CSR_INVALID"],
      [{ csrPem: undefined as unknown as string, identity: ID_A }, "AMBIT_E_CSR_INVALID"],
    ];
    for (const [req, code] of cases) {
      const r = await ca.signWorkloadCsr(req);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.code, code, r.reason);
    }
  });

  test("a node certificate binds the node name as O=ambit-node, CN=<node>", async () => {
    const r = await ca.signNodeCsr({ csrPem: csrFor([NODE_ID]), nodeName: "node-1" });
    assert.ok(r.ok, r.ok ? "" : r.reason);
    if (!r.ok) return;
    const leaf = new X509Certificate(r.certChain[0] ?? "");
    assert.equal(leaf.subject, "O=ambit-node\nCN=node-1");
    assert.equal(leaf.subjectAltName, `URI:${NODE_ID}`);
    assert.equal(nodeNameOf(r.certChain[0] ?? ""), "node-1");
    const v = ca.verifyPeerChain(r.certChain);
    assert.ok(v.ok && v.nodeName === "node-1" && v.identity === NODE_ID, JSON.stringify(v));
    // A workload certificate has no node name, and a node CSR must name the node identity.
    const w = await ca.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A });
    assert.ok(w.ok);
    if (w.ok) assert.equal(nodeNameOf(w.certChain[0] ?? ""), undefined);
    const wrong = await ca.signNodeCsr({ csrPem: csrFor([ID_A]), nodeName: "node-1" });
    assert.ok(!wrong.ok && wrong.code === "AMBIT_E_IDENTITY_MISMATCH");
    const badName = await ca.signNodeCsr({ csrPem: csrFor([NODE_ID]), nodeName: "Node 1/../x" });
    assert.ok(!badName.ok);
    assert.equal(nodeNameOf("not a certificate"), undefined);
  });

  test("a server certificate for the control plane: DNS/IP SANs, serverAuth, its own key", async () => {
    const { certChain, keyPem } = await ca.issueServerCertificate({
      dns: ["localhost", "cp.example"],
      ips: ["127.0.0.1"],
    });
    const leaf = new X509Certificate(certChain[0] ?? "");
    assert.equal(leaf.subjectAltName, "DNS:localhost, DNS:cp.example, IP Address:127.0.0.1");
    assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(keyPem)));
    assert.ok(leaf.verify(new X509Certificate(certChain[1] ?? "").publicKey));
    assert.equal(leaf.checkHost("cp.example"), "cp.example");
    assert.equal(leaf.checkIP("127.0.0.1"), "127.0.0.1");
    await assert.rejects(ca.issueServerCertificate({ dns: [], ips: [] }));
  });
});

describe("worker pool", () => {
  test("two workers sign concurrently; results match the inline path", async () => {
    const { dir, cleanup } = tempDir();
    const ca = await CertificateAuthority.open({ stateDir: dir, trustDomain: TD, workers: 2 });
    try {
      const ids = Array.from({ length: 40 }, (_, i) => `spiffe://${TD}/ns/n${i % 4}/sa/s${i}`);
      const results = await Promise.all(
        ids.map((id) => ca.signWorkloadCsr({ csrPem: csrFor([id]), identity: id, validitySeconds: 600 })),
      );
      const root = new X509Certificate(ca.trustBundle()[0] ?? "");
      results.forEach((r, i) => {
        assert.ok(r.ok, r.ok ? "" : r.reason);
        if (!r.ok) return;
        const leaf = new X509Certificate(r.certChain[0] ?? "");
        assert.ok(leaf.verify(root.publicKey));
        assert.equal(leaf.subjectAltName, `URI:${ids[i]}`);
      });
      assert.equal(new Set(results.map((r) => (r.ok ? r.serial : ""))).size, ids.length, "distinct serials");
      const bad = await ca.signWorkloadCsr({ csrPem: csrFor([ID_B]), identity: ID_A });
      assert.ok(!bad.ok && bad.code === "AMBIT_E_IDENTITY_MISMATCH");
    } finally {
      await ca.close();
      cleanup();
    }
  });

  test("a full queue refuses with AMBIT_E_UNAVAILABLE instead of queueing without bound", async () => {
    const { dir, cleanup } = tempDir();
    const ca = await CertificateAuthority.open({ stateDir: dir, trustDomain: TD, workers: 1, maxPending: 4 });
    try {
      const csr = csrFor([ID_A]);
      const results = await Promise.all(
        Array.from({ length: 12 }, () => ca.signWorkloadCsr({ csrPem: csr, identity: ID_A })),
      );
      const refused = results.filter((r) => !r.ok);
      assert.equal(results.filter((r) => r.ok).length, 4);
      assert.equal(refused.length, 8);
      for (const r of refused) if (!r.ok) assert.equal(r.code, "AMBIT_E_UNAVAILABLE");
      // Once drained, it accepts again.
      assert.ok((await ca.signWorkloadCsr({ csrPem: csr, identity: ID_A })).ok);
    } finally {
      await ca.close();
      cleanup();
    }
  });

  test("after close, signing is refused", async () => {
    const { dir, cleanup } = tempDir();
    const ca = await CertificateAuthority.open({ stateDir: dir, trustDomain: TD, workers: 1 });
    await ca.close();
    const r = await ca.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A });
    assert.ok(!r.ok && r.code === "AMBIT_E_UNAVAILABLE");
    cleanup();
  });
});

describe("plug-in CA", () => {
  test("a user-supplied root signs and is the only trust anchor", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = makeRoot("corp.example");
      const files = writePluginFiles(dir, root);
      const ca = await CertificateAuthority.open({
        stateDir: join(dir, "state"),
        trustDomain: TD,
        pluginCa: files,
        workers: 0,
      });
      try {
        assert.deepEqual(ca.trustBundle(), [new X509Certificate(root.certPem).toString()]);
        const r = await ca.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A });
        assert.ok(r.ok);
        if (!r.ok) return;
        assert.equal(r.certChain.length, 2);
        assert.ok(
          new X509Certificate(r.certChain[0] ?? "").verify(new X509Certificate(root.certPem).publicKey),
        );
        assert.ok(ca.verifyPeerChain(r.certChain).ok);
        assert.deepEqual(
          ca.roots().map((x) => x.signing),
          [true],
        );
      } finally {
        await ca.close();
      }
    } finally {
      cleanup();
    }
  });

  test("an intermediate plus its chain: leaves chain up to the user's root; rotation is the owner's job", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = makeRoot("corp.example");
      const mid = makeIntermediate(root, "Ambit issuing CA");
      const files = writePluginFiles(dir, mid, [mid.certPem, root.certPem]);
      const ca = await CertificateAuthority.open({
        stateDir: join(dir, "state"),
        trustDomain: TD,
        pluginCa: files,
        workers: 1,
      });
      try {
        const rootPem = new X509Certificate(root.certPem).toString();
        assert.deepEqual(ca.trustBundle(), [rootPem]);
        const r = await ca.signWorkloadCsr({ csrPem: csrFor([ID_A]), identity: ID_A });
        assert.ok(r.ok, r.ok ? "" : r.reason);
        if (!r.ok) return;
        assert.equal(r.certChain.length, 3);
        assert.equal(r.certChain[2], rootPem);
        const leaf = new X509Certificate(r.certChain[0] ?? "");
        const int = new X509Certificate(r.certChain[1] ?? "");
        assert.ok(leaf.checkIssued(int) && leaf.verify(int.publicKey));
        assert.ok(ca.verifyPeerChain(r.certChain).ok, "full chain");
        assert.ok(ca.verifyPeerChain([r.certChain[0] ?? ""]).ok, "leaf alone: the CA knows its intermediate");
        await rejectsWithCode(ca.rotateRoot(), "AMBIT_E_CA_STATE");
        const rm = await ca.removeRoot(new X509Certificate(rootPem).fingerprint256);
        assert.ok(!rm.ok);
        const server = await ca.issueServerCertificate({ dns: ["localhost"], ips: [] });
        assert.equal(server.certChain.length, 3);
      } finally {
        await ca.close();
      }
    } finally {
      cleanup();
    }
  });

  test("refuses a mismatched key, a non-CA certificate, a chain that stops short of a root, and a world-readable key", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const state = join(dir, "state");
      const open = (pluginCa: { certFile: string; keyFile: string; chainFile?: string }) =>
        CertificateAuthority.open({ stateDir: state, trustDomain: TD, pluginCa, workers: 0 });
      const root = makeRoot("corp.example");
      const mid = makeIntermediate(root, "issuing");

      const f1 = writePluginFiles(dir, root);
      writeFileSync(f1.keyFile, generateKey().privateKeyPem);
      await rejectsWithCode(open(f1), "AMBIT_E_CA_STATE");

      const now = Date.now();
      const leaf = makeLeaf(root, [ID_A], new Date(now - 1000), new Date(now + 3_600_000));
      await rejectsWithCode(open(writePluginFiles(dir, leaf, [root.certPem])), "AMBIT_E_CA_STATE");

      await rejectsWithCode(open(writePluginFiles(dir, mid)), "AMBIT_E_CA_STATE");

      await rejectsWithCode(open(writePluginFiles(dir, mid, [makeRoot().certPem])), "AMBIT_E_CA_STATE");

      await rejectsWithCode(open(writePluginFiles(dir, mid, [root.certPem], 0o604)), "AMBIT_E_CA_STATE");
      const ok = await open(writePluginFiles(dir, mid, [root.certPem], 0o640));
      await ok.close();
    } finally {
      cleanup();
    }
  });
});
