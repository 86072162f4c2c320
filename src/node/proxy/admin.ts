// The node proxy's local HTTP endpoints: admin (config_dump, connections, logging level) on
// 127.0.0.1:15000, Prometheus metrics on :15020, readiness on :15021. Bounded: small request
// bodies only, short timeouts, nothing but GET/POST on known paths.
import * as http from "node:http";
import type { Registry } from "prom-client";
import type { Logger } from "../../core/log.js";

const LEVELS = new Set(["trace", "debug", "info", "warn", "error", "fatal", "silent"]);

export interface AdminSource {
  configDump(): unknown;
  connections(): unknown;
  loggers(): Logger[];
  ready(): { ready: boolean; reason: string };
}

function send(res: http.ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = type === "application/json" ? `${JSON.stringify(body, null, 2)}\n` : String(body);
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function listen(server: http.Server, host: string, port: number): Promise<http.Server> {
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxHeadersCount = 50;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

export function startAdmin(src: AdminSource, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    if (url.pathname === "/config_dump" && req.method === "GET") return send(res, 200, src.configDump());
    if (url.pathname === "/connections" && req.method === "GET") return send(res, 200, src.connections());
    if (url.pathname === "/logging") {
      const level = url.searchParams.get("level");
      if (req.method === "POST" || (req.method === "GET" && level !== null)) {
        if (level === null || !LEVELS.has(level)) {
          return send(res, 400, { error: `level must be one of ${[...LEVELS].join(", ")}`, got: level });
        }
        for (const l of src.loggers()) l.level = level;
      }
      return send(res, 200, { level: src.loggers()[0]?.level ?? "info" });
    }
    if (url.pathname === "/healthz/ready") {
      const r = src.ready();
      return send(res, r.ready ? 200 : 503, r);
    }
    send(res, 404, {
      error: `no such endpoint ${url.pathname}`,
      endpoints: ["/config_dump", "/connections", "/logging?level=LEVEL", "/healthz/ready"],
    });
  });
  return listen(server, host, port);
}

export function startMetrics(registry: Registry, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://metrics").pathname;
    if (path !== "/metrics" && path !== "/stats/prometheus")
      return send(res, 404, "not found\n", "text/plain");
    registry.metrics().then(
      (text) => send(res, 200, text, registry.contentType),
      (err: unknown) => send(res, 500, `metrics failed: ${String(err)}\n`, "text/plain"),
    );
  });
  return listen(server, host, port);
}

export function startReadiness(src: AdminSource, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((_req, res) => {
    const r = src.ready();
    send(res, r.ready ? 200 : 503, r);
  });
  return listen(server, host, port);
}
