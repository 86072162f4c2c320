// `ambit demo`: the newcomer's tour of a real two-node mesh (see src/lab/demo.ts).
import type { Command } from "commander";
import { runDemo } from "../../lab/demo.js";
import type { Io } from "../io.js";

export function registerDemo(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command("demo")
    .description(
      "build a two-node lab, deploy a sample app and check, step by step, what the mesh does (root)",
    )
    .option("--keep", "leave the lab up afterwards")
    .action(async (opts: { keep?: boolean }) => {
      const ok = await runDemo({ keep: opts.keep === true, say: (l) => io.out(l) });
      setExit(ok ? 0 : 1);
    });
}
