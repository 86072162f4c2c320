// Child processes the benchmark starts (all killed at cleanup, also on failure or Ctrl-C), and
// what /proc says about a process: CPU seconds (utime + stime) and resident memory.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";

const children = new Set<ChildProcess>();

export interface Started {
  child: ChildProcess;
  pid: number;
  output(): string;
}

/** Start `argv`; resolves once `ready` matches its output (stdout or stderr), within `timeoutMs`. */
export function start(
  argv: readonly string[],
  ready: RegExp | null,
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<Started & { match: RegExpExecArray | null }> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error("start: empty command");
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let out = "";
  const onData = (d: Buffer): void => {
    out = (out + d.toString("utf8")).slice(-65_536);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const started = { child, pid: child.pid ?? 0, output: () => out };
  if (!ready) return Promise.resolve({ ...started, match: null });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${argv.join(" ")}: not ready in ${opts.timeoutMs ?? 30_000} ms:\n${out}`));
    }, opts.timeoutMs ?? 30_000);
    const check = (): void => {
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off("data", check);
        child.stderr?.off("data", check);
        resolve({ ...started, match: m });
      }
    };
    child.stdout?.on("data", check);
    child.stderr?.on("data", check);
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")}: exited (${code ?? sig}) before ready:\n${out}`));
    });
  });
}

/** Run to completion (bounded by `timeoutMs`); resolves with stdout, rejects on a non-zero exit. */
export function run(argv: readonly string[], timeoutMs = 60_000, opts: SpawnOptions = {}): Promise<string> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error("run: empty command");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    children.add(child);
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.stderr?.on("data", (d: Buffer) => (err = (err + d.toString("utf8")).slice(-8192)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(" ")}: exit ${code ?? sig}\n${err}\n${out.slice(-2000)}`));
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export function stop(child: ChildProcess, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stop(c, 3_000)));
}

/** Kill everything now (from a signal handler or exit). */
export function killAll(): void {
  for (const c of children) c.kill("SIGKILL");
}

const CLK_TCK = 100; // Linux USER_HZ on every architecture Node supports.

/** utime + stime of the whole process (all threads), in seconds; NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size (VmRSS) in KiB; NaN if the process is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Read and write system calls the process made so far (/proc/PID/io syscr + syscw); NaN if gone. */
export function ioSyscalls(pid: number): number {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    const r = /^syscr:\s+(\d+)/m.exec(io);
    const w = /^syscw:\s+(\d+)/m.exec(io);
    return r && w ? Number(r[1]) + Number(w[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
