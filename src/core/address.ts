// HOST:PORT parsing for listen and dial addresses ("[::1]:15012" for IPv6).
import { AmbitError } from "./errors.js";

export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new AmbitError(
      "AMBIT_E_USAGE",
      `${what}: expected HOST:PORT (e.g. 127.0.0.1:15012), got "${value}"`,
    );
  }
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
