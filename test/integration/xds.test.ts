// Delta xDS over real gRPC/TLS on loopback: three clients with node certificates against the
// server — bursts converge to exactly the final state, a bad resource is NACKed alone, and a
// server restart resends only what changed.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { adsServiceClient } from "../../src/api/protos.js";
import { DeltaXdsClient, type XdsClientCredentials } from "../../src/api/xds-client.js";
import { silentLogger } from "../../src/core/log.js";
import { createRegistry } from "../../src/core/metrics.js";
import { DeltaXdsServer } from "../../src/controlplane/xds/server.js";
import type { VersionedResource } from "../../src/controlplane/xds/state.js";
import { CertificateAuthority } from "../../src/identity/ca.js";
import { createCsr, generateKey } from "../../src/identity/pki.js";
import { until } from "../support/control-plane.js";

const T = "type.googleapis.com/google.protobuf.StringValue";

describe("Delta xDS server and client", () => {
  const dir = mkdtempSync(join(tmpdir(), "ambit-xds-"));
  let ca: CertificateAuthority;
  let server: grpc.Server;
  let xds: DeltaXdsServer;
  let port = 0;
  let serverCreds: grpc.ServerCredentials;
  const table = new Map<string, VersionedResource>();
  const clients: DeltaXdsClient[] = [];
  const set = (name: string, text: string): void => {
    table.set(name, {
      name,
      version: String(text.length) + ":" + text,
      resource: { typeUrl: T, value: Buffer.from(text) },
    });
  };
  const matches = (c: DeltaXdsClient, expect: Map<string, string>): boolean => {
    const have = c.resources(T);
    if (have.size !== expect.size) return false;
    for (const [n, text] of expect) if (have.get(n)?.resource.value.toString() !== text) return false;
    return true;
  };
  const expected = (): Map<string, string> => {
    const m = new Map<string, string>();
    for (const [n, r] of table)
      if (!r.resource.value.toString().startsWith("bad")) m.set(n, r.resource.value.toString());
    return m;
  };

  const startServer = async (): Promise<void> => {
    server = new grpc.Server();
    xds = new DeltaXdsServer({
      log: silentLogger(),
      metrics: createRegistry("test", false),
      debounceMs: 50,
      maxDelayMs: 500,
      authenticate: (call) => {
        const raw = call.getAuthContext().sslPeerCertificate?.raw;
        if (!raw) return { error: "no client certificate" };
        const cn = /CN=([^\n]+)/.exec(new X509Certificate(raw).subject)?.[1] ?? "?";
        return { id: `node/${cn}`, kind: "node", name: cn };
      },
      // Views are immutable snapshots (the server shares them between clients in sync).
      view: () => new Map([[T, new Map(table)]]),
    });
    server.addService(adsServiceClient().service, { DeltaAggregatedResources: xds.handle });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, serverCreds, (e, p) => (e ? reject(e) : resolve(p))),
    );
  };

  before(async () => {
    ca = await CertificateAuthority.open({ stateDir: dir, trustDomain: "cluster.local" });
    const srv = await ca.issueServerCertificate({ dns: ["localhost"], ips: ["127.0.0.1"] });
    const bundle = ca.trustBundle().join("");
    serverCreds = grpc.ServerCredentials.createSsl(
      Buffer.from(bundle),
      [{ private_key: Buffer.from(srv.keyPem), cert_chain: Buffer.from(srv.certChain.join("")) }],
      true,
    );
    for (let i = 0; i < 1000; i++) set(`r-${i}`, `v0-${i}`);
    await startServer();
    for (const name of ["n1", "n2", "n3"]) {
      const key = generateKey("P-256");
      const signed = await ca.signNodeCsr({
        csrPem: createCsr(key.privateKey, { uris: ["spiffe://cluster.local/ns/ambit-system/sa/ambit-node"] }),
        nodeName: name,
      });
      assert.ok(signed.ok);
      const creds: XdsClientCredentials = {
        keyPem: key.privateKeyPem,
        certChainPem: signed.ok ? signed.certChain.join("") : "",
        rootsPem: bundle,
      };
      const c = new DeltaXdsClient({
        address: `127.0.0.1:${port}`,
        credentials: () => creds,
        service: adsServiceClient(),
        typeUrls: [T],
        validate: (_t, _n, r) =>
          r.resource.value.toString().startsWith("bad") ? "value starts with bad" : undefined,
        log: silentLogger(),
        initialBackoffMs: 100,
        maxBackoffMs: 1000,
      });
      c.start();
      clients.push(c);
    }
    await until(() => clients.every((c) => matches(c, expected())));
  });

  after(async () => {
    for (const c of clients) c.close();
    xds?.close();
    server?.forceShutdown();
    await ca?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a burst of 1,000 changes converges on 3 clients with exactly the final state", async () => {
    const before_ = clients.map((c) => c.received.responses);
    for (let i = 0; i < 1000; i++) {
      set(`r-${i % 1000}`, `v1-${i}`);
      if (i % 10 === 0) table.delete(`r-${(i + 5) % 1000}`);
      xds.changed();
    }
    await until(() => clients.every((c) => matches(c, expected())));
    const responses = clients.map((c, i) => c.received.responses - (before_[i] ?? 0));
    assert.ok(
      responses.every((n) => n >= 1 && n < 50),
      `debounced into few pushes: ${responses.join(",")}`,
    );
    await until(() => xds.status().every((s) => s.inSync));
    assert.equal(xds.status().length, 3);
  });

  test("one bad resource is NACKed alone; the others apply and the client keeps serving", async () => {
    set("r-1", "v2-good");
    set("r-bad", "bad-value");
    xds.changed();
    await until(() =>
      clients.every((c) => c.resources(T).get("r-1")?.resource.value.toString() === "v2-good"),
    );
    await until(
      () => xds.resourceStatus(T, "r-bad", table.get("r-bad")?.version ?? "").rejected.length === 3,
    );
    for (const c of clients) assert.equal(c.resources(T).has("r-bad"), false);
    assert.equal(xds.resourceStatus(T, "r-1", table.get("r-1")?.version ?? "").acked.length, 3);
    assert.match(
      xds.resourceStatus(T, "r-bad", table.get("r-bad")?.version ?? "").rejected[0]?.reason ?? "",
      /^value starts with bad$/,
    );
    table.delete("r-bad");
    xds.changed();
  });

  test("a server restart mid-stream: clients reconnect, announce their versions and receive only the changes", async () => {
    await until(() => clients.every((c) => matches(c, expected())));
    xds.close();
    server.forceShutdown();
    for (let i = 0; i < 5; i++) set(`r-${100 + i}`, `v3-${i}`);
    const before_ = clients.map((c) => c.received.resources);
    await startServer();
    await until(() => clients.every((c) => matches(c, expected())));
    const resent = clients.map((c, i) => c.received.resources - (before_[i] ?? 0));
    assert.deepEqual(resent, [5, 5, 5], "only the 5 changed resources were resent");
    await until(() => xds.status().length === 3 && xds.status().every((s) => s.inSync));
  });
});
