// `ambit node join`: enrol this host as a node of the mesh.
import type { Command } from "commander";
import { parseHostPort } from "../../core/address.js";
import { joinNode } from "../../node/join.js";
import type { Io } from "../io.js";

export function registerNode(program: Command, io: Io, setExit: (code: number) => void): void {
  const node = program.command("node").description("node proxy and node enrolment");
  node
    .command("join")
    .description("exchange a join token for this node's key, certificate and the trust bundle")
    .requiredOption("--control-plane <host:port>", "the control plane's gRPC address")
    .requiredOption("--token <token>", "from `ambit join-token create --node NAME`")
    .requiredOption("--out <dir>", "where to write key.pem (0600), cert-chain.pem and root-cert.pem")
    .option("--trust-domain <td>", "trust domain [default: read from the CA root]")
    .action(async (opts: { controlPlane: string; token: string; out: string; trustDomain?: string }) => {
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
