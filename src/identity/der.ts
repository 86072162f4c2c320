// PEM armor and DER framing: wraps already-encoded DER parts in a tag and length, and splits PEM
// text into blocks. The parts themselves always come from the @peculiar/asn1-* serializers.

/** One definite-length DER element: `tag`, the length of the concatenated parts, the parts. */
export function derTlv(tag: number, parts: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  let header: Buffer;
  if (len < 0x80) header = Buffer.from([tag, len]);
  else if (len < 0x100) header = Buffer.from([tag, 0x81, len]);
  else if (len < 0x10000) header = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  else if (len < 0x1000000) header = Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  else throw new RangeError(`DER element of ${len} bytes is too large`);
  return Buffer.concat([header, ...parts], header.length + len);
}

/**
 * The total size (header + content) the outermost element claims, or undefined when the header is
 * not a definite DER length. Used to refuse trailing bytes after a structure.
 */
export function derOuterLength(der: Uint8Array): number | undefined {
  if (der.length < 2) return undefined;
  const first = der[1] as number;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 3 || der.length < 2 + n) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (der[2 + i] as number);
  return 2 + n + len;
}

/** The exact bytes of the first element inside a constructed element (e.g. a TBS or a CSR's info). */
export function derFirstChild(der: Uint8Array): Buffer | undefined {
  if (der.length < 2) return undefined;
  const first = der[1] as number;
  const header = first < 0x80 ? 2 : 2 + (first & 0x7f);
  const inner = Buffer.from(der.buffer, der.byteOffset + header, Math.max(0, der.length - header));
  const len = derOuterLength(inner);
  return len === undefined || len > inner.length ? undefined : inner.subarray(0, len);
}

export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  der: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]{1,64})-----([^-]*)-----END ([A-Z0-9 ]{1,64})-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Every PEM block in `text`, in order; undefined when a block is malformed (bad base64, mismatched END). */
export function pemBlocks(text: string): PemBlock[] | undefined {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const [, begin, body, end] = m;
    if (begin === undefined || body === undefined || begin !== end) return undefined;
    const b64 = body.replace(/[\r\n\t ]+/g, "");
    if (b64.length === 0 || b64.length % 4 !== 0 || !BASE64.test(b64)) return undefined;
    out.push({ label: begin, der: Buffer.from(b64, "base64") });
  }
  return out;
}

/** The certificates in a PEM text (bundle, chain), normalized to one PEM string each. */
export function splitPemCertificates(text: string): string[] {
  return (pemBlocks(text) ?? [])
    .filter((b) => b.label === "CERTIFICATE")
    .map((b) => pemEncode("CERTIFICATE", b.der));
}
