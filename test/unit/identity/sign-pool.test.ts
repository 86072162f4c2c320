// The signing pool on its own: inline and worker signing agree, issuers are added and dropped, and a
// worker that dies fails only its in-flight jobs and is replaced.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import type { Worker } from "node:worker_threads";
import { test } from "node:test";
import { SignPool } from "../../../src/identity/sign-pool.js";
import { csrFor, ID_A, makeRoot, T0, TD } from "./support.js";

const POLICY = { trustDomain: TD, maxTtlSeconds: 86_400, defaultTtlSeconds: 86_400 };

test("inline and worker pools sign the same way; unknown issuers are errors", async () => {
  const root = makeRoot();
  for (const workers of [0, 2]) {
    const pool = new SignPool({ workers, maxPending: 100, policy: POLICY });
    try {
      pool.addIssuer(7, root.certPem, root.key.privateKeyPem);
      const out = await pool.run(7, { csrPem: csrFor([ID_A]), identity: ID_A, nowMs: T0 });
      assert.ok(out.ok, out.ok ? "" : out.reason);
      if (out.ok) {
        assert.ok(new X509Certificate(out.certPem).verify(new X509Certificate(root.certPem).publicKey));
        assert.equal(out.notAfterMs, T0 + 86_400_000);
      }
      pool.dropIssuer(7);
      assert.equal(pool.hasIssuer(7), false);
      await assert.rejects(pool.run(7, { csrPem: csrFor([ID_A]), identity: ID_A, nowMs: T0 }));
      assert.equal(pool.pendingCount, 0);
    } finally {
      await pool.close();
    }
  }
});

test("a worker that dies fails its in-flight jobs and is replaced with the issuers loaded", async () => {
  const root = makeRoot();
  const pool = new SignPool({ workers: 1, maxPending: 100, policy: POLICY });
  try {
    pool.addIssuer(1, root.certPem, root.key.privateKeyPem);
    const job = { csrPem: csrFor([ID_A]), identity: ID_A, nowMs: T0 };
    assert.ok((await pool.run(1, job)).ok);
    const inflight = pool.run(1, job);
    const slots = (pool as unknown as { slots: { worker: Worker }[] }).slots;
    await slots[0]?.worker.terminate();
    await assert.rejects(inflight, /signing worker exited/);
    assert.equal(pool.pendingCount, 0);
    const again = await pool.run(1, job);
    assert.ok(again.ok, again.ok ? "" : again.reason);
  } finally {
    await pool.close();
  }
});
