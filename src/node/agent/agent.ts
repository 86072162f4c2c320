// The node agent: the node proxy's Unix socket where `ambit-cni` announces pods (their network
// namespace, name and addresses). Registrations are persisted so that a restarted node proxy
// re-enrols every pod it had; the handler (the node proxy) does the enrolment and answers once
// the pod's listeners and redirection are in place.
import { existsSync } from "node:fs";
import { readFile, unlink } from "node:fs/promises";
import * as net from "node:net";
import { writeFileAtomic } from "../../core/atomic-file.js";
import type { Logger } from "../../core/log.js";
import {
  AGENT_ERRORS,
  parseRequest,
  readMessage,
  type AgentReply,
  type AgentRequest,
  type PodRegistration,
} from "./protocol.js";

export interface AgentHandler {
  /** Enrol (or confirm) the pod; resolves when its capture is in place or it is not in the mesh. */
  add(pod: PodRegistration): Promise<AgentReply>;
  check(pod: PodRegistration): Promise<AgentReply>;
  remove(pod: PodRegistration): Promise<void>;
}

export interface NodeAgentOptions {
  socketPath: string;
  stateFile: string;
  log: Logger;
  /** Time a CNI call may take end to end. Default 60 s. */
  requestTimeoutMs?: number;
}

export class NodeAgent {
  private readonly pods = new Map<string, PodRegistration>();
  private server: net.Server | undefined;
  private handler: AgentHandler | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly opts: NodeAgentOptions) {}

  /** Loads the pods registered before a restart; those whose namespace is gone are dropped. */
  async load(): Promise<PodRegistration[]> {
    let list: PodRegistration[] = [];
    try {
      const raw = JSON.parse(await readFile(this.opts.stateFile, "utf8")) as unknown;
      if (Array.isArray(raw)) list = raw as PodRegistration[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        this.opts.log.warn({ file: this.opts.stateFile, err }, "ignoring an unreadable pod registry");
      }
    }
    for (const p of list) {
      if (existsSync(p.netns)) this.pods.set(p.containerId, p);
      else this.opts.log.info({ pod: `${p.namespace}/${p.name}` }, "forgetting a pod whose netns is gone");
    }
    if (this.pods.size !== list.length) await this.save();
    return [...this.pods.values()];
  }

  registrations(): PodRegistration[] {
    return [...this.pods.values()];
  }

  async start(handler: AgentHandler): Promise<void> {
    this.handler = handler;
    if (existsSync(this.opts.socketPath)) await unlink(this.opts.socketPath);
    const server = net.createServer((s) => void this.serve(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.opts.socketPath).catch(() => undefined);
  }

  private async serve(socket: net.Socket): Promise<void> {
    socket.on("error", () => undefined);
    let reply: AgentReply;
    try {
      const raw = await readMessage(socket, 10_000);
      const req = parseRequest(raw);
      reply =
        typeof req === "string"
          ? { ok: false, code: AGENT_ERRORS.invalidRequest, message: req }
          : await this.handle(req);
    } catch (err) {
      reply = { ok: false, code: AGENT_ERRORS.invalidRequest, message: (err as Error).message };
    }
    if (!socket.destroyed) socket.end(`${JSON.stringify(reply)}\n`);
  }

  private async handle(req: AgentRequest): Promise<AgentReply> {
    const handler = this.handler;
    if (!handler) return { ok: false, code: AGENT_ERRORS.unavailable, message: "node agent not started" };
    const timeoutMs = this.opts.requestTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<AgentReply>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            code: AGENT_ERRORS.enrolFailed,
            message: `the pod was not enrolled within ${timeoutMs} ms`,
          }),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([timeout, this.dispatch(req, handler)]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async dispatch(req: AgentRequest, handler: AgentHandler): Promise<AgentReply> {
    switch (req.op) {
      case "add": {
        this.pods.set(req.pod.containerId, req.pod);
        await this.save();
        this.opts.log.info({ pod: `${req.pod.namespace}/${req.pod.name}`, netns: req.pod.netns }, "CNI ADD");
        return handler.add(req.pod);
      }
      case "check":
        return handler.check(req.pod);
      case "del": {
        const pod = this.pods.get(req.containerId);
        if (!pod) return { ok: true, captured: false, detail: "unknown container; nothing to do" };
        this.pods.delete(req.containerId);
        await this.save();
        this.opts.log.info({ pod: `${pod.namespace}/${pod.name}` }, "CNI DEL");
        await handler.remove(pod);
        return { ok: true, captured: false, detail: "removed" };
      }
    }
  }

  private save(): Promise<void> {
    const body = JSON.stringify([...this.pods.values()], null, 2);
    this.saving = this.saving.catch(() => undefined).then(() => writeFileAtomic(this.opts.stateFile, body));
    return this.saving;
  }
}
