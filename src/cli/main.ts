// The `ambit` command line: builds the command tree and maps outcomes to exit codes
// (0 success, 1 the command found problems, 2 usage or invalid input).
import { Command, CommanderError } from "commander";
import { registerAuthz } from "./commands/authz.js";
import { registerDemo } from "./commands/demo.js";
import { registerValidate } from "./commands/validate.js";
import { registerCa } from "./commands/ca.js";
import { registerControlPlane } from "./commands/control-plane.js";
import { registerNode } from "./commands/node.js";
import { registerWaypoint } from "./commands/waypoint.js";
import { registerLab } from "./commands/lab.js";
import { registerConfig } from "./commands/config.js";
import { registerProxyStatus } from "./commands/proxy-status.js";
import { isAmbitError } from "../core/errors.js";
import { processIo, type Io } from "./io.js";
import { VERSION } from "../core/version.js";

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode = 0;
  const setExit = (code: number): void => {
    exitCode = code;
  };
  const program = new Command("ambit")
    .description("Ambit: a sidecar-less, zero-trust service mesh (Istio ambient compatible)")
    .version(VERSION, "-v, --version")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (s) => io.out(s.trimEnd()),
      writeErr: (s) => io.err(s.trimEnd()),
      outputError: (s, write) => write(`${s.trimEnd()} [AMBIT_E_USAGE]\n`),
    })
    .exitOverride()
    // `ambit node --control-plane ...` and `ambit node join --control-plane ...` share option names.
    .enablePositionalOptions();
  registerValidate(program, io, setExit);
  registerAuthz(program, io, setExit);
  registerDemo(program, io, setExit);
  registerControlPlane(program, io, setExit);
  registerNode(program, io, setExit);
  registerWaypoint(program, io, setExit);
  registerLab(program, io, setExit);
  registerCa(program, io, setExit);
  registerConfig(program, io, setExit);
  registerProxyStatus(program, io, setExit);
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit through here with code 0; everything else is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (isAmbitError(err)) {
      io.err(`ambit: ${err.message} [${err.code}]`);
      return err.code === "AMBIT_E_USAGE" ? 2 : 1;
    }
    throw err;
  }
  return exitCode;
}
