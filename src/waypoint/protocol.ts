// Which protocol a Service port speaks, as Istio decides it: `appProtocol` first, then the port
// name's prefix (`http`, `http2`, `grpc`, `grpc-web`, `tcp`, ... followed by `-suffix`). The
// waypoint handles HTTP/1.1, HTTP/2 and gRPC at L7; everything else passes through at L4.
export type PortProtocol = "http" | "http2" | "grpc" | "tcp";

const KNOWN: Record<string, PortProtocol> = {
  http: "http",
  http2: "http2",
  "kubernetes.io/h2c": "http2",
  h2c: "http2",
  grpc: "grpc",
  "grpc-web": "grpc",
  tcp: "tcp",
  tls: "tcp",
  https: "tcp",
  "kubernetes.io/ws": "http",
  "kubernetes.io/wss": "tcp",
  mongo: "tcp",
  mysql: "tcp",
  redis: "tcp",
  udp: "tcp",
};

export function portProtocol(port: {
  name?: string | undefined;
  appProtocol?: string | undefined;
}): PortProtocol {
  if (port.appProtocol) {
    const p = KNOWN[port.appProtocol.toLowerCase()];
    if (p) return p;
  }
  const name = (port.name ?? "").toLowerCase();
  for (const prefix of ["grpc-web", "http2", "grpc", "http"]) {
    if (name === prefix || name.startsWith(`${prefix}-`)) return KNOWN[prefix] ?? "tcp";
  }
  return "tcp";
}
