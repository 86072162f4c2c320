// Reads resource files for the CLI and the control plane: files, directories (recursively, *.yaml,
// *.yml, *.json) and "-" for stdin, then hands the texts to the pure model for validation.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { loadTexts, type LoadResult } from "../model/resources/load.js";
import type { Problem } from "../model/resources/problem.js";

const RESOURCE_EXT = /\.(ya?ml|json)$/i;

export interface SourceText {
  file: string;
  text: string;
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Expand paths into texts; unreadable paths become problems, never exceptions. */
export async function readSources(
  paths: readonly string[],
): Promise<{ texts: SourceText[]; problems: Problem[] }> {
  const texts: SourceText[] = [];
  const problems: Problem[] = [];
  const fileProblem = (file: string, message: string): Problem => ({
    code: "AMBIT_E_FILE_READ",
    file,
    index: 0,
    path: "",
    message,
  });
  const visit = async (path: string, explicit: boolean): Promise<void> => {
    if (path === "-") {
      texts.push({ file: "<stdin>", text: await readStdin() });
      return;
    }
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      problems.push(fileProblem(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`));
      return;
    }
    if (st.isDirectory()) {
      const entries = (await readdir(path)).sort();
      for (const e of entries) {
        if (e.startsWith(".")) continue;
        await visit(join(path, e), false);
      }
      return;
    }
    if (!explicit && !RESOURCE_EXT.test(path)) return;
    try {
      texts.push({ file: path, text: await readFile(path, "utf8") });
    } catch (err) {
      problems.push(fileProblem(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`));
    }
  };
  for (const p of paths) await visit(p, true);
  return { texts, problems };
}

/** Read and validate resource files as one set (duplicates are detected across all of them). */
export async function loadResourceFiles(paths: readonly string[]): Promise<LoadResult> {
  const { texts, problems } = await readSources(paths);
  const loaded = loadTexts(texts);
  return { resources: loaded.resources, problems: [...problems, ...loaded.problems] };
}
