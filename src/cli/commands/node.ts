// `ambit node`: run the node proxy; `ambit node join`: enrol this host as a node of the mesh.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { parseHostPort } from "../../core/address.js";
import { AmbitError } from "../../core/errors.js";
import { createLogger } from "../../core/log.js";
import { defaultStateDir } from "../../core/state-dir.js";
import type { NodeAgent } from "../../node/agent/agent.js";
import type { PodNetwork } from "../../node/proxy/network.js";
import type { Io } from "../io.js";
import { collect } from "../io.js";
import { parseSeconds } from "../durations.js";

interface RunOptions {
  controlPlane: string;
  nodeName: string;
  joinToken?: string;
  credentials?: string;
  mode: string;
  adminAddr: string;
  metricsAddr: string;
  readyAddr: string;
  drain: string;
  handshakeTimeout: string;
  rootNamespace: string;
  agentSocket?: string;
  podsState?: string;
  dnsUpstream: string[];
}

function resolvConfServers(): { host: string; port: number }[] {
  try {
    return readFileSync("/etc/resolv.conf", "utf8")
      .split("\n")
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((h): h is string => h !== undefined && isIP(h) !== 0)
      .map((host) => ({ host, port: 53 }));
  } catch {
    return [];
  }
}

export function registerNode(program: Command, io: Io, setExit: (code: number) => void): void {
  const node = program
    .command("node")
    .enablePositionalOptions()
    .description("run the node proxy (HBONE mTLS, L4 authorization) for the workloads on this node")
    .option("--control-plane <host:port>", "the control plane's gRPC address")
    .option("--node-name <name>", "this node's name (as Pods' spec.nodeName say)")
    .option("--join-token <token>", "join first with this token (writes the credentials directory)")
    .option(
      "--credentials <dir>",
      "node credentials from `ambit node join` [default: STATE_DIR/node-NAME, STATE_DIR = $AMBIT_STATE_DIR or ~/.ambit]",
    )
    .option("--mode <mode>", "how workload traffic reaches the proxy: loopback | capture", "loopback")
    .option(
      "--admin-addr <host:port>",
      "admin endpoint (config_dump, connections, logging)",
      "127.0.0.1:15000",
    )
    .option("--metrics-addr <host:port>", "Prometheus metrics", "127.0.0.1:15020")
    .option("--ready-addr <host:port>", "readiness probe", "127.0.0.1:15021")
    .option("--drain <duration>", "on SIGTERM, how long open connections may finish", "10s")
    .option("--handshake-timeout <duration>", "drop an inbound TLS handshake not finished by then", "10s")
    .option("--root-namespace <ns>", "the mesh's root namespace", "istio-system")
    .option(
      "--agent-socket <path>",
      "capture mode: the Unix socket where ambit-cni announces pods [default: /var/run/ambit/NODE.sock]",
    )
    .option(
      "--pods-state <file>",
      "capture mode: where announced pods are kept across restarts [default: CREDENTIALS/pods.json]",
    )
    .option(
      "--dns-upstream <host:port>",
      "capture mode: resolver for names outside the mesh (repeatable) [default: /etc/resolv.conf]",
      collect,
      [],
    )
    .action(async (opts: RunOptions) => {
      if (!opts.controlPlane) throw new AmbitError("AMBIT_E_USAGE", "--control-plane HOST:PORT is required");
      if (!opts.nodeName) throw new AmbitError("AMBIT_E_USAGE", "--node-name NAME is required");
      if (opts.mode !== "loopback" && opts.mode !== "capture") {
        throw new AmbitError("AMBIT_E_USAGE", `--mode: expected loopback or capture, got "${opts.mode}"`);
      }
      const controlPlane = parseHostPort(opts.controlPlane, "--control-plane");
      // The data path's modules load only for the command that runs them (a fast CLI otherwise).
      const [{ joinNode, NODE_CREDENTIAL_FILES }, { LoopbackNetwork }, { NodeProxy }] = await Promise.all([
        import("../../node/join.js"),
        import("../../node/proxy/network.js"),
        import("../../node/proxy/proxy.js"),
      ]);
      const dir = opts.credentials ?? join(defaultStateDir(), `node-${opts.nodeName}`);
      if (opts.joinToken) {
        const r = await joinNode({ controlPlane, token: opts.joinToken, outDir: dir });
        io.out(`joined as node ${r.nodeName}; credentials in ${dir}`);
      } else if (!existsSync(join(dir, NODE_CREDENTIAL_FILES.chain))) {
        throw new AmbitError(
          "AMBIT_E_FILE_READ",
          `no node credentials in ${dir}: pass --join-token (from \`ambit join-token create --node ${opts.nodeName}\`) or --credentials DIR`,
        );
      }
      const log = createLogger("node");
      let network: PodNetwork = new LoopbackNetwork();
      let capture: { agent: NodeAgent; dnsUpstream: { host: string; port: number }[] } | undefined;
      if (opts.mode === "capture") {
        const [{ loadNative }, { CaptureNetwork }, { NodeAgent }] = await Promise.all([
          import("../../node/capture/native.js"),
          import("../../node/proxy/capture-network.js"),
          import("../../node/agent/agent.js"),
        ]);
        let native;
        try {
          native = loadNative();
        } catch (err) {
          throw new AmbitError("AMBIT_E_CAPTURE", `--mode capture: ${(err as Error).message}`);
        }
        network = new CaptureNetwork(native);
        const socketPath = opts.agentSocket ?? join("/var/run/ambit", `${opts.nodeName}.sock`);
        mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
        capture = {
          agent: new NodeAgent({
            socketPath,
            stateFile: opts.podsState ?? join(dir, "pods.json"),
            log,
          }),
          dnsUpstream:
            opts.dnsUpstream.length > 0
              ? opts.dnsUpstream.map((u) => parseHostPort(u, "--dns-upstream"))
              : resolvConfServers(),
        };
      }
      const proxy = await NodeProxy.start({
        controlPlane,
        nodeName: opts.nodeName,
        credentialsDir: dir,
        network,
        ...(capture ? { capture } : {}),
        admin: parseHostPort(opts.adminAddr, "--admin-addr"),
        metrics: parseHostPort(opts.metricsAddr, "--metrics-addr"),
        readiness: parseHostPort(opts.readyAddr, "--ready-addr"),
        drainMs: parseSeconds(opts.drain, "--drain") * 1000,
        handshakeTimeoutMs: parseSeconds(opts.handshakeTimeout, "--handshake-timeout") * 1000,
        rootNamespace: opts.rootNamespace,
        log,
        accessLog: createLogger("node-access"),
      });
      io.out(`node proxy ${opts.nodeName} running (${opts.mode} mode); admin ${opts.adminAddr}`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await proxy.shutdown();
      setExit(0);
      // Everything is closed; do not let a lingering library handle (a gRPC channel's timers)
      // hold the process after the drain.
      setTimeout(() => process.exit(0), 1_000).unref();
    });
  node
    .command("join")
    .description("exchange a join token for this node's key, certificate and the trust bundle")
    .requiredOption("--control-plane <host:port>", "the control plane's gRPC address")
    .requiredOption("--token <token>", "from `ambit join-token create --node NAME`")
    .requiredOption("--out <dir>", "where to write key.pem (0600), cert-chain.pem and root-cert.pem")
    .option("--trust-domain <td>", "trust domain [default: read from the CA root]")
    .action(async (opts: { controlPlane: string; token: string; out: string; trustDomain?: string }) => {
      const { joinNode } = await import("../../node/join.js");
      const r = await joinNode({
        controlPlane: parseHostPort(opts.controlPlane, "--control-plane"),
        token: opts.token,
        outDir: opts.out,
        ...(opts.trustDomain ? { trustDomain: opts.trustDomain } : {}),
      });
      io.out(`joined as node ${r.nodeName}; wrote ${r.files.join(", ")}`);
      setExit(0);
    });
}
