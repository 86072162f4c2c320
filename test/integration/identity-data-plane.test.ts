// The node side of identity against a real control plane: the certificate manager fetching
// workload certificates through CreateCertificate with the node's joined credentials, and a TLS
// listener that refuses revoked peers and closes their open connections once a revocation arrives.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { after, before, describe, test } from "node:test";
import { AmbitError } from "../../src/core/errors.js";
import { CaClient, type NodeCredentials } from "../../src/identity/ca-client.js";
import { CertificateManager } from "../../src/identity/cert-manager.js";
import type { IssuedCertificate } from "../../src/identity/cert-types.js";
import { checkTlsPeer, LivePeers } from "../../src/identity/peer-check.js";
import { silentLogger } from "../../src/core/log.js";
import { NodeCredentialsKeeper } from "../../src/node/credentials.js";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { RevocationList, type Revocation } from "../../src/model/revocation.js";
import {
  joinNodeWithCli,
  startControlPlaneProcess,
  type ControlPlaneProcess,
} from "../support/control-plane.js";
import { runAmbit } from "../support/repo.js";

const PODS = `
apiVersion: v1
kind: Pod
metadata: { name: payments-1, namespace: shop }
spec: { nodeName: n1, serviceAccountName: payments }
---
apiVersion: v1
kind: Pod
metadata: { name: checkout-1, namespace: shop }
spec: { nodeName: n1, serviceAccountName: checkout }
---
apiVersion: v1
kind: Pod
metadata: { name: orders-1, namespace: shop }
spec: { nodeName: n2, serviceAccountName: orders }
`;
const id = (sa: string) => ({ trustDomain: "cluster.local", namespace: "shop", serviceAccount: sa });

describe("node identity against a real control plane", () => {
  const state = mkdtempSync(join(tmpdir(), "ambit-dp-"));
  const work = mkdtempSync(join(tmpdir(), "ambit-dp-work-"));
  let cp: ControlPlaneProcess;
  let creds: NodeCredentials;
  let manager: CertificateManager;
  let ca: CaClient;

  before(async () => {
    mkdirSync(join(state, "config"), { recursive: true });
    writeFileSync(join(state, "config", "pods.yaml"), PODS);
    cp = await startControlPlaneProcess(state);
    creds = await joinNodeWithCli(cp, "n1", join(work, "n1"));
    ca = new CaClient({
      address: `127.0.0.1:${cp.grpcPort}`,
      credentials: () => creds,
      validitySeconds: 3600,
    });
    manager = new CertificateManager({ fetcher: ca });
  });

  after(async () => {
    manager?.close();
    ca?.close();
    await cp?.stop();
    rmSync(state, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  test("the certificate manager gets a workload certificate for a pod on its node", async () => {
    manager.track(id("payments"));
    const cert = await manager.fetchCertificate(id("payments"));
    assert.equal(cert.certChainPem.length, 1, "leaf only; roots come from the bundle");
    assert.match(cert.certChainPem[0] ?? "", /BEGIN CERTIFICATE/);
    assert.ok(cert.notAfter.getTime() - cert.notBefore.getTime() <= 3600_000 + 120_000);
    const snap = manager.snapshot().find((s) => s.identity === "spiffe://cluster.local/ns/shop/sa/payments");
    assert.equal(snap?.state, "available");
    assert.equal(snap?.serial, cert.serial);
  });

  test("a workload on another node is refused with the CA's reason", async () => {
    await assert.rejects(manager.fetchCertificate(id("orders")), (err: unknown) => {
      assert.ok(err instanceof AmbitError);
      assert.equal(err.code, "AMBIT_E_NODE_NOT_AUTHORIZED");
      assert.match(err.message, /ns\/shop\/sa\/orders has no workload on node n1/);
      return true;
    });
  });

  test("a revoked peer is refused, and its open connection closes within a second", async () => {
    const server = await manager.fetchCertificate(id("checkout"));
    const payments = await manager.fetchCertificate(id("payments"));
    const checkoutClient = await ca.fetch(id("checkout"), new AbortController().signal);
    let list = new RevocationList();
    const live = new LivePeers<TLSSocket>();
    const refused: string[] = [];
    const tlsServer = createServer(
      {
        key: server.privateKeyPem,
        cert: server.certChainPem.join(""),
        ca: creds.rootsPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      },
      (socket) => {
        const check = checkTlsPeer(socket, "cluster.local", list);
        if (!check.ok) {
          refused.push(check.code);
          socket.destroy();
          return;
        }
        live.add(socket, check.peer);
        socket.on("close", () => live.remove(socket));
        socket.on("error", () => undefined);
        socket.on("data", (d: Buffer) => socket.write(d));
      },
    );
    await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", r));
    const port = (tlsServer.address() as { port: number }).port;
    const dial = (c: IssuedCertificate) =>
      new Promise<TLSSocket>((resolve, reject) => {
        const s = connect(
          {
            host: "127.0.0.1",
            port,
            key: c.privateKeyPem,
            cert: c.certChainPem.join(""),
            ca: creds.rootsPem,
            checkServerIdentity: () => undefined,
          },
          () => resolve(s),
        );
        s.on("error", reject);
      });
    const echo = (s: TLSSocket, msg: string) =>
      new Promise<string>((resolve, reject) => {
        s.once("data", (d: Buffer) => resolve(d.toString()));
        s.once("close", () => reject(new Error("closed")));
        s.write(msg);
      });
    try {
      const p = await dial(payments);
      const c = await dial(checkoutClient);
      assert.equal(await echo(p, "hello"), "hello");
      assert.equal(await echo(c, "hi"), "hi");
      const rv = await runAmbit([
        "revoke",
        "--identity",
        "spiffe://cluster.local/ns/shop/sa/payments",
        "--reason",
        "drill",
        "--control-plane",
        cp.adminUrl,
        "--state-dir",
        state,
      ]);
      assert.equal(rv.code, 0, rv.stderr);
      // Until the config push exists, the list comes from the admin API.
      const token = readFileSync(join(state, "admin-token"), "utf8").trim();
      const body = (await (
        await fetch(`${cp.adminUrl}/v1/revocations`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as { revocations: Revocation[] };
      const t0 = Date.now();
      const closedP = new Promise<void>((r) => p.once("close", () => r()));
      list = new RevocationList(body.revocations);
      const closed = live.enforce(list);
      await closedP;
      assert.ok(Date.now() - t0 < 1000, "closed within a second");
      assert.deepEqual(
        closed.map((x) => x.peer.identity),
        ["spiffe://cluster.local/ns/shop/sa/payments"],
      );
      assert.equal(await echo(c, "still here"), "still here", "other peers are untouched");
      const again = await dial(payments).catch(() => undefined);
      if (again) await new Promise((r) => again.once("close", r));
      assert.deepEqual(refused, ["AMBIT_E_REVOKED"]);
      c.destroy();
    } finally {
      await new Promise((r) => tlsServer.close(r));
    }
  });

  test("a node renews its own certificate and picks up a rotated trust bundle without restart", async () => {
    const dir = join(work, "n1");
    const before_ = new X509Certificate(readFileSync(join(dir, "cert-chain.pem"))).serialNumber;
    const keeper = await NodeCredentialsKeeper.start({
      dir,
      controlPlane: `127.0.0.1:${cp.grpcPort}`,
      trustDomain: "cluster.local",
      log: silentLogger(),
    });
    try {
      const deadline = Date.now() + 10_000;
      while (
        new X509Certificate(readFileSync(join(dir, "cert-chain.pem"))).serialNumber === before_ &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const renewed = new X509Certificate(readFileSync(join(dir, "cert-chain.pem")));
      assert.notEqual(renewed.serialNumber, before_, "node certificate was renewed");
      assert.match(renewed.subject, /CN=n1/);
      assert.ok(
        renewed.checkPrivateKey(createPrivateKey(readFileSync(join(dir, "key.pem")))),
        "key and certificate match",
      );
      const rot = await runAmbit(["ca", "rotate-root", "--control-plane", cp.adminUrl, "--state-dir", state]);
      assert.equal(rot.code, 0, rot.stderr);
      assert.equal(await keeper.refreshBundle(), true);
      assert.equal(
        (readFileSync(join(dir, "root-cert.pem"), "utf8").match(/BEGIN CERTIFICATE/g) ?? []).length,
        2,
      );
      // The renewed credentials still authenticate.
      const c = await keeper.caClient().fetch(id("checkout"), new AbortController().signal);
      assert.ok(c.serial.length > 0);
    } finally {
      keeper.close();
    }
  });
});
