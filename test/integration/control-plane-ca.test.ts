// The CA end to end through real processes: a control plane on loopback, nodes joining with
// tokens, workload certificates under the node-impersonation rule, refusals, root rotation,
// revocation — checked with openssl and a python3-grpcio client as well as grpc-js.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { caServiceClient, callUnary, nodeServiceClient, stringStruct } from "../../src/api/protos.js";
import { createCsr, generateKey } from "../../src/identity/pki.js";
import { startControlPlaneProcess, type ControlPlaneProcess } from "../support/control-plane.js";
import { repoRoot, runAmbit } from "../support/repo.js";

const PODS = `
apiVersion: v1
kind: Pod
metadata: { name: payments-1, namespace: shop }
spec: { nodeName: n1, serviceAccountName: payments, containers: [{ name: app, image: shop/payments }] }
---
apiVersion: v1
kind: Pod
metadata: { name: orders-1, namespace: shop }
spec: { nodeName: n2, serviceAccountName: orders, containers: [{ name: app, image: shop/orders }] }
`;

const TD = "cluster.local";
const PAYMENTS = `spiffe://${TD}/ns/shop/sa/payments`;
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;

interface NodeCreds {
  dir: string;
  key: string;
  chain: string;
  roots: string;
}

function csrFor(uris: string[]): string {
  const key = generateKey("P-256");
  return createCsr(key.privateKey, { uris });
}

function opensslVerify(bundleFile: string, chain: string[], dir: string): { ok: boolean; out: string } {
  const leaf = join(dir, `leaf-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(leaf, chain[0] ?? "");
  const args = ["verify", "-CAfile", bundleFile];
  const intermediates = chain.slice(1, -1);
  if (intermediates.length > 0) {
    const f = `${leaf}.int`;
    writeFileSync(f, intermediates.join(""));
    args.push("-untrusted", f);
  }
  const r = spawnSync("openssl", [...args, leaf], { encoding: "utf8" });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

describe("control plane CA (real processes)", () => {
  const state = mkdtempSync(join(tmpdir(), "ambit-cp-"));
  const work = mkdtempSync(join(tmpdir(), "ambit-cp-work-"));
  let cp: ControlPlaneProcess;
  let n1: NodeCreds;
  const admin = (): string[] => ["--control-plane", cp.adminUrl, "--state-dir", state];

  const createToken = async (node: string, ttl = "1h"): Promise<string> => {
    const r = await runAmbit(["join-token", "create", "--node", node, "--ttl", ttl, ...admin()]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const join_ = (token: string, out: string) =>
    runAmbit(["node", "join", "--control-plane", `127.0.0.1:${cp.grpcPort}`, "--token", token, "--out", out]);

  const caClient = (creds: NodeCreds | undefined): grpc.Client => {
    const Client = caServiceClient();
    const roots = readFileSync(n1.roots);
    const channel = creds
      ? grpc.credentials.createSsl(roots, readFileSync(creds.key), readFileSync(creds.chain))
      : grpc.credentials.createSsl(roots);
    return new Client(`127.0.0.1:${cp.grpcPort}`, channel);
  };
  const requestCert = async (
    creds: NodeCreds | undefined,
    csr: string,
    identity?: string,
    validityDuration = 3600,
  ) => {
    const client = caClient(creds);
    try {
      const res = await callUnary<{ certChain: string[] }>(client, "CreateCertificate", {
        csr,
        validityDuration,
        metadata: identity ? stringStruct({ ImpersonatedIdentity: identity }) : undefined,
      });
      return { ok: true as const, certChain: res.certChain };
    } catch (err) {
      const e = err as grpc.ServiceError;
      return {
        ok: false as const,
        status: e.code,
        code: e.metadata.get("ambit-error-code")[0],
        details: e.details,
      };
    } finally {
      client.close();
    }
  };

  before(async () => {
    mkdirSync(join(state, "config"), { recursive: true });
    writeFileSync(join(state, "config", "pods.yaml"), PODS);
    cp = await startControlPlaneProcess(state, ["--root-grace", "2s"]);
    const dir = join(work, "n1");
    const r = await join_(await createToken("n1"), dir);
    assert.equal(r.code, 0, r.stderr + cp.logs());
    n1 = {
      dir,
      key: join(dir, "key.pem"),
      chain: join(dir, "cert-chain.pem"),
      roots: join(dir, "root-cert.pem"),
    };
  });

  after(async () => {
    await cp?.stop();
    rmSync(state, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  test("state directory: CA key and admin token are 0600", () => {
    const keys = execFileSync("find", [state, "-name", "*key*", "-type", "f"], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean);
    assert.ok(keys.length >= 1, "CA key file present");
    for (const k of [...keys, join(state, "admin-token")]) assert.equal(statSync(k).mode & 0o777, 0o600, k);
  });

  test("node join writes a 0600 key, a node certificate naming the node, and the bundle", () => {
    assert.equal(statSync(n1.key).mode & 0o777, 0o600);
    const cert = new X509Certificate(readFileSync(n1.chain));
    assert.match(
      cert.subjectAltName ?? "",
      /URI:spiffe:\/\/cluster\.local\/ns\/ambit-system\/sa\/ambit-node/,
    );
    assert.match(cert.subject, /CN=n1/);
    assert.ok(readFileSync(n1.roots, "utf8").includes("BEGIN CERTIFICATE"));
  });

  test("the admin API refuses anonymous calls", async () => {
    const res = await fetch(`${cp.adminUrl}/v1/ca/bundle`);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { code: string }).code, "AMBIT_E_UNAUTHENTICATED");
    const wrong = await fetch(`${cp.adminUrl}/v1/ca/bundle`, { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
  });

  test("a python3-grpcio client with the node certificate gets a workload certificate that openssl verifies", async () => {
    const stubs = join(work, "pystubs");
    mkdirSync(stubs, { recursive: true });
    execFileSync("/usr/bin/python3", [
      "-m",
      "grpc_tools.protoc",
      "-I",
      join(repoRoot(), "proto"),
      `--python_out=${stubs}`,
      `--grpc_python_out=${stubs}`,
      join(repoRoot(), "proto", "istio", "security", "ca.proto"),
    ]);
    const csrFile = join(work, "payments.csr");
    writeFileSync(csrFile, csrFor([PAYMENTS]));
    const py = spawnSync(
      "/usr/bin/python3",
      [
        join(repoRoot(), "test", "support", "ca_client.py"),
        stubs,
        `127.0.0.1:${cp.grpcPort}`,
        n1.roots,
        n1.key,
        n1.chain,
        csrFile,
        PAYMENTS,
        "3600",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    assert.equal(py.status, 0, py.stderr);
    const out = JSON.parse(py.stdout) as { ok: boolean; certChain: string[]; details?: string };
    assert.ok(out.ok, py.stdout);
    const bundleOut = await runAmbit(["ca", "bundle", ...admin()]);
    assert.equal(bundleOut.code, 0, bundleOut.stderr);
    const bundleFile = join(work, "bundle.pem");
    writeFileSync(bundleFile, bundleOut.stdout);
    const v = opensslVerify(bundleFile, out.certChain, work);
    assert.ok(v.ok, v.out);
    const leaf = join(work, "payments-leaf.pem");
    writeFileSync(leaf, out.certChain[0] ?? "");
    const text = execFileSync("openssl", ["x509", "-in", leaf, "-noout", "-text"], { encoding: "utf8" });
    assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/payments/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
    const cert = new X509Certificate(out.certChain[0] ?? "");
    const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    assert.ok(lifetime <= 3600_000 + 120_000 && lifetime >= 3600_000, `validity ${lifetime} ms`);
  });

  test("a python3-grpcio client without a client certificate is refused", () => {
    const stubs = join(work, "pystubs");
    const csrFile = join(work, "payments.csr");
    const py = spawnSync(
      "/usr/bin/python3",
      [
        join(repoRoot(), "test", "support", "ca_client.py"),
        stubs,
        `127.0.0.1:${cp.grpcPort}`,
        n1.roots,
        "-",
        "-",
        csrFile,
        PAYMENTS,
        "3600",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    const out = JSON.parse(py.stdout) as { ok: boolean; status: string; code: string };
    assert.equal(out.ok, false);
    assert.equal(out.status, "UNAUTHENTICATED");
    assert.equal(out.code, "AMBIT_E_UNAUTHENTICATED");
  });

  describe("refusals", () => {
    const cases: [
      string,
      () => Promise<{ csr: string; identity?: string; validity?: number; creds?: "none" }>,
      grpc.status,
      string,
    ][] = [
      [
        "identity of a workload on another node",
        async () => ({ csr: csrFor([ORDERS]), identity: ORDERS }),
        grpc.status.PERMISSION_DENIED,
        "AMBIT_E_NODE_NOT_AUTHORIZED",
      ],
      [
        "no such workload",
        async () => ({
          csr: csrFor([`spiffe://${TD}/ns/shop/sa/ghost`]),
          identity: `spiffe://${TD}/ns/shop/sa/ghost`,
        }),
        grpc.status.PERMISSION_DENIED,
        "AMBIT_E_NODE_NOT_AUTHORIZED",
      ],
      [
        "wrong trust domain",
        async () => ({
          csr: csrFor(["spiffe://evil.org/ns/shop/sa/payments"]),
          identity: "spiffe://evil.org/ns/shop/sa/payments",
        }),
        grpc.status.INVALID_ARGUMENT,
        "AMBIT_E_TRUST_DOMAIN",
      ],
      [
        "two URI SANs",
        async () => ({ csr: csrFor([PAYMENTS, ORDERS]), identity: PAYMENTS }),
        grpc.status.INVALID_ARGUMENT,
        "AMBIT_E_CSR_SAN",
      ],
      [
        "CSR for another identity than requested",
        async () => ({ csr: csrFor([ORDERS]), identity: PAYMENTS }),
        grpc.status.PERMISSION_DENIED,
        "AMBIT_E_IDENTITY_MISMATCH",
      ],
      [
        "validity above the maximum",
        async () => ({ csr: csrFor([PAYMENTS]), identity: PAYMENTS, validity: 48 * 3600 }),
        grpc.status.INVALID_ARGUMENT,
        "AMBIT_E_TTL_TOO_LONG",
      ],
      [
        "garbage instead of a CSR",
        async () => ({
          csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
          identity: PAYMENTS,
        }),
        grpc.status.INVALID_ARGUMENT,
        "AMBIT_E_CSR_INVALID",
      ],
      [
        "bad CSR signature",
        async () => {
          const pem = csrFor([PAYMENTS]);
          const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
          der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff; // inside the signature
          const b64 = der.toString("base64").replace(/.{64}/g, "$&\n");
          return {
            csr: `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`,
            identity: PAYMENTS,
          };
        },
        grpc.status.INVALID_ARGUMENT,
        "AMBIT_E_CSR_SIGNATURE",
      ],
      [
        "no client certificate",
        async () => ({ csr: csrFor([PAYMENTS]), identity: PAYMENTS, creds: "none" }),
        grpc.status.UNAUTHENTICATED,
        "AMBIT_E_UNAUTHENTICATED",
      ],
    ];
    for (const [name, make, status, code] of cases) {
      test(name, async () => {
        const c = await make();
        const r = await requestCert(
          c.creds === "none" ? undefined : n1,
          c.csr,
          c.identity,
          c.validity ?? 3600,
        );
        assert.equal(r.ok, false, `expected a refusal for: ${name}`);
        if (!r.ok) {
          assert.equal(r.code, code, r.details);
          assert.equal(r.status, status, r.details);
        }
      });
    }

    test("a reused join token", async () => {
      const token = await createToken("n3");
      assert.equal((await join_(token, join(work, "n3a"))).code, 0);
      const again = await join_(token, join(work, "n3b"));
      assert.equal(again.code, 1);
      assert.match(again.stderr, /AMBIT_E_JOIN_TOKEN/);
      assert.match(again.stderr, /already used/);
    });

    test("an expired join token", async () => {
      const token = await createToken("n4", "1s");
      await new Promise((r) => setTimeout(r, 1500));
      const r = await join_(token, join(work, "n4"));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /AMBIT_E_JOIN_TOKEN/);
      assert.match(r.stderr, /expired/);
    });

    test("refusals are counted in a metric", async () => {
      const token = readFileSync(join(state, "admin-token"), "utf8").trim();
      const text = await (
        await fetch(`${cp.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text();
      assert.match(text, /ambit_ca_requests_total\{[^}]*result="AMBIT_E_NODE_NOT_AUTHORIZED"[^}]*\} [1-9]/);
    });
  });

  test("a node renews its own certificate with its current one", async () => {
    const r = await requestCert(n1, csrFor([`spiffe://${TD}/ns/ambit-system/sa/ambit-node`]));
    assert.ok(r.ok);
    if (r.ok) assert.match(new X509Certificate(r.certChain[0] ?? "").subject, /CN=n1/);
  });

  test("revoking the identity refuses further certificates for it", async () => {
    const before_ = await requestCert(n1, csrFor([PAYMENTS]), PAYMENTS);
    assert.ok(before_.ok);
    const rv = await runAmbit([
      "revoke",
      "--identity",
      PAYMENTS,
      "--reason",
      "key compromise drill",
      ...admin(),
    ]);
    assert.equal(rv.code, 0, rv.stderr);
    const after_ = await requestCert(n1, csrFor([PAYMENTS]), PAYMENTS);
    assert.equal(after_.ok, false);
    if (!after_.ok) assert.equal(after_.code, "AMBIT_E_REVOKED");
    const token = readFileSync(join(state, "admin-token"), "utf8").trim();
    const list = (await (
      await fetch(`${cp.adminUrl}/v1/revocations`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { revocations: { identity?: string }[] };
    assert.ok(list.revocations.some((r) => r.identity === PAYMENTS));
  });

  test("root rotation: old and new roots both verify during the grace period; removal ends trust in the old one", async () => {
    const nodeSa = `spiffe://${TD}/ns/ambit-system/sa/ambit-node`;
    const oldCert = await requestCert(n1, csrFor([nodeSa]));
    assert.ok(oldCert.ok);
    const rot = await runAmbit(["ca", "rotate-root", ...admin()]);
    assert.equal(rot.code, 0, rot.stderr);
    const bundle = await runAmbit(["ca", "bundle", ...admin()]);
    assert.equal((bundle.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, "both roots in the bundle");
    // Nodes see the new bundle without restart.
    const Client = nodeServiceClient();
    const client = new Client(
      `127.0.0.1:${cp.grpcPort}`,
      grpc.credentials.createSsl(readFileSync(n1.roots), readFileSync(n1.key), readFileSync(n1.chain)),
    );
    const tb = await callUnary<{ roots: string[] }>(client, "GetTrustBundle", {});
    client.close();
    assert.equal(tb.roots.length, 2);
    // Before the grace period ends the old root still signs; after it, the new one does.
    await new Promise((r) => setTimeout(r, 2500));
    const newCert = await requestCert(n1, csrFor([nodeSa]));
    assert.ok(newCert.ok, JSON.stringify(newCert));
    const bundleFile = join(work, "bundle-2.pem");
    writeFileSync(bundleFile, bundle.stdout);
    if (!oldCert.ok || !newCert.ok) return;
    const oldRoot = oldCert.certChain[oldCert.certChain.length - 1] ?? "";
    const newRoot = newCert.certChain[newCert.certChain.length - 1] ?? "";
    assert.notEqual(
      new X509Certificate(oldRoot).fingerprint256,
      new X509Certificate(newRoot).fingerprint256,
      "the signer switched",
    );
    assert.ok(opensslVerify(bundleFile, oldCert.certChain, work).ok, "old-root certificate verifies");
    assert.ok(opensslVerify(bundleFile, newCert.certChain, work).ok, "new-root certificate verifies");
    const fp = new X509Certificate(oldRoot).fingerprint256;
    const rm = await runAmbit(["ca", "remove-root", fp, ...admin()]);
    assert.equal(rm.code, 0, rm.stderr);
    const after1 = await runAmbit(["ca", "bundle", ...admin()]);
    writeFileSync(bundleFile, after1.stdout);
    assert.equal((after1.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 1);
    assert.equal(
      opensslVerify(bundleFile, oldCert.certChain, work).ok,
      false,
      "old-root certificate no longer verifies",
    );
  });

  test("restarting reuses the same CA", async () => {
    const before1 = await runAmbit(["ca", "bundle", ...admin()]);
    await cp.stop();
    cp = await startControlPlaneProcess(state, ["--root-grace", "2s"]);
    const after1 = await runAmbit(["ca", "bundle", ...admin()]);
    assert.equal(after1.stdout, before1.stdout);
  });
});
