// Terminal output for commands: one place that writes, so commands stay testable and quiet by default.
import type { Problem } from "../model/resources/problem.js";
import { formatProblem } from "../model/resources/problem.js";

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Print problems sorted by file, document and line, one per line. */
export function printProblems(io: Io, problems: readonly Problem[]): void {
  const sorted = [...problems].sort(
    (a, b) => a.file.localeCompare(b.file) || a.index - b.index || (a.line ?? 0) - (b.line ?? 0),
  );
  for (const p of sorted) io.err(formatProblem(p));
}

/** Collector for repeatable options such as `-f a -f b`. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
