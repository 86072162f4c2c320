// Where the CLI and the control plane keep state: --state-dir, else $AMBIT_STATE_DIR, else ~/.ambit.
import { homedir } from "node:os";
import { join } from "node:path";

export function defaultStateDir(): string {
  return process.env.AMBIT_STATE_DIR ?? join(homedir(), ".ambit");
}
