// The CLI's client for the control plane's admin API: finds the token in the state directory and
// turns HTTP failures into AmbitErrors with the server's code.
import type { Command } from "commander";
import { AmbitError, asErrorCode } from "../core/errors.js";
import { readAdminToken } from "../controlplane/admin-token.js";
import { defaultStateDir } from "../core/state-dir.js";

export interface AdminTarget {
  controlPlane: string;
  stateDir: string;
}

export const DEFAULT_ADMIN_URL = "http://127.0.0.1:15014";

export function adminTargetOptions(opts: { controlPlane?: string; stateDir?: string }): AdminTarget {
  return {
    controlPlane: opts.controlPlane ?? DEFAULT_ADMIN_URL,
    stateDir: opts.stateDir ?? defaultStateDir(),
  };
}

export interface TargetOpts {
  controlPlane?: string;
  stateDir?: string;
}

/** Adds --control-plane and --state-dir to a command that calls the admin API. */
export function withTarget(cmd: Command): Command {
  return cmd
    .option("--control-plane <url>", `control plane admin URL [default: ${DEFAULT_ADMIN_URL}]`)
    .option(
      "--state-dir <dir>",
      "control plane state directory holding the admin token [default: $AMBIT_STATE_DIR or ~/.ambit]",
    );
}

export async function adminRequest<T>(
  target: AdminTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<T | string> {
  let token: string;
  try {
    token = await readAdminToken(target.stateDir);
  } catch (err) {
    throw new AmbitError(
      "AMBIT_E_UNAUTHENTICATED",
      `cannot read the admin token in ${target.stateDir} (${(err as NodeJS.ErrnoException).code ?? String(err)}); pass --state-dir of the control plane`,
    );
  }
  let res: Response;
  try {
    res = await fetch(new URL(path, target.controlPlane), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new AmbitError(
      "AMBIT_E_UNAVAILABLE",
      `control plane admin API at ${target.controlPlane} is unreachable: ${(err as Error).message}`,
    );
  }
  const text = await res.text();
  const json = (res.headers.get("content-type") ?? "").includes("json")
    ? (JSON.parse(text) as unknown)
    : undefined;
  if (!res.ok) {
    const e = json as ({ code?: string; message?: string } & Record<string, unknown>) | undefined;
    const code = asErrorCode(e?.code) ?? "AMBIT_E_UNAVAILABLE";
    // The whole body (problems, notFound, ...) travels as detail for commands that print it.
    throw new AmbitError(code, e?.message ?? `HTTP ${res.status}`, { status: res.status, ...(e ?? {}) });
  }
  return (json as T | undefined) ?? text;
}
