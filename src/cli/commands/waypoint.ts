// `ambit waypoint`: run the L7 proxy for one Gateway; `ambit waypoint apply`: write the Gateway
// (class istio-waypoint) that makes the lab start one, optionally enrolling a namespace to use it.
import { networkInterfaces } from "node:os";
import type { Command } from "commander";
import { stringify } from "yaml";
import { parseHostPort } from "../../core/address.js";
import { AmbitError } from "../../core/errors.js";
import { createLogger } from "../../core/log.js";
import type { Io } from "../io.js";
import { parseSeconds } from "../durations.js";

interface RunOptions {
  controlPlane?: string;
  gateway?: string;
  serviceAccount?: string;
  credentials?: string;
  address: string;
  port: string;
  adminAddr: string;
  metricsAddr: string;
  readyAddr: string;
  trustDomain: string;
  rootNamespace: string;
  xfcc: boolean;
  handshakeTimeout: string;
  connectTimeout: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** "NS/NAME" → the Gateway reference. */
export function parseGatewayRef(value: string, flag: string): { namespace: string; name: string } {
  const [namespace, name, extra] = value.split("/");
  if (!namespace || !name || extra !== undefined || !DNS_LABEL.test(namespace) || !DNS_LABEL.test(name))
    throw new AmbitError("AMBIT_E_USAGE", `${flag}: expected NAMESPACE/NAME of a Gateway, got "${value}"`);
  return { namespace, name };
}

/** The first non-loopback IPv4 address of this network namespace (the pod's IP in the lab). */
function ownAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  throw new AmbitError(
    "AMBIT_E_USAGE",
    "--address auto: this network namespace has no IPv4 address; pass --address",
  );
}

/** The Gateway document `ambit waypoint apply` writes (what `istioctl waypoint apply` writes). */
export function waypointGateway(namespace: string, name: string, forWhat: string): Record<string, unknown> {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace, labels: { "istio.io/waypoint-for": forWhat } },
    spec: {
      gatewayClassName: "istio-waypoint",
      listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
    },
  };
}

export function registerWaypoint(program: Command, io: Io, setExit: (code: number) => void): void {
  const wp = program
    .command("waypoint")
    .enablePositionalOptions()
    .description("run the L7 proxy (HTTP/1.1, HTTP/2, gRPC policy and routing) for one waypoint Gateway")
    .option("--control-plane <host:port>", "the control plane's gRPC address")
    .option("--gateway <ns/name>", "the Gateway (class istio-waypoint) this waypoint runs for")
    .option("--service-account <sa>", "identity to serve as [default: the Gateway's name, as Istio does]")
    .option(
      "--credentials <dir>",
      "the node's credentials (`ambit node join`); the CA signs for the waypoint's Pod on that node",
    )
    .option(
      "--address <ip>",
      "this waypoint's address (HBONE listener, source of upstream tunnels); auto = first IPv4",
      "auto",
    )
    .option("--port <port>", "HBONE port", "15008")
    .option("--admin-addr <host:port>", "admin endpoint", "127.0.0.1:15000")
    .option("--metrics-addr <host:port>", "Prometheus metrics", "0.0.0.0:15020")
    .option("--ready-addr <host:port>", "readiness probe", "0.0.0.0:15021")
    .option("--trust-domain <td>", "the mesh's trust domain", "cluster.local")
    .option("--root-namespace <ns>", "the mesh's root namespace", "istio-system")
    .option("--no-xfcc", "do not send x-forwarded-client-cert to applications")
    .option("--handshake-timeout <duration>", "drop an inbound TLS handshake not finished by then", "10s")
    .option("--connect-timeout <duration>", "upstream connect timeout", "10s")
    .action(async (opts: RunOptions) => {
      if (!opts.controlPlane) throw new AmbitError("AMBIT_E_USAGE", "--control-plane HOST:PORT is required");
      if (!opts.gateway) throw new AmbitError("AMBIT_E_USAGE", "--gateway NAMESPACE/NAME is required");
      if (!opts.credentials)
        throw new AmbitError("AMBIT_E_USAGE", "--credentials DIR (the node's) is required");
      const gateway = parseGatewayRef(opts.gateway, "--gateway");
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new AmbitError("AMBIT_E_USAGE", `--port: expected a port number, got "${opts.port}"`);
      const { Waypoint } = await import("../../waypoint/waypoint.js");
      const { waypointExtensions } = await import("../../waypoint/extensions.js");
      const log = createLogger("waypoint");
      const w = await Waypoint.start(
        {
          controlPlane: parseHostPort(opts.controlPlane, "--control-plane"),
          credentialsDir: opts.credentials,
          gateway,
          ...(opts.serviceAccount ? { serviceAccount: opts.serviceAccount } : {}),
          listen: { host: opts.address === "auto" ? ownAddress() : opts.address, port },
          admin: parseHostPort(opts.adminAddr, "--admin-addr"),
          metrics: parseHostPort(opts.metricsAddr, "--metrics-addr"),
          readiness: parseHostPort(opts.readyAddr, "--ready-addr"),
          trustDomain: opts.trustDomain,
          rootNamespace: opts.rootNamespace,
          xfcc: opts.xfcc,
          handshakeTimeoutMs: parseSeconds(opts.handshakeTimeout, "--handshake-timeout") * 1000,
          connectTimeoutMs: parseSeconds(opts.connectTimeout, "--connect-timeout") * 1000,
          log,
          accessLog: createLogger("waypoint-access"),
        },
        waypointExtensions(log),
      );
      io.out(`waypoint ${gateway.namespace}/${gateway.name} running as ${w.spiffeId}`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
      });
      await w.close();
      setExit(0);
      setTimeout(() => process.exit(0), 1_000).unref();
    });

  wp.command("apply")
    .description("write a waypoint Gateway (in the lab this also starts its pod)")
    .requiredOption("-n, --namespace <ns>", "the waypoint's namespace")
    .option("--name <name>", "the Gateway's name", "waypoint")
    .option("--for <traffic>", "what it handles: service | workload | all | none", "service")
    .option("--enroll-namespace", "label the namespace istio.io/use-waypoint=NAME")
    .option("--dry-run", "print the YAML instead of applying it")
    .action(
      async (opts: {
        namespace: string;
        name: string;
        for: string;
        enrollNamespace?: boolean;
        dryRun?: boolean;
      }) => {
        for (const [flag, v] of [
          ["--namespace", opts.namespace],
          ["--name", opts.name],
        ] as const)
          if (!DNS_LABEL.test(v)) throw new AmbitError("AMBIT_E_USAGE", `${flag}: "${v}" is not a DNS label`);
        if (!["service", "workload", "all", "none"].includes(opts.for))
          throw new AmbitError(
            "AMBIT_E_USAGE",
            `--for: expected service, workload, all or none, got "${opts.for}"`,
          );
        const docs: Record<string, unknown>[] = [waypointGateway(opts.namespace, opts.name, opts.for)];
        if (opts.enrollNamespace) {
          docs.unshift({
            apiVersion: "v1",
            kind: "Namespace",
            metadata: {
              name: opts.namespace,
              labels: { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": opts.name },
            },
          });
        }
        const text = docs.map((d) => stringify(d)).join("---\n");
        if (opts.dryRun) {
          io.out(text.trimEnd());
          setExit(0);
          return;
        }
        const { labApplyTextWithWaypoints } = await import("../../lab/waypoints.js");
        await labApplyTextWithWaypoints(text, `waypoint-${opts.namespace}-${opts.name}`, (l) => io.out(l));
        setExit(0);
      },
    );
}
