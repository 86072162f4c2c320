// Reads resource files for the CLI and the control plane: files, directories (recursively, *.yaml,
// *.yml, *.json) and "-" for stdin, then hands the texts to the pure model for validation.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { loadTexts, type LoadResult } from "../model/resources/load.js";
import type { Problem } from "../model/resources/problem.js";

const RESOURCE_EXT = /\.(ya?ml|json)$/i;
const READ_CONCURRENCY = 32;

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
  // Each path yields its texts and problems in order; a directory's entries are read a bounded
  // number at a time (a config directory holds one file per resource: hundreds of files).
  type Out = { texts: SourceText[]; problems: Problem[] };
  const cannotRead = (path: string, err: unknown): Out => ({
    texts: [],
    problems: [fileProblem(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)],
  });
  const visit = async (path: string, explicit: boolean): Promise<Out> => {
    if (path === "-") return { texts: [{ file: "<stdin>", text: await readStdin() }], problems: [] };
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      return cannotRead(path, err);
    }
    if (st.isDirectory()) {
      const entries = (await readdir(path)).sort().filter((e) => !e.startsWith("."));
      const outs = new Array<Out>(entries.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < entries.length) {
          const i = next++;
          outs[i] = await visit(join(path, entries[i] as string), false);
        }
      };
      await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, entries.length) }, worker));
      return { texts: outs.flatMap((o) => o.texts), problems: outs.flatMap((o) => o.problems) };
    }
    if (!explicit && !RESOURCE_EXT.test(path)) return { texts: [], problems: [] };
    try {
      return { texts: [{ file: path, text: await readFile(path, "utf8") }], problems: [] };
    } catch (err) {
      return cannotRead(path, err);
    }
  };
  for (const p of paths) {
    const o = await visit(p, true);
    texts.push(...o.texts);
    problems.push(...o.problems);
  }
  return { texts, problems };
}

/** Read and validate resource files as one set (duplicates are detected across all of them). */
export async function loadResourceFiles(paths: readonly string[]): Promise<LoadResult> {
  const { texts, problems } = await readSources(paths);
  const loaded = loadTexts(texts);
  return { resources: loaded.resources, problems: [...problems, ...loaded.problems] };
}
