// Runs a real `ambit control-plane` process on loopback (ports chosen by the kernel) for tests.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { readNodeCredentials, type NodeCredentials } from "../../src/identity/ca-client.js";
import { repoRoot, runAmbit } from "./repo.js";

export interface ControlPlaneProcess {
  child: ChildProcess;
  grpcPort: number;
  adminPort: number;
  adminUrl: string;
  stateDir: string;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startControlPlaneProcess(
  stateDir: string,
  extraArgs: readonly string[] = [],
): Promise<ControlPlaneProcess> {
  const child = spawn(
    process.execPath,
    [
      // Extra Node flags for the control plane (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
      ...(process.env.AMBIT_CP_NODE_FLAGS?.split(" ").filter(Boolean) ?? []),
      join(repoRoot(), "bin", "ambit.js"),
      "control-plane",
      "--state-dir",
      stateDir,
      "--grpc-addr",
      "127.0.0.1:0",
      "--admin-addr",
      "127.0.0.1:0",
      ...extraArgs,
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AMBIT_LOG_LEVEL: process.env.AMBIT_LOG_LEVEL ?? "warn" },
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const ready = await new Promise<{ grpcPort: number; adminPort: number }>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`control plane did not become ready in 20 s:\n${out}\n${stderr}`));
    }, 20_000);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /control plane ready: grpc \S+:(\d+) admin \S+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ grpcPort: Number(m[1]), adminPort: Number(m[2]) });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited (${code}) before ready:\n${out}\n${stderr}`));
    });
  });
  return {
    child,
    ...ready,
    adminUrl: `http://127.0.0.1:${ready.adminPort}`,
    stateDir,
    logs: () => stderr,
    stop: (signal = "SIGTERM") =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        child.once("exit", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        child.kill(signal);
      }),
  };
}

/** Join a node through the real CLI (`join-token create` + `node join`) and read its credentials. */
export async function joinNodeWithCli(
  cp: ControlPlaneProcess,
  node: string,
  outDir: string,
): Promise<NodeCredentials> {
  const admin = ["--control-plane", cp.adminUrl, "--state-dir", cp.stateDir];
  const created = await runAmbit(["join-token", "create", "--node", node, ...admin]);
  if (created.code !== 0) throw new Error(`join-token create failed: ${created.stderr}`);
  const joined = await runAmbit([
    "node",
    "join",
    "--control-plane",
    `127.0.0.1:${cp.grpcPort}`,
    "--token",
    created.stdout.trim(),
    "--out",
    outDir,
  ]);
  if (joined.code !== 0) throw new Error(`node join failed: ${joined.stderr}`);
  return readNodeCredentials(outDir);
}

/** Poll `cond` every 20 ms until it holds, failing after `ms`. */
export async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for the condition");
    await new Promise((r) => setTimeout(r, 20));
  }
}
