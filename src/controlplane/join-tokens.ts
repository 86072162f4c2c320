// Join tokens: single-node, expiring, single-use credentials a node trades for its certificate.
// Only a hash of each secret is stored, so the state directory never holds a usable token.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";

interface StoredToken {
  id: string;
  node: string;
  secretHash: string;
  expiresAt: number;
  usedAt?: number;
}

export type ConsumeResult = { ok: true; node: string } | { ok: false; reason: string };

const TOKEN = /^ambit-join\.([a-z0-9]{8})\.([a-z0-9]{32})\.([0-9a-f]{64})$/;

/** The pieces of a token: its id and secret, and the pin of the CA root the node must see. */
export function parseJoinToken(token: string): { id: string; secret: string; caPin: string } | undefined {
  const m = TOKEN.exec(token.trim());
  if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) return undefined;
  return { id: m[1], secret: m[2], caPin: m[3] };
}

const hash = (s: string): string => createHash("sha256").update(s).digest("hex");
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
function randomToken(len: number): string {
  const bytes = randomBytes(len);
  let out = "";
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

export class JoinTokenStore {
  private tokens = new Map<string, StoredToken>();
  private constructor(
    private readonly file: string,
    private readonly now: () => number,
  ) {}

  static async open(stateDir: string, now: () => number = Date.now): Promise<JoinTokenStore> {
    const store = new JoinTokenStore(join(stateDir, "join-tokens.json"), now);
    try {
      const list = JSON.parse(await readFile(store.file, "utf8")) as StoredToken[];
      for (const t of list) store.tokens.set(t.id, t);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    return store;
  }

  /** A new token for `node`, valid for `ttlMs`; `caPin` is the sha256 of the root the node must trust. */
  async create(node: string, ttlMs: number, caPin: string): Promise<{ token: string; expiresAt: Date }> {
    const id = randomToken(8);
    const secret = randomToken(32);
    const expiresAt = this.now() + ttlMs;
    this.tokens.set(id, { id, node, secretHash: hash(secret), expiresAt });
    await this.persist();
    return { token: `ambit-join.${id}.${secret}.${caPin}`, expiresAt: new Date(expiresAt) };
  }

  /** Whether a token would be accepted now, without using it. */
  check(token: string): ConsumeResult {
    const found = this.find(token);
    return found.ok ? { ok: true, node: found.stored.node } : found;
  }

  /** Use a token once: it must exist, match, and be unexpired and unused. */
  async consume(token: string): Promise<ConsumeResult> {
    const found = this.find(token);
    if (!found.ok) return found;
    found.stored.usedAt = this.now();
    await this.persist();
    return { ok: true, node: found.stored.node };
  }

  private find(token: string): { ok: true; stored: StoredToken } | { ok: false; reason: string } {
    const parsed = parseJoinToken(token);
    if (!parsed) return { ok: false, reason: "malformed join token" };
    const stored = this.tokens.get(parsed.id);
    const given = Buffer.from(hash(parsed.secret), "hex");
    if (!stored || !timingSafeEqual(given, Buffer.from(stored.secretHash, "hex"))) {
      return { ok: false, reason: "unknown join token" };
    }
    if (stored.usedAt !== undefined) {
      return {
        ok: false,
        reason: `join token ${stored.id} was already used at ${new Date(stored.usedAt).toISOString()}`,
      };
    }
    if (this.now() >= stored.expiresAt) {
      return {
        ok: false,
        reason: `join token ${stored.id} expired at ${new Date(stored.expiresAt).toISOString()}`,
      };
    }
    return { ok: true, stored };
  }

  list(): { id: string; node: string; expiresAt: Date; used: boolean }[] {
    return [...this.tokens.values()].map((t) => ({
      id: t.id,
      node: t.node,
      expiresAt: new Date(t.expiresAt),
      used: t.usedAt !== undefined,
    }));
  }

  private async persist(): Promise<void> {
    // Drop tokens that expired more than a day ago; keep recent ones so reuse is reported precisely.
    const horizon = this.now() - 86_400_000;
    for (const [id, t] of this.tokens) if (t.expiresAt < horizon) this.tokens.delete(id);
    await writeFileAtomic(this.file, JSON.stringify([...this.tokens.values()], null, 2));
  }
}
