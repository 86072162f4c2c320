// The waypoint's filter contract: what a request looks like to a filter, and what a filter may
// answer. Request hooks run in order, response hooks in reverse, the router last (DESIGN §7).
import type { JwtInfo } from "../../model/authz/types.js";

export interface WaypointRequest {
  method: string;
  /** The raw request-target, query included ("/a/b?x=1"). */
  path: string;
  /** Host (HTTP/1.1) or :authority (HTTP/2) as the client sent it. */
  authority: string;
  /** Lower-case names; filters may edit the map. */
  headers: Map<string, string[]>;
  protocol: "HTTP/1.1" | "HTTP/2";
  /** content-type application/grpc (or +proto etc.). */
  grpc: boolean;
  /** The HBONE peer: principal "td/ns/NS/sa/SA", null only for a peer without a SPIFFE ID. */
  source: { principal: string | null; ip: string; namespace: string | null };
  /** The Service the client addressed (by VIP) and its port. */
  destination: { service: { name: string; namespace: string; host: string } | null; port: number };
  /** The Gateway this waypoint runs for. */
  gateway: { name: string; namespace: string };
  /** Set by the JWT filter when a valid token was presented. */
  jwt: JwtInfo | null;
}

export type FilterOutcome =
  | { action: "continue" }
  | {
      action: "respond";
      status: number;
      headers?: Record<string, string>;
      body?: string;
      /** Short reason for logs and metrics ("jwt_invalid", "ext_authz_denied"). */
      reason: string;
    };

export const CONTINUE: FilterOutcome = { action: "continue" };
