// What a data-plane listener checks about a peer once TLS has verified its chain against the
// trust bundle: one SPIFFE ID in our trust domain, not revoked. LivePeers closes connections whose
// certificate becomes revoked while they are open.
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { ErrorCode } from "../core/errors.js";
import type { RevocationList } from "../model/revocation.js";
import { parseSpiffeId } from "../model/spiffe.js";

export interface VerifiedPeer {
  identity: string;
  serial: string;
}

export type PeerCheck = { ok: true; peer: VerifiedPeer } | { ok: false; code: ErrorCode; reason: string };

/** The URI SANs of a certificate, from its subjectAltName text ("URI:spiffe://..., DNS:..."). */
export function uriSans(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? "")
    .split(", ")
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
}

export function checkPeerCertificate(
  cert: X509Certificate | undefined,
  trustDomain: string,
  revocations: RevocationList,
): PeerCheck {
  if (!cert) return { ok: false, code: "AMBIT_E_UNAUTHENTICATED", reason: "peer presented no certificate" };
  const uris = uriSans(cert.subjectAltName);
  if (uris.length !== 1 || uris[0] === undefined) {
    return {
      ok: false,
      code: "AMBIT_E_CSR_SAN",
      reason: `peer certificate has ${uris.length} URI SANs; expected exactly one SPIFFE ID`,
    };
  }
  const parsed = parseSpiffeId(uris[0]);
  if (!parsed.ok) return { ok: false, code: "AMBIT_E_CSR_SAN", reason: parsed.reason };
  if (parsed.identity.trustDomain !== trustDomain) {
    return {
      ok: false,
      code: "AMBIT_E_TRUST_DOMAIN",
      reason: `peer ${uris[0]} is not in trust domain ${trustDomain}`,
    };
  }
  const serial = cert.serialNumber.toLowerCase();
  const revoked = revocations.check(uris[0], serial);
  if (revoked) {
    return {
      ok: false,
      code: "AMBIT_E_REVOKED",
      reason: `peer ${uris[0]} (serial ${serial}) is revoked: ${revoked.reason}`,
    };
  }
  return { ok: true, peer: { identity: uris[0], serial } };
}

/** The verified peer of an authorized TLS socket, or why it is refused. */
export function checkTlsPeer(socket: TLSSocket, trustDomain: string, revocations: RevocationList): PeerCheck {
  if (!socket.authorized) {
    return {
      ok: false,
      code: "AMBIT_E_UNAUTHENTICATED",
      reason: `peer certificate not trusted: ${String(socket.authorizationError ?? "none presented")}`,
    };
  }
  const raw = socket.getPeerCertificate().raw as Buffer | undefined;
  return checkPeerCertificate(raw ? new X509Certificate(raw) : undefined, trustDomain, revocations);
}

/** Open connections by peer certificate, so a new revocation list can close the affected ones at once. */
export class LivePeers<C extends { destroy(err?: Error): void }> {
  private readonly live = new Map<C, VerifiedPeer>();

  add(conn: C, peer: VerifiedPeer): void {
    this.live.set(conn, peer);
  }

  remove(conn: C): void {
    this.live.delete(conn);
  }

  get size(): number {
    return this.live.size;
  }

  /** Close every connection whose peer the list revokes; returns what was closed and why. */
  enforce(list: RevocationList): { peer: VerifiedPeer; reason: string }[] {
    const closed: { peer: VerifiedPeer; reason: string }[] = [];
    for (const [conn, peer] of this.live) {
      const r = list.check(peer.identity, peer.serial);
      if (r) {
        this.live.delete(conn);
        conn.destroy();
        closed.push({ peer, reason: r.reason });
      }
    }
    return closed;
  }
}
