// JSON Web Key Sets for the JWT filter: inline sets (RequestAuthentication `jwks`) and sets fetched
// from a `jwksUri` over http(s), cached and refreshed every refreshMs (Istio's default: 20 min).
// A failed fetch keeps the last good keys; with none, callers see "unavailable". jose parses the
// keys and does all the cryptography; this module only moves JSON.
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import type { Logger } from "../../core/log.js";

/** Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL default. */
export const DEFAULT_JWKS_REFRESH_MS = 20 * 60_000;
export const DEFAULT_JWKS_FETCH_TIMEOUT_MS = 5_000;
/** After a failed fetch, retry no sooner than this (or refreshMs, if smaller). */
export const JWKS_RETRY_MS = 5_000;
/** A JWKS document bigger than this is refused (a key set is a few KiB). */
const MAX_JWKS_BYTES = 1 << 20;

export type KeyLookup = { ok: true; keys: JWTVerifyGetKey } | { ok: false; error: string };

/** Parse a JWKS JSON text into a jose key resolver; throws on anything that is not {"keys": [...]}. */
export function parseJwks(text: string): JWTVerifyGetKey {
  const parsed = JSON.parse(text) as unknown;
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (parsed === null || typeof parsed !== "object" || !Array.isArray(keys)) {
    throw new Error('not a JSON Web Key Set ({"keys": [...]})');
  }
  return createLocalJWKSet(parsed as JSONWebKeySet);
}

async function getText(uri: string, signal: AbortSignal): Promise<string> {
  const res = await fetch(uri, { signal, redirect: "follow", headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_JWKS_BYTES) throw new Error(`document larger than ${MAX_JWKS_BYTES} bytes`);
  return text;
}

export interface RemoteJwksOptions {
  uri: string;
  log: Logger;
  fetchTimeoutMs: number;
  refreshMs: number;
  now: () => number;
  /** `uri` is an OpenID Provider configuration document; its jwks_uri names the key set. */
  discovery?: boolean;
}

/** One jwksUri's keys: fetched on creation, refreshed when stale (the caller waits at most one fetch). */
export class RemoteJwks {
  /** Policies ("namespace/name") whose rules use this URI, for log lines. */
  readonly policies = new Set<string>();
  private keys: JWTVerifyGetKey | null = null;
  private lastError = "not fetched yet";
  private nextAttemptAt = 0;
  private inflight: Promise<void> | null = null;
  private closed = false;
  private abort: AbortController | null = null;

  constructor(private readonly opts: RemoteJwksOptions) {}

  get uri(): string {
    return this.opts.uri;
  }

  /** Start a fetch now unless one is running (used when the policy appears). */
  prefetch(): void {
    void this.refresh();
  }

  /** The keys to verify with: refreshed first when stale; the last good keys if the refresh fails. */
  async lookup(): Promise<KeyLookup> {
    if (this.opts.now() >= this.nextAttemptAt || this.inflight) await this.refresh();
    if (this.keys) return { ok: true, keys: this.keys };
    return { ok: false, error: this.lastError };
  }

  close(): void {
    this.closed = true;
    this.abort?.abort();
  }

  private refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.inflight ??= this.fetchOnce().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetchOnce(): Promise<void> {
    const { uri, log, fetchTimeoutMs, refreshMs, now } = this.opts;
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(
      () => abort.abort(new Error(`timed out after ${fetchTimeoutMs} ms`)),
      fetchTimeoutMs,
    );
    timer.unref();
    try {
      let text = await getText(uri, abort.signal);
      if (this.opts.discovery) {
        const jwksUri = (JSON.parse(text) as { jwks_uri?: unknown } | null)?.jwks_uri;
        if (typeof jwksUri !== "string" || !/^https?:\/\//.test(jwksUri)) {
          throw new Error("the OpenID configuration has no http(s) jwks_uri");
        }
        text = await getText(jwksUri, abort.signal);
      }
      this.keys = parseJwks(text);
      this.lastError = "";
      this.nextAttemptAt = now() + refreshMs;
      log.debug({ jwksUri: uri, policies: [...this.policies] }, "JWKS fetched");
    } catch (err) {
      const reason = abort.signal.aborted
        ? String((abort.signal.reason as Error | undefined)?.message ?? "aborted")
        : err instanceof Error
          ? err.message
          : String(err);
      this.lastError = `fetching ${uri} failed: ${reason}`;
      this.nextAttemptAt = now() + Math.min(refreshMs, JWKS_RETRY_MS);
      if (!this.closed) {
        log.warn(
          { jwksUri: uri, policies: [...this.policies], err: reason, keptLastGoodKeys: this.keys !== null },
          this.keys
            ? "JWKS fetch failed; keeping the last good keys"
            : "JWKS fetch failed and no keys are cached: tokens of this issuer are rejected",
        );
      }
    } finally {
      clearTimeout(timer);
      if (this.abort === abort) this.abort = null;
    }
  }
}
