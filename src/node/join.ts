// `ambit node join`: trade a join token for a node certificate. The node has no trust bundle yet,
// so it checks the control plane's TLS chain against the CA pin carried in the token first.
import { mkdir } from "node:fs/promises";
import { connect, type DetailedPeerCertificate } from "node:tls";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { callUnary, nodeServiceClient } from "../api/protos.js";
import { writeFileAtomic } from "../core/atomic-file.js";
import { AmbitError, asErrorCode } from "../core/errors.js";
import { parseJoinToken } from "../controlplane/join-tokens.js";
import { createCsr, generateKey } from "../identity/pki.js";
import { spkiPin } from "../identity/pin.js";
import { formatSpiffeId } from "../model/spiffe.js";

export const NODE_CREDENTIAL_FILES = {
  key: "key.pem",
  chain: "cert-chain.pem",
  roots: "root-cert.pem",
} as const;

/** Fetch the server's certificate chain without trusting it, and return the root matching `pin`. */
export async function discoverPinnedRoot(
  host: string,
  port: number,
  pin: string,
  timeoutMs = 10_000,
): Promise<string> {
  const chain = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const socket = connect(
      {
        host,
        port,
        rejectUnauthorized: false,
        ALPNProtocols: ["h2"],
        minVersion: "TLSv1.2",
        timeout: timeoutMs,
      },
      () => {
        const peer = socket.getPeerCertificate(true);
        socket.destroy();
        resolve(peer);
      },
    );
    socket.on("timeout", () => socket.destroy(new Error(`TLS handshake with ${host}:${port} timed out`)));
    socket.on("error", reject);
  });
  const certs: X509Certificate[] = [];
  const seen = new Set<string>();
  for (
    let c: DetailedPeerCertificate | undefined = chain;
    c?.raw && !seen.has(c.fingerprint256);
    c = c.issuerCertificate
  ) {
    seen.add(c.fingerprint256);
    certs.push(new X509Certificate(c.raw));
  }
  const anchorIdx = certs.findIndex((c) => spkiPin(c.raw) === pin);
  if (anchorIdx < 0) {
    throw new AmbitError(
      "AMBIT_E_UNAUTHENTICATED",
      `control plane at ${host}:${port} does not present the CA pinned in the join token`,
    );
  }
  // Every link from the leaf up to the pinned anchor must verify.
  for (let i = 0; i < anchorIdx; i++) {
    const child = certs[i];
    const parent = certs[i + 1];
    if (!child || !parent || !child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new AmbitError(
        "AMBIT_E_UNAUTHENTICATED",
        `control plane certificate chain does not verify up to the pinned CA`,
      );
    }
  }
  return (certs[anchorIdx] as X509Certificate).toString();
}

export interface JoinOptions {
  controlPlane: { host: string; port: number };
  token: string;
  outDir: string;
  trustDomain?: string;
}

export async function joinNode(opts: JoinOptions): Promise<{ nodeName: string; files: string[] }> {
  const parsed = parseJoinToken(opts.token);
  if (!parsed)
    throw new AmbitError(
      "AMBIT_E_JOIN_TOKEN",
      "malformed join token (expected the value printed by `ambit join-token create`)",
    );
  const { host, port } = opts.controlPlane;
  const root = await discoverPinnedRoot(host, port, parsed.caPin);
  const key = generateKey("P-256");
  const trustDomain = opts.trustDomain ?? trustDomainOfRoot(root) ?? "cluster.local";
  const csr = createCsr(key.privateKey, {
    uris: [formatSpiffeId({ trustDomain, namespace: "ambit-system", serviceAccount: "ambit-node" })],
  });
  const Client = nodeServiceClient();
  const client = new Client(
    `${host.includes(":") ? `[${host}]` : host}:${port}`,
    grpc.credentials.createSsl(Buffer.from(root)),
  );
  try {
    const res = await callUnary<{ nodeName: string; certChain: string[]; trustBundle: string[] }>(
      client,
      "Join",
      { token: opts.token, csr },
    );
    await mkdir(opts.outDir, { recursive: true, mode: 0o700 });
    const files = [NODE_CREDENTIAL_FILES.key, NODE_CREDENTIAL_FILES.chain, NODE_CREDENTIAL_FILES.roots].map(
      (f) => join(opts.outDir, f),
    );
    await writeFileAtomic(files[0] as string, key.privateKeyPem, 0o600);
    await writeFileAtomic(files[1] as string, res.certChain.join(""), 0o644);
    await writeFileAtomic(files[2] as string, res.trustBundle.join(""), 0o644);
    return { nodeName: res.nodeName, files };
  } catch (err) {
    if (err instanceof AmbitError) throw err;
    const e = err as grpc.ServiceError;
    const code = asErrorCode(e.metadata?.get("ambit-error-code")[0]) ?? "AMBIT_E_UNAVAILABLE";
    throw new AmbitError(code, e.details ?? e.message);
  } finally {
    client.close();
  }
}

/** Ambit roots carry the trust domain as their subject organization. */
function trustDomainOfRoot(rootPem: string): string | undefined {
  const o = new X509Certificate(rootPem).subject.split("\n").find((l) => l.startsWith("O="));
  return o?.slice(2) || undefined;
}
