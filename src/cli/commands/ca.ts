// `ambit ca ...`, `ambit join-token create`, `ambit revoke`: CA administration through the admin API.
import type { Command } from "commander";
import { adminRequest, adminTargetOptions, withTarget, type TargetOpts } from "../admin-client.js";
import type { Io } from "../io.js";
import { parseSeconds } from "../durations.js";

interface Root {
  fingerprint: string;
  notAfter: string;
  addedAt: string;
  signing: boolean;
}

export function registerCa(program: Command, io: Io, setExit: (code: number) => void): void {
  const ca = program.command("ca").description("certificate authority administration");
  withTarget(ca.command("bundle").description("print the trust bundle (every trusted root, PEM)")).action(
    async (opts: TargetOpts) => {
      io.out(String(await adminRequest(adminTargetOptions(opts), "GET", "/v1/ca/bundle")).trimEnd());
      setExit(0);
    },
  );
  withTarget(ca.command("roots").description("list trusted roots and which one signs")).action(
    async (opts: TargetOpts) => {
      const r = (await adminRequest<{ roots: Root[] }>(adminTargetOptions(opts), "GET", "/v1/ca/roots")) as {
        roots: Root[];
      };
      for (const root of r.roots)
        io.out(
          `${root.fingerprint}  ${root.signing ? "signing" : "trusted"}  added ${root.addedAt}  expires ${root.notAfter}`,
        );
      setExit(0);
    },
  );
  withTarget(
    ca
      .command("rotate-root")
      .description("add a new root; it signs after the grace period, the old one stays trusted"),
  ).action(async (opts: TargetOpts) => {
    const r = (await adminRequest<{ added: unknown; roots: Root[] }>(
      adminTargetOptions(opts),
      "POST",
      "/v1/ca/rotate-root",
    )) as { roots: Root[] };
    for (const root of r.roots) io.out(`${root.fingerprint}  ${root.signing ? "signing" : "trusted"}`);
    setExit(0);
  });
  withTarget(
    ca
      .command("remove-root")
      .description("stop trusting a root (not the signing one)")
      .argument("<fingerprint>"),
  ).action(async (fingerprint: string, opts: TargetOpts) => {
    await adminRequest(adminTargetOptions(opts), "POST", "/v1/ca/remove-root", { fingerprint });
    io.out(`removed ${fingerprint}`);
    setExit(0);
  });

  const jt = program.command("join-token").description("node join tokens");
  withTarget(jt.command("create").description("print a single-use, expiring join token for one node"))
    .requiredOption("--node <name>", "the node's name")
    .option("--ttl <duration>", "how long the token is valid", "1h")
    .action(async (opts: TargetOpts & { node: string; ttl: string }) => {
      const r = (await adminRequest<{ token: string }>(adminTargetOptions(opts), "POST", "/v1/join-tokens", {
        node: opts.node,
        ttlSeconds: parseSeconds(opts.ttl, "--ttl"),
      })) as { token: string };
      io.out(r.token);
      setExit(0);
    });

  withTarget(
    program
      .command("revoke")
      .description("revoke an identity or one certificate; nodes drop connections using it"),
  )
    .option("--identity <spiffe-id>", "every certificate of this SPIFFE ID")
    .option("--serial <hex>", "one certificate, by serial number")
    .option("--reason <text>", "why (kept in the audit trail)")
    .action(async (opts: TargetOpts & { identity?: string; serial?: string; reason?: string }) => {
      const r = (await adminRequest<{ identity?: string; serial?: string }>(
        adminTargetOptions(opts),
        "POST",
        "/v1/revocations",
        {
          identity: opts.identity,
          serial: opts.serial,
          reason: opts.reason,
        },
      )) as { identity?: string; serial?: string };
      io.out(`revoked ${r.identity ?? `serial ${r.serial ?? "?"}`}`);
      setExit(0);
    });
}
