// The node agent's protocol on its Unix socket, shared by `ambit-cni` (the client) and the node
// proxy (the server): one JSON request per connection, one JSON reply, each a single line.
import * as net from "node:net";

export const MAX_MESSAGE_BYTES = 64 * 1024;

export interface PodRegistration {
  containerId: string;
  /** Path of the pod's network namespace (CNI_NETNS), e.g. /var/run/netns/NAME. */
  netns: string;
  name: string;
  namespace: string;
  /** The pod's addresses, from the previous plugin's result. */
  ips: string[];
}

export type AgentRequest =
  | { op: "add"; pod: PodRegistration }
  | { op: "check"; pod: PodRegistration }
  | { op: "del"; containerId: string; netns: string };

export type AgentReply =
  { ok: true; captured: boolean; detail: string } | { ok: false; code: AgentErrorCode; message: string };

/** CNI error codes: 11 is "try again later", 100+ are plugin-specific (CNI spec §Error). */
export const AGENT_ERRORS = {
  unavailable: 11,
  invalidRequest: 100,
  notInMesh: 101,
  enrolFailed: 102,
  notCaptured: 103,
} as const;
export type AgentErrorCode = (typeof AGENT_ERRORS)[keyof typeof AGENT_ERRORS];

function isString(v: unknown): v is string {
  return typeof v === "string";
}

/** Validates a decoded request; a string names what is wrong. */
export function parseRequest(raw: unknown): AgentRequest | string {
  if (typeof raw !== "object" || raw === null) return "request is not a JSON object";
  const r = raw as Record<string, unknown>;
  if (r.op === "del") {
    if (!isString(r.containerId) || !isString(r.netns)) return "del needs containerId and netns";
    return { op: "del", containerId: r.containerId, netns: r.netns };
  }
  if (r.op !== "add" && r.op !== "check") return `unknown op ${JSON.stringify(r.op)}`;
  const p = r.pod as Record<string, unknown> | undefined;
  if (typeof p !== "object" || p === null) return `${r.op} needs pod`;
  for (const f of ["containerId", "netns", "name", "namespace"] as const) {
    if (!isString(p[f]) || p[f] === "") return `pod.${f} must be a non-empty string`;
  }
  if (!Array.isArray(p.ips) || !p.ips.every((ip) => isString(ip) && net.isIP(ip) !== 0)) {
    return "pod.ips must be a list of IP addresses";
  }
  return {
    op: r.op,
    pod: {
      containerId: p.containerId as string,
      netns: p.netns as string,
      name: p.name as string,
      namespace: p.namespace as string,
      ips: p.ips as string[],
    },
  };
}

/** Reads one newline-terminated JSON message, bounded in size and time. */
export function readMessage(socket: net.Socket, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(
      () => finish(new Error(`no complete message within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        try {
          finish(undefined, JSON.parse(buf.slice(0, nl)) as unknown);
        } catch {
          finish(new Error("message is not valid JSON"));
        }
      } else if (buf.length > MAX_MESSAGE_BYTES)
        finish(new Error(`message larger than ${MAX_MESSAGE_BYTES} bytes`));
    };
    const onEnd = (): void => finish(new Error("connection closed before a complete message"));
    const onError = (err: Error): void => finish(err);
    function finish(err: Error | undefined, value?: unknown): void {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      if (err) reject(err);
      else resolve(value);
    }
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
  });
}

/** Client side: send one request and wait for the reply. */
export async function callAgent(
  socketPath: string,
  req: AgentRequest,
  timeoutMs: number,
): Promise<AgentReply> {
  const socket = net.connect(socketPath);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    socket.write(`${JSON.stringify(req)}\n`);
    const raw = await readMessage(socket, timeoutMs);
    const r = raw as Partial<AgentReply> | null;
    if (r && r.ok === true) return r as AgentReply;
    if (r && r.ok === false && typeof r.message === "string") return r as AgentReply;
    throw new Error("the node agent sent a malformed reply");
  } finally {
    socket.destroy();
  }
}
