// In-pod redirection (DESIGN §4), modelled on Istio's in-pod ambient rules: inside the pod's
// network namespace, outbound TCP goes to the node proxy's 15001, inbound TCP (except HBONE on
// 15008) to 15006, DNS to 15053. Sockets carrying PROXY_MARK (the node proxy's own) are exempt.
// Inbound delivery spoofs the client's address; replies to such connections are marked by
// CONNMARK and routed back to the local stack (table 133) instead of out of the pod.
// Installing is idempotent (our chains are flushed and rebuilt, jumps added once); removing
// tolerates rules or a namespace that are already gone.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Packet mark of the node proxy's sockets (0x539, as in Istio). */
export const PROXY_MARK = 0x539;
/** Connection mark for connections the node proxy opened towards the application. */
const CONN_MARK = 0x111;
const MASK = 0xfff;
const ROUTE_TABLE = 133;
const PREF = 32764;

export const CAPTURE_PORTS = { outbound: 15001, inboundPlaintext: 15006, hbone: 15008, dns: 15053 } as const;

const hex = (n: number): string => `0x${n.toString(16)}`;
const MARK = `${hex(PROXY_MARK)}/${hex(MASK)}`;
const CMARK = `${hex(CONN_MARK)}/${hex(MASK)}`;

/** The iptables-restore input (applied with --noflush: only our chains are rewritten). */
export function redirectionRules(): string {
  const p = CAPTURE_PORTS;
  return [
    "*mangle",
    ":AMBIT_PRERT - [0:0]",
    ":AMBIT_OUTPUT - [0:0]",
    `-A AMBIT_PRERT -m mark --mark ${MARK} -j CONNMARK --set-xmark ${CMARK}`,
    `-A AMBIT_OUTPUT -m connmark --mark ${CMARK} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`,
    "COMMIT",
    "*nat",
    ":AMBIT_PRERT - [0:0]",
    ":AMBIT_OUTPUT - [0:0]",
    `-A AMBIT_PRERT ! -d 127.0.0.1/32 -p tcp ! --dport ${p.hbone} -m mark ! --mark ${MARK} -j REDIRECT --to-ports ${p.inboundPlaintext}`,
    `-A AMBIT_OUTPUT -p udp --dport 53 -m mark ! --mark ${MARK} -j REDIRECT --to-ports ${p.dns}`,
    `-A AMBIT_OUTPUT -p tcp --dport 53 -m mark ! --mark ${MARK} -j REDIRECT --to-ports ${p.dns}`,
    `-A AMBIT_OUTPUT -p tcp -m mark --mark ${CMARK} -j ACCEPT`,
    `-A AMBIT_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT`,
    `-A AMBIT_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark ${MARK} -j REDIRECT --to-ports ${p.outbound}`,
    "COMMIT",
    "",
  ].join("\n");
}

const JUMPS: readonly (readonly [table: string, chain: string, target: string])[] = [
  ["mangle", "PREROUTING", "AMBIT_PRERT"],
  ["mangle", "OUTPUT", "AMBIT_OUTPUT"],
  ["nat", "PREROUTING", "AMBIT_PRERT"],
  ["nat", "OUTPUT", "AMBIT_OUTPUT"],
];

function installScript(): string {
  const jumps = JUMPS.map(
    ([t, c, j]) =>
      `iptables -w 5 -t ${t} -C ${c} -j ${j} 2>/dev/null || iptables -w 5 -t ${t} -I ${c} 1 -j ${j}`,
  );
  return [
    "set -e",
    `iptables-restore -w 5 --noflush <<'EOF'\n${redirectionRules()}EOF`,
    ...jumps,
    `ip rule del fwmark ${CMARK} pref ${PREF} lookup ${ROUTE_TABLE} 2>/dev/null || true`,
    `ip rule add fwmark ${CMARK} pref ${PREF} lookup ${ROUTE_TABLE}`,
    `ip route replace local 0.0.0.0/0 dev lo table ${ROUTE_TABLE}`,
  ].join("\n");
}

function removeScript(): string {
  const lines: string[] = [];
  for (const [t, c, j] of JUMPS) {
    lines.push(`while iptables -w 5 -t ${t} -D ${c} -j ${j} 2>/dev/null; do :; done`);
  }
  for (const t of ["mangle", "nat"]) {
    for (const chain of ["AMBIT_PRERT", "AMBIT_OUTPUT"]) {
      lines.push(`iptables -w 5 -t ${t} -F ${chain} 2>/dev/null || true`);
      lines.push(`iptables -w 5 -t ${t} -X ${chain} 2>/dev/null || true`);
    }
  }
  lines.push(`while ip rule del fwmark ${CMARK} pref ${PREF} lookup ${ROUTE_TABLE} 2>/dev/null; do :; done`);
  lines.push(`ip route flush table ${ROUTE_TABLE} 2>/dev/null || true`);
  return lines.join("\n");
}

async function inNetns(netns: string, script: string): Promise<void> {
  try {
    await run("nsenter", [`--net=${netns}`, "sh", "-c", script], { timeout: 20_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`redirection rules in ${netns}: ${(e.stderr ?? "").trim() || e.message}`, { cause: err });
  }
}

/** Installs (or refreshes) the pod's redirection; idempotent. */
export function installRedirection(netns: string): Promise<void> {
  return inNetns(netns, installScript());
}

/** Removes the pod's redirection; a no-op when it (or the namespace) is already gone. */
export async function removeRedirection(netns: string): Promise<void> {
  await inNetns(netns, removeScript()).catch(() => undefined);
}

/** Whether the pod's redirection is in place (the four jumps exist). */
export async function redirectionInstalled(netns: string): Promise<boolean> {
  const check = JUMPS.map(([t, c, j]) => `iptables -w 5 -t ${t} -C ${c} -j ${j}`).join(" && ");
  return inNetns(netns, check).then(
    () => true,
    () => false,
  );
}
