// `ambit validate -f PATH...`: every problem in every file, or a one-line summary when all is valid.
import type { Command } from "commander";
import { loadResourceFiles } from "../../config/files.js";
import { collect, printProblems, type Io } from "../io.js";

export function registerValidate(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command("validate")
    .description("validate resource files (YAML or JSON; files or directories) and report every problem")
    .requiredOption(
      "-f, --filename <path>",
      "file or directory to validate (repeatable; - for stdin)",
      collect,
      [],
    )
    .action(async (opts: { filename: string[] }) => {
      const { resources, problems } = await loadResourceFiles(opts.filename);
      if (problems.length > 0) {
        printProblems(io, problems);
        const files = new Set(problems.map((p) => p.file)).size;
        io.err(
          `${problems.length} problem${problems.length === 1 ? "" : "s"} in ${files} file${files === 1 ? "" : "s"}`,
        );
        setExit(1);
        return;
      }
      const byKind = new Map<string, number>();
      for (const r of resources) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
      const kinds = [...byKind].map(([k, n]) => `${n} ${k}`).join(", ");
      io.out(
        `valid: ${resources.length} resource${resources.length === 1 ? "" : "s"}${kinds ? ` (${kinds})` : ""}`,
      );
      setExit(0);
    });
}
