// `ambit proxy-status`: every connected node and waypoint, what it has acknowledged, and whether
// that is the current config.
import type { Command } from "commander";
import { adminRequest, adminTargetOptions, withTarget } from "../admin-client.js";
import type { Io } from "../io.js";

interface ClientStatus {
  id: string;
  connectedAt: string;
  types: { typeUrl: string; acked: number; current: number; inSync: boolean }[];
  inSync: boolean;
  nacks: number;
}

const short = (typeUrl: string): string => typeUrl.slice(typeUrl.lastIndexOf(".") + 1);

export function registerProxyStatus(program: Command, io: Io, setExit: (code: number) => void): void {
  withTarget(
    program.command("proxy-status").description("connected data-plane clients and whether they are in sync"),
  )
    .option("-o, --output <format>", "table or json", "table")
    .action(async (opts: { controlPlane?: string; stateDir?: string; output: string }) => {
      const res = (await adminRequest<{ clients: ClientStatus[] }>(
        adminTargetOptions(opts),
        "GET",
        "/v1/proxy-status",
      )) as {
        clients: ClientStatus[];
      };
      if (opts.output === "json") {
        io.out(JSON.stringify(res.clients, null, 2));
      } else {
        const rows = [["CLIENT", "CONNECTED", "RESOURCES (acked/current)", "NACKS", "STATUS"]];
        for (const c of res.clients) {
          const types = c.types.map((t) => `${short(t.typeUrl)} ${t.acked}/${t.current}`).join(", ");
          rows.push([c.id, c.connectedAt, types || "-", String(c.nacks), c.inSync ? "SYNCED" : "STALE"]);
        }
        const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
        for (const r of rows)
          io.out(
            r
              .map((cell, i) => cell.padEnd(widths[i] ?? 0))
              .join("  ")
              .trimEnd(),
          );
      }
      setExit(0);
    });
}
