// selectRoute: the first route entry of the addressed Service and port that matches the
// request; null when no route applies (the waypoint then forwards to the Service itself).
import type { RouteIndex } from "./compile.js";
import { matchesRequest, parseQuery, splitTarget, type MatchContext } from "./match.js";
import type { RouteDecision, RouteRequest } from "./types.js";

/** Routes are attached but none matched: Envoy's 404 (response flag NR). */
export const ROUTE_NOT_FOUND: RouteDecision = Object.freeze({
  route: "none",
  kind: "none",
  backends: [],
  invalidBackends: [],
  mirrors: [],
  directResponse: { status: 404, reason: "route_not_found" },
});

export function selectRoute(index: RouteIndex, req: RouteRequest): RouteDecision | null {
  const routing = index.services.get(req.service);
  if (!routing) return null;
  const entries = routing.byPort.get(req.port);
  if (!entries || entries.length === 0) return null;
  const { path, query } = splitTarget(req.path);
  let parsed: Map<string, string> | undefined;
  const ctx: MatchContext = {
    path,
    method: req.method,
    headers: req.headers,
    get query() {
      parsed ??= parseQuery(query);
      return parsed;
    },
    port: req.port,
    authority: req.authority ?? req.headers.get("host")?.[0] ?? req.headers.get(":authority")?.[0] ?? "",
    scheme: req.scheme ?? "http",
  };
  for (const e of entries) if (matchesRequest(e.match, ctx)) return e.decision;
  return ROUTE_NOT_FOUND;
}
