// The lab's system calls: commands (bounded in time, failures carry the command and its stderr),
// network namespaces, and background processes that outlive the CLI invocation.
import { execFile, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { AmbitError } from "../core/errors.js";

const execFileP = promisify(execFile);

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command; rejects with its stderr (or stdout) when it exits non-zero. */
export async function sh(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: o.timeoutMs ?? 60_000, env: o.env ?? process.env, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const detail = (stderr || stdout || err.message).trim();
          reject(new LabCommandError(`${cmd} ${args.join(" ")}`, detail, stdout));
        } else resolve(stdout);
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

export class LabCommandError extends Error {
  constructor(
    readonly command: string,
    readonly detail: string,
    readonly stdout: string,
  ) {
    super(`${command}: ${detail}`);
  }
}

export function nsExec(ns: string, argv: readonly string[], o: RunOptions = {}): Promise<string> {
  return sh("ip", ["netns", "exec", ns, ...argv], o);
}

export async function listNetns(): Promise<string[]> {
  const out = await execFileP("ip", ["netns", "list"]);
  return out.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n !== "");
}

export async function netnsPids(ns: string): Promise<number[]> {
  const out = await sh("ip", ["netns", "pids", ns]).catch(() => "");
  return out
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

export function alive(pid: number | undefined): boolean {
  if (pid === undefined || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs` for whatever is still running. */
export async function stopProcesses(pids: readonly number[], graceMs = 3_000): Promise<void> {
  const live = pids.filter(alive);
  for (const pid of live) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && live.some(alive)) await sleep(50);
  for (const pid of live.filter(alive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Starts `argv` inside `ns`, detached from the CLI, output appended to `logFile`. */
export function spawnDetached(
  ns: string,
  argv: readonly string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): number {
  const fd = openSync(logFile, "a", 0o600);
  try {
    const child = spawn("ip", ["netns", "exec", ns, ...argv], {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: env ?? process.env,
    });
    child.unref();
    if (child.pid === undefined)
      throw new AmbitError("AMBIT_E_LAB", `could not start ${argv.join(" ")} in ${ns}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Polls `probe` every 100 ms until it returns true or the time is up. */
export async function waitFor(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() >= deadline)
      throw new AmbitError("AMBIT_E_LAB", `timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}
