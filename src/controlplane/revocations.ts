// Revocations: identities and certificate serials that must no longer be accepted anywhere.
// Persisted in the control plane's state; pushed to nodes with the config (Control plane issue).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";
import { normalizeSerial, RevocationList, type Revocation } from "../model/revocation.js";
import { parseSpiffeId } from "../model/spiffe.js";

export type { Revocation };

export class RevocationStore {
  private entries: Revocation[] = [];
  private index = new RevocationList();
  private version = 0;
  private readonly listeners = new Set<() => void>();
  private constructor(private readonly file: string) {}

  static async open(stateDir: string): Promise<RevocationStore> {
    const store = new RevocationStore(join(stateDir, "revocations.json"));
    try {
      store.entries = JSON.parse(await readFile(store.file, "utf8")) as Revocation[];
      store.index = new RevocationList(store.entries);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    store.version = store.entries.length;
    return store;
  }

  /** Validate and record a revocation; returns a reason string when the input is unusable. */
  async add(input: {
    identity?: string;
    serial?: string;
    reason?: string;
  }): Promise<{ ok: true; revocation: Revocation } | { ok: false; reason: string }> {
    if ((input.identity === undefined) === (input.serial === undefined)) {
      return { ok: false, reason: "give exactly one of identity or serial" };
    }
    if (input.identity !== undefined) {
      const parsed = parseSpiffeId(input.identity);
      if (!parsed.ok) return { ok: false, reason: parsed.reason };
    }
    const serial = input.serial !== undefined ? normalizeSerial(input.serial) : undefined;
    if (serial !== undefined && !/^[0-9a-f]{1,64}$/.test(serial)) {
      return { ok: false, reason: `serial "${input.serial}" is not hexadecimal` };
    }
    const revocation: Revocation = {
      ...(input.identity !== undefined ? { identity: input.identity } : {}),
      ...(serial !== undefined ? { serial } : {}),
      reason: input.reason ?? "unspecified",
      revokedAt: new Date().toISOString(),
    };
    this.entries.push(revocation);
    this.index = new RevocationList(this.entries);
    this.version++;
    await writeFileAtomic(this.file, JSON.stringify(this.entries, null, 2));
    for (const l of this.listeners) l();
    return { ok: true, revocation };
  }

  list(): readonly Revocation[] {
    return this.entries;
  }

  currentVersion(): number {
    return this.version;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether a certificate (identity + serial) is revoked, and why. */
  check(identity: string, serial?: string): Revocation | undefined {
    return this.index.check(identity, serial);
  }
}
