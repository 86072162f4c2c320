// The CA's certificates as standard tools see them: openssl verifies and prints issued chains and the
// server certificate, and two CA-issued workload certificates complete a TLS 1.3 handshake.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { after, before, describe, test } from "node:test";
import { CertificateAuthority } from "../../src/identity/ca.js";
import { certificateInfo, createCsr, generateKey } from "../../src/identity/pki.js";
import { parseSpiffeId } from "../../src/model/spiffe.js";
import {
  ID_A,
  ID_B,
  makeIntermediate,
  makeRoot,
  TD,
  tempDir,
  writePluginFiles,
} from "../unit/identity/support.js";

function openssl(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

let fileSeq = 0;
function write(dir: string, name: string, text: string): string {
  const f = join(dir, `${++fileSeq}-${name}`);
  writeFileSync(f, text);
  return f;
}

/** openssl verify of a chain (leaf, intermediates…, root) against a bundle file. */
function verifyChain(
  dir: string,
  bundle: string[],
  chain: string[],
  purpose?: string,
): { ok: boolean; out: string } {
  const args = ["verify", "-CAfile", write(dir, "bundle.pem", bundle.join(""))];
  const intermediates = chain.slice(1, -1);
  if (intermediates.length > 0)
    args.push("-untrusted", write(dir, "intermediates.pem", intermediates.join("")));
  if (purpose) args.push("-purpose", purpose);
  args.push(write(dir, "leaf.pem", chain[0] ?? ""));
  return openssl(args);
}

describe("CA certificates with openssl and node tls", () => {
  const tmp = tempDir("ambit-openssl-");
  let ca: CertificateAuthority;
  let plugin: CertificateAuthority;

  before(async () => {
    ca = await CertificateAuthority.open({ stateDir: join(tmp.dir, "state"), trustDomain: TD, workers: 1 });
    const root = makeRoot("corp.example");
    const mid = makeIntermediate(root, "Ambit issuing CA");
    plugin = await CertificateAuthority.open({
      stateDir: join(tmp.dir, "state-plugin"),
      trustDomain: TD,
      workers: 0,
      pluginCa: writePluginFiles(tmp.dir, mid, [root.certPem]),
    });
  });
  after(async () => {
    await ca.close();
    await plugin.close();
    tmp.cleanup();
  });

  const workload = async (authority: CertificateAuthority, identity: string, validitySeconds = 3600) => {
    const key = generateKey("P-256");
    const r = await authority.signWorkloadCsr({
      csrPem: createCsr(key.privateKey, { uris: [identity] }),
      identity,
      validitySeconds,
    });
    assert.ok(r.ok, r.ok ? "" : r.reason);
    if (!r.ok) throw new Error("unreachable");
    return { chain: r.certChain, keyPem: key.privateKeyPem, notAfter: r.notAfter };
  };

  test("openssl accepts the CA's CSRs", () => {
    const csr = write(tmp.dir, "req.csr", createCsr(generateKey().privateKey, { uris: [ID_A] }));
    const r = openssl(["req", "-in", csr, "-noout", "-verify", "-text"]);
    assert.ok(r.ok, r.out);
    assert.match(r.out, /verify OK/i);
    assert.match(r.out, new RegExp(`URI:${ID_A.replace(/\//g, "\\/")}`));
  });

  test("openssl verify accepts a workload chain from the self-managed root, for client and server use", async () => {
    const { chain } = await workload(ca, ID_A);
    for (const purpose of [undefined, "sslclient", "sslserver"]) {
      const v = verifyChain(tmp.dir, ca.trustBundle(), chain, purpose);
      assert.ok(v.ok, `${purpose ?? "default"}: ${v.out}`);
    }
    const other = makeRoot();
    assert.equal(verifyChain(tmp.dir, [other.certPem], chain).ok, false, "not against another root");
  });

  test("openssl verify accepts a chain through a plug-in intermediate (-untrusted)", async () => {
    const { chain } = await workload(plugin, ID_A);
    assert.equal(chain.length, 3);
    const v = verifyChain(tmp.dir, plugin.trustBundle(), chain, "sslclient");
    assert.ok(v.ok, v.out);
    assert.equal(
      verifyChain(tmp.dir, plugin.trustBundle(), [chain[0] ?? "", chain[2] ?? ""]).ok,
      false,
      "the intermediate is needed",
    );
  });

  test("openssl x509 -text shows the SPIFFE URI SAN, both EKUs, CA:FALSE, key usage and the validity", async () => {
    const { chain, notAfter } = await workload(ca, ID_A, 7200);
    const text = openssl(["x509", "-in", write(tmp.dir, "leaf.pem", chain[0] ?? ""), "-noout", "-text"]);
    assert.ok(text.ok, text.out);
    assert.match(
      text.out,
      /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/payments\n/,
    );
    assert.match(text.out, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text.out, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text.out, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text.out, /X509v3 Authority Key Identifier:/);
    assert.match(text.out, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text.out, /Subject: *\n/);
    const m = /Not Before: (.+)\n\s+Not After : (.+)\n/.exec(text.out);
    assert.ok(m, text.out);
    const nb = Date.parse(m[1] ?? "");
    const na = Date.parse(m[2] ?? "");
    assert.equal(na, notAfter.getTime());
    assert.equal(na - nb, 7200_000 + 60_000, "requested validity plus the 60 s backdating");
    const rootText = openssl([
      "x509",
      "-in",
      write(tmp.dir, "root.pem", ca.trustBundle()[0] ?? ""),
      "-noout",
      "-text",
    ]);
    assert.match(rootText.out, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
    assert.match(rootText.out, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(rootText.out, /X509v3 Subject Key Identifier:/);
    assert.match(rootText.out, /Subject: O = cluster\.local, CN = Ambit root [0-9a-f]{16}/);
  });

  test("the control plane's server certificate: DNS/IP SANs, server auth, verified by openssl", async () => {
    const { certChain, keyPem } = await ca.issueServerCertificate({
      dns: ["localhost", "ambit-cp.example"],
      ips: ["127.0.0.1", "::1"],
    });
    const v = verifyChain(tmp.dir, ca.trustBundle(), certChain, "sslserver");
    assert.ok(v.ok, v.out);
    const leafFile = write(tmp.dir, "server.pem", certChain[0] ?? "");
    const text = openssl(["x509", "-in", leafFile, "-noout", "-text"]);
    assert.match(
      text.out,
      /DNS:localhost, DNS:ambit-cp\.example, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/,
    );
    assert.match(text.out, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    const hostCheck = openssl([
      "verify",
      "-CAfile",
      write(tmp.dir, "b.pem", ca.trustBundle().join("")),
      "-verify_hostname",
      "ambit-cp.example",
      leafFile,
    ]);
    assert.ok(hostCheck.ok, hostCheck.out);
    const ipCheck = openssl([
      "verify",
      "-CAfile",
      write(tmp.dir, "b.pem", ca.trustBundle().join("")),
      "-verify_ip",
      "127.0.0.1",
      leafFile,
    ]);
    assert.ok(ipCheck.ok, ipCheck.out);
    const keyFile = write(tmp.dir, "server.key", keyPem);
    const modCert = openssl(["x509", "-in", leafFile, "-noout", "-pubkey"]);
    const modKey = openssl(["pkey", "-in", keyFile, "-pubout"]);
    assert.equal(modCert.out, modKey.out, "the key matches the certificate");

    // A standard TLS client verifies the server certificate against the bundle, by host name.
    const server = createServer(
      { key: keyPem, cert: certChain.slice(0, -1).join(""), minVersion: "TLSv1.3" },
      (s) => s.end("hi"),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const got = await new Promise<string>((resolve, reject) => {
        const c = connect({ host: "127.0.0.1", port, servername: "localhost", ca: ca.trustBundle() }, () => {
          let data = "";
          c.on("data", (d: Buffer) => (data += d.toString()));
          c.on("end", () => resolve(data));
        });
        c.on("error", reject);
      });
      assert.equal(got, "hi");
    } finally {
      server.close();
    }
  });

  test("a TLS 1.3 handshake between two CA-issued workload certificates, each verifying the other", async () => {
    const a = await workload(ca, ID_A);
    const b = await workload(ca, ID_B);
    const peerIdOf = (s: TLSSocket): string => {
      const raw = s.getPeerX509Certificate();
      return raw ? (certificateInfo(raw).uris[0] ?? "") : "";
    };
    const clientSeen = deferred<{ id: string; authorized: boolean; protocol: string | null }>();
    const seenByServer = new Promise<{
      id: string;
      authorized: boolean;
      protocol: string | null;
      verified: boolean;
    }>((resolve) => {
      const server = createServer(
        {
          key: a.keyPem,
          cert: a.chain.slice(0, -1).join(""),
          ca: ca.trustBundle(),
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: "TLSv1.3",
        },
        (s) => {
          const peer = s.getPeerX509Certificate();
          resolve({
            id: peerIdOf(s),
            authorized: s.authorized,
            protocol: s.getProtocol(),
            verified: peer ? ca.verifyPeerChain([peer.toString()]).ok : false,
          });
          s.end("ok");
          server.close();
        },
      );
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port;
        const client = connect({
          host: "127.0.0.1",
          port,
          key: b.keyPem,
          cert: b.chain.slice(0, -1).join(""),
          ca: ca.trustBundle(),
          minVersion: "TLSv1.3",
          // Workload certificates name a SPIFFE ID, not a host: check that instead.
          checkServerIdentity: (_host, cert) => {
            const uri = /URI:([^,\s]+)/.exec(cert.subjectaltname ?? "")?.[1];
            const id = uri ? parseSpiffeId(uri) : undefined;
            return id?.ok && uri === ID_A
              ? undefined
              : new Error(`unexpected server identity ${uri ?? "(none)"}`);
          },
        });
        client.on("secureConnect", () => {
          clientSeen.resolve({
            id: peerIdOf(client),
            authorized: client.authorized,
            protocol: client.getProtocol(),
          });
        });
        client.on("data", () => client.end());
        client.on("error", (err) => clientSeen.reject(err));
      });
    });
    const [srv, cli] = await Promise.all([seenByServer, clientSeen.promise]);
    assert.deepEqual(srv, { id: ID_B, authorized: true, protocol: "TLSv1.3", verified: true });
    assert.deepEqual(cli, { id: ID_A, authorized: true, protocol: "TLSv1.3" });
    assert.ok(
      new X509Certificate(a.chain[0] ?? "").checkIssued(new X509Certificate(ca.trustBundle()[0] ?? "")),
    );
  });
});

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
