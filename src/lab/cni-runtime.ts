// The lab's container-runtime side of CNI: executes a network configuration list the way libcni
// does — ADD runs each plugin in order with the previous result as prevResult, DEL in reverse
// order with the cached result — inside the node's network namespace (the node's "host").
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../core/atomic-file.js";
import { AmbitError } from "../core/errors.js";
import { LabCommandError, nsExec } from "./sys.js";

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: ({ type: string } & Record<string, unknown>)[];
}

export interface CniInvocation {
  /** The node netns the plugins run in. */
  hostNetns: string;
  /** Directories holding plugin executables. */
  cniPath: readonly string[];
  containerId: string;
  /** Path of the pod's netns. */
  netns: string;
  ifName: string;
  podName: string;
  podNamespace: string;
  /** Where the ADD result is cached for DEL and CHECK. */
  cacheFile: string;
}

async function invoke(
  inv: CniInvocation,
  command: "ADD" | "DEL" | "CHECK",
  conf: ConfList,
  plugin: ConfList["plugins"][number],
  prevResult: unknown,
): Promise<unknown> {
  const netconf = {
    ...plugin,
    cniVersion: conf.cniVersion,
    name: conf.name,
    ...(prevResult !== undefined ? { prevResult } : {}),
  };
  const exe = inv.cniPath.map((d) => `${d}/${plugin.type}`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_PATH: inv.cniPath.join(":"),
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${inv.podNamespace};K8S_POD_NAME=${inv.podName};K8S_POD_INFRA_CONTAINER_ID=${inv.containerId}`,
  };
  // The first directory holding the plugin wins, as in libcni.
  const script = `for p in ${exe.map((e) => `'${e}'`).join(" ")}; do if [ -x "$p" ]; then exec "$p"; fi; done; echo '{"code":4,"msg":"plugin ${plugin.type} not found on CNI_PATH"}'; exit 1`;
  let out: string;
  try {
    out = await nsExec(inv.hostNetns, ["sh", "-c", script], {
      input: JSON.stringify(netconf),
      env,
      timeoutMs: 90_000,
    });
  } catch (err) {
    if (err instanceof LabCommandError) {
      let msg = err.detail;
      try {
        const e = JSON.parse(err.stdout || err.detail) as { code?: number; msg?: string; details?: string };
        msg = `code ${e.code}: ${e.msg}${e.details ? ` (${e.details})` : ""}`;
      } catch {
        // not a CNI error object: keep the raw text
      }
      throw new AmbitError(
        "AMBIT_E_LAB",
        `CNI ${command} of plugin ${plugin.type} for pod ${inv.podNamespace}/${inv.podName} failed: ${msg}`,
      );
    }
    throw err;
  }
  if (command !== "ADD") return undefined;
  try {
    return JSON.parse(out) as unknown;
  } catch {
    throw new AmbitError(
      "AMBIT_E_LAB",
      `CNI plugin ${plugin.type} printed a result that is not JSON: ${out.slice(0, 200)}`,
    );
  }
}

/** ADD through the whole list; returns the final result (cached for DEL). */
export async function cniAdd(inv: CniInvocation, conf: ConfList): Promise<{ ips?: { address?: string }[] }> {
  let result: unknown;
  for (const plugin of conf.plugins) result = await invoke(inv, "ADD", conf, plugin, result);
  await writeFileAtomic(inv.cacheFile, JSON.stringify(result));
  return result as { ips?: { address?: string }[] };
}

/** DEL in reverse order; every plugin is called even when one fails (the first error is reported). */
export async function cniDel(inv: CniInvocation, conf: ConfList): Promise<void> {
  let cached: unknown;
  try {
    cached = JSON.parse(await readFile(inv.cacheFile, "utf8")) as unknown;
  } catch {
    cached = undefined;
  }
  let first: Error | undefined;
  for (const plugin of [...conf.plugins].reverse()) {
    await invoke(inv, "DEL", conf, plugin, cached).catch((err: unknown) => {
      first ??= err instanceof Error ? err : new Error(String(err));
    });
  }
  if (first) throw first;
}

/** CHECK through the whole list against the cached result. */
export async function cniCheck(inv: CniInvocation, conf: ConfList): Promise<void> {
  const cached = JSON.parse(await readFile(inv.cacheFile, "utf8")) as unknown;
  for (const plugin of conf.plugins) await invoke(inv, "CHECK", conf, plugin, cached);
}
