// Entry point of the `ambit-cni` executable: reads the network configuration from stdin, the
// invocation from CNI_* variables, and prints the result or a CNI error object.
import { runCni } from "./plugin.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const stdin = process.env.CNI_COMMAND === "VERSION" ? "" : await readStdin();
const out = await runCni(process.env, stdin);
process.stdout.write(out.stdout);
process.exitCode = out.exitCode;
