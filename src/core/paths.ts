// Where the installed package lives, for bundled files (examples, docs) found at run time.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository/package root: this file is at <root>/src/core or <root>/dist/src/core. */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${"/"}dist${"/"}`) ? join(here, "..", "..", "..") : join(here, "..", "..");
  return up;
}
