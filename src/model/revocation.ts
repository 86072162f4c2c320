// Revocation lists: identities and certificate serials that must no longer be accepted. Pure, so
// the control plane (which records them) and the data plane (which enforces them) share one check.

export interface Revocation {
  /** Every certificate of this SPIFFE ID… */
  identity?: string;
  /** …or one certificate, by serial (lowercase hex without leading zeros). */
  serial?: string;
  reason: string;
  revokedAt: string;
}

/** Serials compare as numbers: lowercase hex, no separators, no leading zeros. */
export function normalizeSerial(hex: string): string {
  return hex
    .toLowerCase()
    .replace(/^0x/, "")
    .replace(/:/g, "")
    .replace(/^0+(?=.)/, "");
}

export class RevocationList {
  private readonly byIdentity = new Map<string, Revocation>();
  private readonly bySerial = new Map<string, Revocation>();

  constructor(readonly entries: readonly Revocation[] = []) {
    for (const r of entries) {
      if (r.identity !== undefined) this.byIdentity.set(r.identity, r);
      if (r.serial !== undefined) this.bySerial.set(normalizeSerial(r.serial), r);
    }
  }

  /** The revocation that applies to a certificate (its SPIFFE ID and serial), if any. */
  check(identity: string, serial?: string): Revocation | undefined {
    return this.byIdentity.get(identity) ?? (serial ? this.bySerial.get(normalizeSerial(serial)) : undefined);
  }

  get size(): number {
    return this.entries.length;
  }
}
