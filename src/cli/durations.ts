// Durations on the command line: 90s, 30m, 24h, 7d (a bare number is seconds).
import { AmbitError } from "../core/errors.js";

export function parseSeconds(value: string, what: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(value);
  if (!m)
    throw new AmbitError(
      "AMBIT_E_USAGE",
      `${what}: expected a duration such as 90s, 30m, 24h or 7d, got "${value}"`,
    );
  const mult = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s" | "m" | "h" | "d"];
  return Number(m[1]) * mult;
}
