// Pieces both route compilers use: the Service lookup, problems, header modifiers, Istio's
// default retry policy and the per-(Service, port) entry lists the index is made of.
import type { CompiledMatch } from "./match.js";
import type {
  HeaderModifier,
  RetryPolicy,
  RouteDecision,
  RouteProblem,
  RouteProblemReason,
  ServiceInfo,
} from "./types.js";

/** One way a request can match, with the decision it leads to. */
export interface RouteEntry {
  match: CompiledMatch;
  decision: RouteDecision;
}

export const serviceKey = (ns: string, name: string): string => `${ns}/${name}`;

export class Services {
  readonly byKey = new Map<string, ServiceInfo>();
  readonly byHost = new Map<string, ServiceInfo>();
  constructor(
    services: readonly ServiceInfo[],
    readonly domain: string,
  ) {
    for (const s of services) {
      this.byKey.set(serviceKey(s.namespace, s.name), s);
      this.byHost.set(s.host.toLowerCase(), s);
    }
  }
}

export class Problems {
  readonly list: RouteProblem[] = [];
  add(reason: RouteProblemReason, resource: string, path: string, message: string): void {
    this.list.push({ reason, resource, path, message });
  }
}

/** Istio's default retry policy (mesh default, Istio 1.24+: no status codes, 503 excluded). */
export const DEFAULT_RETRY_ON = [
  "connect-failure",
  "refused-stream",
  "unavailable",
  "cancelled",
  "retriable-status-codes",
] as const;

export function defaultRetries(perTryTimeoutMs?: number): RetryPolicy {
  return {
    attempts: 2,
    retryOn: DEFAULT_RETRY_ON,
    retriableStatusCodes: [],
    retryIgnorePreviousHosts: true,
    ...(perTryTimeoutMs !== undefined ? { perTryTimeoutMs } : {}),
  };
}

export function headerModifier(
  set: Iterable<[string, string]>,
  add: Iterable<[string, string]>,
  remove: Iterable<string>,
): HeaderModifier | undefined {
  const m: HeaderModifier = {
    set: [...set].map(([name, value]) => ({ name: name.toLowerCase(), value })),
    add: [...add].map(([name, value]) => ({ name: name.toLowerCase(), value })),
    remove: [...remove].map((n) => n.toLowerCase()),
  };
  return m.set.length + m.add.length + m.remove.length > 0 ? m : undefined;
}

/** Milliseconds since the epoch of a creationTimestamp; absent or unparsable sorts first (Go's zero time). */
export function createdAt(ts: string | null | undefined): number {
  if (!ts) return Number.NEGATIVE_INFINITY;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** Drop undefined fields so decisions compare and print cleanly. */
export function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
