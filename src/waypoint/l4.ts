// TCP services through the waypoint: no HTTP, just the bytes, to an endpoint chosen like any
// other (ready endpoints, load balancing), over HBONE with the waypoint's identity. The CONNECT
// is answered once the upstream is connected, so a caller sees 503 rather than a dead tunnel.
import type * as http2 from "node:http2";
import type { Logger } from "../core/log.js";
import { splice } from "../node/proxy/splice.js";
import type { Clusters } from "./cluster.js";
import type { ConnContext } from "./l7.js";
import type { WaypointTelemetry } from "./telemetry.js";
import type { Upstreams } from "./upstream.js";

export async function passThrough(
  stream: http2.ServerHttp2Stream,
  ctx: ConnContext,
  deps: { clusters: Clusters; upstreams: Upstreams; telemetry: WaypointTelemetry; log: Logger },
): Promise<void> {
  const backend = { service: ctx.service, port: ctx.dst.port, protocol: ctx.protocol, weight: 1 };
  const chosen = deps.clusters.choose(backend, {
    headers: new Map(),
    sourceIp: ctx.peer.ip,
    exclude: new Set(),
  });
  const fail = (detail: string): void => {
    deps.telemetry.tcpConnections.inc({ result: "upstream_failed" });
    deps.telemetry.refused("upstream_failed", {
      peer: ctx.peer.identity,
      service: ctx.service.hostname,
      detail,
    });
    if (!stream.destroyed) {
      try {
        stream.respond({ ":status": 503 }, { endStream: true });
      } catch {
        stream.destroy();
      }
    }
  };
  if (!chosen.ok) return fail(chosen.reply.body);
  const done = deps.clusters.started(backend, chosen.key);
  let upstream;
  try {
    upstream = await deps.upstreams.connect(chosen.endpoint);
  } catch (err) {
    done({ failure: "connect-failure" });
    return fail((err as Error).message);
  }
  if (stream.destroyed) {
    upstream.destroy();
    done({});
    return;
  }
  stream.respond({ ":status": 200 });
  deps.telemetry.tcpConnections.inc({ result: "opened" });
  splice(stream, upstream, { a: "client", b: "upstream" }, (end) => {
    done({});
    deps.log.debug({ service: ctx.service.hostname, ...end }, "tcp passthrough ended");
  });
}
