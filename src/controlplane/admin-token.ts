// The admin API's bearer token: created once in the state directory (0600), read by the CLI.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";

export const ADMIN_TOKEN_FILE = "admin-token";

export async function loadOrCreateAdminToken(stateDir: string): Promise<string> {
  const file = join(stateDir, ADMIN_TOKEN_FILE);
  try {
    const token = (await readFile(file, "utf8")).trim();
    if (token.length >= 32) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const token = randomBytes(32).toString("base64url");
  await writeFileAtomic(file, `${token}\n`, 0o600);
  return token;
}

export async function readAdminToken(stateDir: string): Promise<string> {
  return (await readFile(join(stateDir, ADMIN_TOKEN_FILE), "utf8")).trim();
}

/** Constant-time comparison of an `Authorization: Bearer ...` header against the token. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith("Bearer ")) return false;
  const given = Buffer.from(header.slice("Bearer ".length).trim());
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}
