// `ambit-cni`: a chained CNI plugin (CNI spec 1.0: ADD, DEL, CHECK, VERSION). It runs after the
// plugins that wire the pod (bridge, host-local), tells the node agent about the pod — its
// netns, name, namespace and the addresses prevResult gave it — and blocks ADD until the node
// proxy has enrolled it. It passes prevResult on unchanged. Failures are CNI error objects.
import {
  callAgent,
  type AgentReply,
  type AgentRequest,
  type PodRegistration,
} from "../node/agent/protocol.js";

export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"] as const;

/** CNI's well-known error codes (spec §Error). */
export const CNI_ERRORS = {
  incompatibleVersion: 1,
  invalidEnv: 4,
  decoding: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
} as const;

export interface CniOutput {
  stdout: string;
  exitCode: number;
}

interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  agentSocket: string;
  timeoutSeconds: number;
  prevResult?: { ips?: { address?: string }[] } & Record<string, unknown>;
}

class CniFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = "",
  ) {
    super(message);
  }
}

function errorOutput(version: string, code: number, msg: string, details: string): CniOutput {
  return { stdout: `${JSON.stringify({ cniVersion: version, code, msg, details })}\n`, exitCode: 1 };
}

function parseConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniFailure(
      CNI_ERRORS.decoding,
      "network configuration on stdin is not JSON",
      (err as Error).message,
    );
  }
  if (typeof raw !== "object" || raw === null)
    throw new CniFailure(CNI_ERRORS.decoding, "network configuration is not an object");
  const c = raw as Record<string, unknown>;
  const version = typeof c.cniVersion === "string" ? c.cniVersion : "";
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniFailure(
      CNI_ERRORS.incompatibleVersion,
      `cniVersion ${JSON.stringify(c.cniVersion)} is not supported`,
      `supported: ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  if (typeof c.agentSocket !== "string" || c.agentSocket === "") {
    throw new CniFailure(
      CNI_ERRORS.invalidConfig,
      "field agentSocket (the node agent's Unix socket path) is required",
    );
  }
  const timeout = c.timeoutSeconds === undefined ? 60 : c.timeoutSeconds;
  if (typeof timeout !== "number" || !(timeout > 0 && timeout <= 600)) {
    throw new CniFailure(
      CNI_ERRORS.invalidConfig,
      "field timeoutSeconds must be a number of seconds in (0, 600]",
    );
  }
  return {
    cniVersion: version,
    name: typeof c.name === "string" ? c.name : "",
    type: typeof c.type === "string" ? c.type : "",
    agentSocket: c.agentSocket,
    timeoutSeconds: timeout,
    ...(typeof c.prevResult === "object" && c.prevResult !== null
      ? { prevResult: c.prevResult as NetConf["prevResult"] & Record<string, unknown> }
      : {}),
  };
}

/** CNI_ARGS: "K1=V1;K2=V2". */
export function parseCniArgs(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (value ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

function requireEnv(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new CniFailure(CNI_ERRORS.invalidEnv, `environment variable ${name} is required`);
  return v;
}

function registration(env: NodeJS.ProcessEnv, conf: NetConf): PodRegistration {
  const args = parseCniArgs(env.CNI_ARGS);
  const name = args.get("K8S_POD_NAME");
  const namespace = args.get("K8S_POD_NAMESPACE");
  if (!name || !namespace) {
    throw new CniFailure(CNI_ERRORS.invalidEnv, "CNI_ARGS must carry K8S_POD_NAME and K8S_POD_NAMESPACE");
  }
  if (!conf.prevResult) {
    throw new CniFailure(
      CNI_ERRORS.invalidConfig,
      "no prevResult: ambit-cni is a chained plugin and must follow one that assigns the pod's addresses",
    );
  }
  const ips = (conf.prevResult.ips ?? [])
    .map((i) => (typeof i.address === "string" ? i.address.split("/")[0] : undefined))
    .filter((a): a is string => a !== undefined && a !== "");
  if (ips.length === 0) throw new CniFailure(CNI_ERRORS.invalidConfig, "prevResult has no ips");
  return {
    containerId: requireEnv(env, "CNI_CONTAINERID"),
    netns: requireEnv(env, "CNI_NETNS"),
    name,
    namespace,
    ips,
  };
}

async function ask(conf: NetConf, req: AgentRequest): Promise<AgentReply> {
  try {
    return await callAgent(conf.agentSocket, req, conf.timeoutSeconds * 1000);
  } catch (err) {
    throw new CniFailure(
      CNI_ERRORS.tryAgainLater,
      `cannot reach the node agent at ${conf.agentSocket}: ${(err as Error).message}`,
      "is the node proxy running in capture mode on this node?",
    );
  }
}

function replyOrFail(reply: AgentReply): void {
  if (!reply.ok) throw new CniFailure(reply.code, reply.message);
}

/** Runs one CNI invocation. Never throws: failures become CNI error output. */
export async function runCni(env: NodeJS.ProcessEnv, stdin: string): Promise<CniOutput> {
  const command = env.CNI_COMMAND ?? "";
  if (command === "VERSION") {
    return {
      stdout: `${JSON.stringify({ cniVersion: "1.0.0", supportedVersions: SUPPORTED_VERSIONS })}\n`,
      exitCode: 0,
    };
  }
  let version = "1.0.0";
  try {
    const conf = parseConf(stdin);
    version = conf.cniVersion;
    switch (command) {
      case "ADD": {
        replyOrFail(await ask(conf, { op: "add", pod: registration(env, conf) }));
        return { stdout: `${JSON.stringify({ ...conf.prevResult, cniVersion: version })}\n`, exitCode: 0 };
      }
      case "CHECK": {
        replyOrFail(await ask(conf, { op: "check", pod: registration(env, conf) }));
        return { stdout: "", exitCode: 0 };
      }
      case "DEL": {
        // DEL must succeed when things are already gone; an unreachable agent has nothing to undo
        // that a restart will not (its registry drops pods whose netns no longer exists).
        const req: AgentRequest = {
          op: "del",
          containerId: requireEnv(env, "CNI_CONTAINERID"),
          netns: env.CNI_NETNS ?? "",
        };
        await callAgent(conf.agentSocket, req, conf.timeoutSeconds * 1000).catch(() => undefined);
        return { stdout: "", exitCode: 0 };
      }
      default:
        throw new CniFailure(
          CNI_ERRORS.invalidEnv,
          `CNI_COMMAND ${JSON.stringify(command)} is not ADD, DEL, CHECK or VERSION`,
        );
    }
  } catch (err) {
    if (err instanceof CniFailure) return errorOutput(version, err.code, err.message, err.details);
    return errorOutput(version, CNI_ERRORS.tryAgainLater, (err as Error).message, "");
  }
}
