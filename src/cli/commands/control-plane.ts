// `ambit control-plane`: run the control plane until SIGINT/SIGTERM.
import { type Command } from "commander";
import { parseHostPort, formatHostPort } from "../../core/address.js";
import { AmbitError } from "../../core/errors.js";
import { createLogger } from "../../core/log.js";
import { defaultStateDir } from "../../core/state-dir.js";
import { parseSeconds } from "../durations.js";
import { collect, type Io } from "../io.js";

interface Options {
  stateDir?: string;
  grpcAddr: string;
  adminAddr: string;
  trustDomain: string;
  caCert?: string;
  caKey?: string;
  caChain?: string;
  serverSan: string[];
  maxCertTtl: string;
  rootGrace: string;
}

export function registerControlPlane(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command("control-plane")
    .description("run the control plane: CA (gRPC, TLS) and admin API")
    .option(
      "--state-dir <dir>",
      "state directory (CA keys, config, tokens) [default: $AMBIT_STATE_DIR or ~/.ambit]",
    )
    .option("--grpc-addr <host:port>", "gRPC listen address (CA, enrolment)", "0.0.0.0:15012")
    .option("--admin-addr <host:port>", "admin HTTP API listen address", "127.0.0.1:15014")
    .option("--trust-domain <td>", "SPIFFE trust domain", "cluster.local")
    .option("--ca-cert <file>", "plug-in CA: certificate (a root, or an intermediate with --ca-chain)")
    .option("--ca-key <file>", "plug-in CA: private key")
    .option("--ca-chain <file>", "plug-in CA: chain from the intermediate up to the root")
    .option(
      "--server-san <name>",
      "extra DNS name or IP for the gRPC server certificate (repeatable)",
      collect,
      [],
    )
    .option("--max-cert-ttl <duration>", "longest workload certificate the CA signs", "24h")
    .option("--root-grace <duration>", "after rotate-root, how long before the new root signs", "1h")
    .action(async (opts: Options) => {
      if ((opts.caCert === undefined) !== (opts.caKey === undefined)) {
        throw new AmbitError("AMBIT_E_USAGE", "--ca-cert and --ca-key go together");
      }
      const grpc = parseHostPort(opts.grpcAddr, "--grpc-addr");
      const admin = parseHostPort(opts.adminAddr, "--admin-addr");
      const log = createLogger("control-plane");
      // Loaded here so that other commands do not pay for the control plane's modules.
      const { startControlPlane } = await import("../../controlplane/main.js");
      const cp = await startControlPlane({
        stateDir: opts.stateDir ?? defaultStateDir(),
        grpc,
        admin,
        trustDomain: opts.trustDomain,
        pluginCa:
          opts.caCert && opts.caKey
            ? {
                certFile: opts.caCert,
                keyFile: opts.caKey,
                ...(opts.caChain ? { chainFile: opts.caChain } : {}),
              }
            : undefined,
        serverSans: opts.serverSan,
        maxWorkloadTtlSeconds: parseSeconds(opts.maxCertTtl, "--max-cert-ttl"),
        rootGraceSeconds: parseSeconds(opts.rootGrace, "--root-grace"),
        log,
      });
      io.out(
        `control plane ready: grpc ${formatHostPort(grpc.host, cp.grpcPort)} admin ${formatHostPort(admin.host, cp.adminPort)}`,
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await cp.close();
      setExit(0);
    });
}
