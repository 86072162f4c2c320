// Random choices the router makes, with the randomness injected: a weighted backend (invalid
// backends keep their share and answer with their status) and whether a percentage applies.
import type { RouteBackend, RouteDecision } from "./types.js";

export type BackendPick = { backend: RouteBackend } | { status: number; reason: string };

export function pickBackend(decision: RouteDecision, random: () => number): BackendPick {
  let total = 0;
  for (const b of decision.backends) total += b.weight;
  for (const b of decision.invalidBackends) total += b.weight;
  if (total <= 0) return { status: 500, reason: "no_backends" };
  let r = random() * total;
  for (const b of decision.backends) {
    if (r < b.weight) return { backend: b };
    r -= b.weight;
  }
  for (const b of decision.invalidBackends) {
    if (r < b.weight) return { status: b.status, reason: b.reason };
    r -= b.weight;
  }
  // Rounding at the top end: the last share.
  const last = decision.invalidBackends.at(-1);
  if (last) return { status: last.status, reason: last.reason };
  const b = decision.backends.at(-1);
  return b ? { backend: b } : { status: 500, reason: "no_backends" };
}

/** True with probability percent/100 (percent 0-100, fractional). */
export function shouldApply(percent: number, random: () => number): boolean {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  return random() * 100 < percent;
}
