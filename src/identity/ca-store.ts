// The CA's state on disk — DIR/ca/root-<n>-{cert,key}.pem and DIR/ca/bundle.json, written
// atomically with safe permissions — and loading and validating a user-supplied ("plug-in") CA.
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { chmod, mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";
import { AmbitError } from "../core/errors.js";
import { splitPemCertificates } from "./der.js";
import { certificateInfo, KEY_CERT_SIGN, spkiOf } from "./pki.js";

export type RootState = "trusted" | "removed";

/** One root as bundle.json records it. Times are ISO 8601. */
export interface RootRecord {
  n: number;
  /** node's fingerprint256 form (AB:CD:…). */
  fingerprint: string;
  addedAt: string;
  /** When this root becomes the signer (the newest root whose signingFrom has passed signs). */
  signingFrom: string;
  state: RootState;
  removedAt?: string;
}

interface BundleFile {
  version: 1;
  roots: RootRecord[];
}

export interface StoredRoot {
  record: RootRecord;
  certPem: string;
  key: KeyObject;
}

const caStateError = (message: string, cause?: unknown): AmbitError =>
  new AmbitError("AMBIT_E_CA_STATE", message, undefined, cause === undefined ? undefined : { cause });

/**
 * Read a private key file, refusing it when its permission bits intersect `forbiddenBits`
 * (0o077 for the CA's own keys: owner only; 0o007 for plug-in keys: not world-accessible).
 */
export async function readKeyFile(
  path: string,
  forbiddenBits: number,
): Promise<{ pem: string; key: KeyObject }> {
  let pem: string;
  try {
    const fh = await open(path, "r");
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw caStateError(`CA key ${path} is not a regular file`);
      if ((st.mode & forbiddenBits) !== 0) {
        throw caStateError(
          `CA key ${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}; it must not be accessible to ${forbiddenBits & 0o070 ? "group or others" : "others"} (chmod ${forbiddenBits & 0o070 ? "600" : "640"})`,
        );
      }
      pem = await fh.readFile("utf8");
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof AmbitError) throw err;
    throw caStateError(`cannot read CA key ${path}: ${(err as Error).message}`, err);
  }
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch (err) {
    throw caStateError(
      `CA key ${path} is not an unencrypted PEM private key: ${(err as Error).message}`,
      err,
    );
  }
}

async function readCertFile(path: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw caStateError(`cannot read ${what} ${path}: ${(err as Error).message}`, err);
  }
  const certs = splitPemCertificates(text);
  if (certs.length === 0) throw caStateError(`${what} ${path} holds no PEM certificate`);
  return certs;
}

function checkKeyMatches(key: KeyObject, certPem: string, where: string): void {
  if (!spkiOf(key).equals(spkiOf(new X509Certificate(certPem).publicKey))) {
    throw caStateError(`the key does not match the certificate (${where})`);
  }
}

/** DIR/ca: the self-managed roots. */
export class CaStore {
  private constructor(
    readonly dir: string,
    private records: RootRecord[],
  ) {}

  /** Open (creating DIR/ca, 0700) and load every trusted root; `roots` is empty on first start. */
  static async open(stateDir: string): Promise<{ store: CaStore; roots: StoredRoot[] }> {
    const dir = join(stateDir, "ca");
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    } catch (err) {
      throw caStateError(`cannot create the CA directory ${dir}: ${(err as Error).message}`, err);
    }
    let text: string | undefined;
    try {
      text = await readFile(join(dir, "bundle.json"), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        throw caStateError(`cannot read ${join(dir, "bundle.json")}: ${(err as Error).message}`, err);
    }
    if (text === undefined) return { store: new CaStore(dir, []), roots: [] };
    const records = parseBundleFile(text, join(dir, "bundle.json"));
    const store = new CaStore(dir, records);
    const roots: StoredRoot[] = [];
    for (const record of records) {
      if (record.state !== "trusted") continue;
      const certPem = (await readCertFile(store.certPath(record.n), "CA root certificate"))[0] as string;
      const { key } = await readKeyFile(store.keyPath(record.n), 0o077);
      const fp = new X509Certificate(certPem).fingerprint256;
      if (fp !== record.fingerprint)
        throw caStateError(
          `${store.certPath(record.n)} has fingerprint ${fp}, bundle.json says ${record.fingerprint}`,
        );
      checkKeyMatches(key, certPem, `${store.keyPath(record.n)} / ${store.certPath(record.n)}`);
      roots.push({ record, certPem, key });
    }
    if (roots.length === 0) throw caStateError(`${join(dir, "bundle.json")} lists no trusted root`);
    return { store, roots };
  }

  certPath(n: number): string {
    return join(this.dir, `root-${n}-cert.pem`);
  }

  keyPath(n: number): string {
    return join(this.dir, `root-${n}-key.pem`);
  }

  list(): readonly RootRecord[] {
    return this.records;
  }

  /**
   * Persist a new root: key (0600) and certificate first, then bundle.json, so a crash leaves at most
   * unreferenced files that the next addRoot overwrites.
   */
  async addRoot(certPem: string, key: KeyObject, addedAt: Date, signingFrom: Date): Promise<StoredRoot> {
    const n = this.records.reduce((m, r) => Math.max(m, r.n), 0) + 1;
    const record: RootRecord = {
      n,
      fingerprint: new X509Certificate(certPem).fingerprint256,
      addedAt: addedAt.toISOString(),
      signingFrom: signingFrom.toISOString(),
      state: "trusted",
    };
    await writeFileAtomic(this.keyPath(n), key.export({ type: "pkcs8", format: "pem" }), 0o600);
    await writeFileAtomic(this.certPath(n), certPem, 0o644);
    const records = [...this.records, record];
    await this.writeBundle(records);
    this.records = records;
    return { record, certPem, key };
  }

  /** Mark a root removed in bundle.json, then delete its key (its certificate stays for the record). */
  async removeRoot(n: number, at: Date): Promise<void> {
    const records = this.records.map((r) =>
      r.n === n ? { ...r, state: "removed" as const, removedAt: at.toISOString() } : r,
    );
    await this.writeBundle(records);
    this.records = records;
    await rm(this.keyPath(n), { force: true });
  }

  private async writeBundle(records: RootRecord[]): Promise<void> {
    const body: BundleFile = { version: 1, roots: records };
    await writeFileAtomic(join(this.dir, "bundle.json"), `${JSON.stringify(body, null, 2)}\n`, 0o644);
  }
}

function parseBundleFile(text: string, path: string): RootRecord[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw caStateError(`${path} is not valid JSON: ${(err as Error).message}`, err);
  }
  const roots = (doc as Partial<BundleFile> | null)?.roots;
  if ((doc as Partial<BundleFile> | null)?.version !== 1 || !Array.isArray(roots))
    throw caStateError(`${path}: expected {"version": 1, "roots": [...]}`);
  const seen = new Set<number>();
  return roots.map((r: unknown, i) => {
    const o = r as Partial<RootRecord> | null;
    const isDate = (s: unknown): s is string => typeof s === "string" && !Number.isNaN(Date.parse(s));
    if (
      !o ||
      typeof o.n !== "number" ||
      !Number.isInteger(o.n) ||
      o.n < 1 ||
      seen.has(o.n) ||
      typeof o.fingerprint !== "string" ||
      !isDate(o.addedAt) ||
      !isDate(o.signingFrom) ||
      (o.state !== "trusted" && o.state !== "removed")
    ) {
      throw caStateError(`${path}: roots[${i}] is malformed`);
    }
    seen.add(o.n);
    return {
      n: o.n,
      fingerprint: o.fingerprint,
      addedAt: o.addedAt,
      signingFrom: o.signingFrom,
      state: o.state,
      ...(o.removedAt ? { removedAt: o.removedAt } : {}),
    };
  });
}

// -----------------------------------------------------------------------------------------------
// Plug-in CA

export interface PluginCaFiles {
  certFile: string;
  keyFile: string;
  chainFile?: string | undefined;
}

export interface PluginCa {
  /** The certificate that signs (a root, or an intermediate). */
  signerCertPem: string;
  signerKey: KeyObject;
  /** Signer first, then intermediates, ending with the root: what follows a leaf in its chain. */
  chain: string[];
  /** The trust anchor (last element of `chain`). */
  rootPem: string;
}

/**
 * Load a plug-in CA: the key must match the certificate, every certificate must be a CA valid at
 * `now`, and each must be issued by the next up to a self-signed root — the trust anchor.
 */
export async function loadPluginCa(files: PluginCaFiles, now: Date): Promise<PluginCa> {
  const fromCert = await readCertFile(files.certFile, "plug-in CA certificate");
  const fromChain = files.chainFile ? await readCertFile(files.chainFile, "plug-in CA chain") : [];
  const { key } = await readKeyFile(files.keyFile, 0o007);
  const certs: X509Certificate[] = [];
  const seen = new Set<string>();
  for (const pem of [...fromCert, ...fromChain]) {
    const c = new X509Certificate(pem);
    if (seen.has(c.fingerprint256)) continue;
    seen.add(c.fingerprint256);
    certs.push(c);
  }
  const signer = certs[0] as X509Certificate;
  checkKeyMatches(key, signer.toString(), `${files.keyFile} / ${files.certFile}`);
  for (let i = 0; i < certs.length; i++) {
    const c = certs[i] as X509Certificate;
    const name = (c.subject ?? "").replace(/\n/g, ", ");
    if (!c.ca)
      throw caStateError(`plug-in CA certificate "${name}" is not a CA (basicConstraints CA:TRUE missing)`);
    const info = certificateInfo(c);
    if (info.keyUsage !== undefined && (info.keyUsage & KEY_CERT_SIGN) === 0) {
      throw caStateError(`plug-in CA certificate "${name}" lacks the keyCertSign key usage`);
    }
    if (now < info.notBefore || now > info.notAfter) {
      throw caStateError(
        `plug-in CA certificate "${name}" is not valid now (valid ${info.notBefore.toISOString()} to ${info.notAfter.toISOString()})`,
      );
    }
    if (c.checkIssued(c) && c.verify(c.publicKey)) {
      if (i !== certs.length - 1)
        throw caStateError(`the plug-in CA chain continues after the self-signed root "${name}"`);
      return {
        signerCertPem: signer.toString(),
        signerKey: key,
        chain: certs.map((x) => x.toString()),
        rootPem: c.toString(),
      };
    }
    const parent = certs[i + 1];
    if (!parent) {
      throw caStateError(
        `the plug-in CA chain ends at "${name}", which is not self-signed: pass the chain up to and including the root with --ca-chain`,
      );
    }
    if (!c.checkIssued(parent) || !c.verify(parent.publicKey)) {
      throw caStateError(
        `plug-in CA certificate "${name}" is not signed by the next certificate in the chain ("${(parent.subject ?? "").replace(/\n/g, ", ")}")`,
      );
    }
  }
  throw caStateError("the plug-in CA chain is empty");
}
