// Test helpers: the repository root and running the real `ambit` executable as a child process.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Compiled tests live in <root>/dist/test/<tier>/...; walk up to the directory holding package.json. */
export function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const idx = here.lastIndexOf(`${"/"}dist${"/"}`);
  return idx >= 0 ? here.slice(0, idx) : join(here, "..", "..");
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `bin/ambit.js ARGS` with a time limit; stdin is closed (or fed `input`). */
export function runAmbit(
  args: readonly string[],
  opts: { input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return runProgram(process.execPath, [join(repoRoot(), "bin", "ambit.js"), ...args], opts);
}

/** Run any program with a time limit (killed when it is up); stdin is closed (or fed `input`). */
export function runProgram(
  file: string,
  args: readonly string[],
  opts: { input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd ?? repoRoot(),
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs ?? 30_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}
