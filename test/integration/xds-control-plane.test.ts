// The control plane's config push end to end: a node joins, subscribes over Delta xDS with its node
// certificate, and receives Istio's Address/Authorization types and Ambit's revocations as config
// is applied; proxy-status reports it in sync; a control-plane restart loses nothing.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { adsServiceClient } from "../../src/api/protos.js";
import { DeltaXdsClient } from "../../src/api/xds-client.js";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  decodeAny,
  REVOCATION_LIST_TYPE_URL,
  type Authorization,
  type RevocationListMessage,
} from "../../src/api/xds-types.js";
import { silentLogger } from "../../src/core/log.js";
import type { NodeCredentials } from "../../src/identity/ca-client.js";
import {
  joinNodeWithCli,
  startControlPlaneProcess,
  until,
  type ControlPlaneProcess,
} from "../support/control-plane.js";
import { runAmbit } from "../support/repo.js";

const TYPES = [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, REVOCATION_LIST_TYPE_URL];

const BASE = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Pod
metadata: { name: payments-1, namespace: shop, labels: { app: payments } }
spec: { nodeName: n1, serviceAccountName: payments }
---
apiVersion: v1
kind: Service
metadata: { name: payments, namespace: shop }
spec: { selector: { app: payments }, ports: [{ name: http, port: 8080 }], clusterIP: 10.96.0.10 }
`;
const POLICY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-orders, namespace: shop }
spec:
  selector: { matchLabels: { app: payments } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]
`;

describe("config push to a joined node over Delta xDS", () => {
  const state = mkdtempSync(join(tmpdir(), "ambit-xcp-"));
  const work = mkdtempSync(join(tmpdir(), "ambit-xcp-work-"));
  let cp: ControlPlaneProcess;
  let creds: NodeCredentials;
  let client: DeltaXdsClient;
  const admin = (): string[] => ["--control-plane", cp.adminUrl, "--state-dir", state];

  before(async () => {
    mkdirSync(join(state, "config"), { recursive: true });
    writeFileSync(join(state, "config", "base.yaml"), BASE);
    cp = await startControlPlaneProcess(state);
    creds = await joinNodeWithCli(cp, "n1", join(work, "n1"));
    client = new DeltaXdsClient({
      address: `127.0.0.1:${cp.grpcPort}`,
      credentials: () => creds,
      service: adsServiceClient(),
      typeUrls: TYPES,
      validate: (typeUrl, _name, r) => {
        try {
          decodeAny(r.resource);
          return r.resource.typeUrl === typeUrl ? undefined : `type ${r.resource.typeUrl} under ${typeUrl}`;
        } catch (err) {
          return (err as Error).message;
        }
      },
      log: silentLogger(),
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
    });
    client.start();
  });

  after(async () => {
    client?.close();
    await cp?.stop();
    rmSync(state, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  test("the node receives its workload and service as istio.workload.Address", async () => {
    await until(() => client.resources(ADDRESS_TYPE_URL).size >= 2);
    const names = [...client.resources(ADDRESS_TYPE_URL).keys()];
    assert.ok(
      names.some((n) => n.endsWith("/Pod/shop/payments-1")),
      names.join(","),
    );
    assert.ok(names.includes("shop/payments.shop.svc.cluster.local"), names.join(","));
  });

  test("an applied AuthorizationPolicy arrives as istio.security.Authorization; proxy-status says SYNCED", async () => {
    const file = join(work, "policy.yaml");
    writeFileSync(file, POLICY);
    const applied = await runAmbit(["apply", "-f", file, ...admin()]);
    assert.equal(applied.code, 0, applied.stderr);
    await until(() => client.resources(AUTHORIZATION_TYPE_URL).has("shop/allow-orders"));
    const r = client.resources(AUTHORIZATION_TYPE_URL).get("shop/allow-orders");
    const authz = decodeAny<Authorization>(r?.resource ?? { value: new Uint8Array() });
    assert.equal(authz.name, "allow-orders");
    assert.equal(authz.namespace, "shop");
    assert.equal(authz.scope, "WORKLOAD_SELECTOR");
    assert.equal(authz.action, "ALLOW");
    // The node ACKs asynchronously: poll proxy-status until it reports the node in sync.
    let ps = await runAmbit(["proxy-status", ...admin()]);
    for (let i = 0; i < 50 && !/node\/n1\s.*SYNCED/.test(ps.stdout); i++) {
      await new Promise((r) => setTimeout(r, 100));
      ps = await runAmbit(["proxy-status", ...admin()]);
    }
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, /node\/n1\s.*SYNCED/);
    // The resource's status names the clients that acknowledged its current pushed form.
    const token = readFileSync(join(state, "admin-token"), "utf8").trim();
    const got = (await (
      await fetch(`${cp.adminUrl}/v1/resources?kind=ap&namespace=shop&name=allow-orders`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { resources: { status: { phase: string; acks: string[] } }[] };
    assert.equal(got.resources[0]?.status.phase, "accepted");
    assert.deepEqual(got.resources[0]?.status.acks, ["node/n1"]);
  });

  test("a revocation reaches the node in the pushed RevocationList", async () => {
    const rv = await runAmbit([
      "revoke",
      "--identity",
      "spiffe://cluster.local/ns/shop/sa/orders",
      "--reason",
      "drill",
      ...admin(),
    ]);
    assert.equal(rv.code, 0, rv.stderr);
    await until(() => {
      const r = client.resources(REVOCATION_LIST_TYPE_URL).get("revocations");
      if (!r) return false;
      const list = decodeAny<RevocationListMessage>(r.resource);
      return (list.revocations ?? []).some((x) => x.identity === "spiffe://cluster.local/ns/shop/sa/orders");
    });
  });

  test("deleting the policy removes it; a control-plane restart ends in sync with nothing lost", async () => {
    const del = await runAmbit(["delete", "authorizationpolicy", "allow-orders", "-n", "shop", ...admin()]);
    assert.equal(del.code, 0, del.stderr);
    await until(() => !client.resources(AUTHORIZATION_TYPE_URL).has("shop/allow-orders"));
    const before_ = client.received.resources;
    const addresses = client.resources(ADDRESS_TYPE_URL).size;
    await cp.stop();
    cp = await startControlPlaneProcess(state);
    client.close();
    // The same client state reconnecting to the new address (the port changed with the restart).
    const again = new DeltaXdsClient({
      address: `127.0.0.1:${cp.grpcPort}`,
      credentials: () => creds,
      service: adsServiceClient(),
      typeUrls: TYPES,
      validate: () => undefined,
      log: silentLogger(),
      initialBackoffMs: 100,
    });
    again.start();
    try {
      await until(
        () =>
          again.resources(ADDRESS_TYPE_URL).size === addresses &&
          again.resources(REVOCATION_LIST_TYPE_URL).size === 1,
      );
      assert.equal(again.resources(AUTHORIZATION_TYPE_URL).has("shop/allow-orders"), false);
      assert.ok(before_ > 0);
    } finally {
      again.close();
    }
  });
});
