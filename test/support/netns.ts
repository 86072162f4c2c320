// Network-namespace harness for the netns tier: creates uniquely named namespaces and veth links,
// runs processes inside them, and removes everything it made — also when a test fails.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export function requireRoot(): void {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error(
      "the netns test tier needs root (network namespaces, veth, iptables); run it as root — CI does",
    );
  }
}

export class NetnsHarness {
  private readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];
  private seq = 0;

  constructor(tag: string) {
    // Kernel interface names are limited to 15 characters; namespace names are not, but keep them short.
    this.prefix = `ambt-${tag}-${process.pid % 100000}`;
  }

  async addNamespace(name: string): Promise<string> {
    const full = `${this.prefix}-${name}`;
    await run("ip", ["netns", "add", full]);
    this.namespaces.push(full);
    await this.exec(full, ["ip", "link", "set", "lo", "up"]);
    return full;
  }

  /** A veth pair between two namespaces with an address (CIDR form) on each end. */
  async link(nsA: string, addrA: string, nsB: string, addrB: string): Promise<void> {
    const n = this.seq++;
    const a = `av${process.pid % 10000}x${n}a`;
    const b = `av${process.pid % 10000}x${n}b`;
    await run("ip", ["link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB]);
    await this.exec(nsA, ["ip", "addr", "add", addrA, "dev", a]);
    await this.exec(nsB, ["ip", "addr", "add", addrB, "dev", b]);
    await this.exec(nsA, ["ip", "link", "set", a, "up"]);
    await this.exec(nsB, ["ip", "link", "set", b, "up"]);
  }

  async exec(ns: string, argv: readonly string[]): Promise<{ stdout: string; stderr: string }> {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error("exec: empty command");
    return run("ip", ["netns", "exec", ns, cmd, ...args], { timeout: 20_000 });
  }

  /** Start a long-running process inside a namespace; it is killed at cleanup. */
  spawn(ns: string, argv: readonly string[]): ChildProcess {
    const child = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    this.children.push(child);
    return child;
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
    for (const ns of this.namespaces.splice(0)) {
      await run("ip", ["netns", "del", ns]).catch(() => undefined);
    }
  }

  async listOwn(): Promise<string[]> {
    const { stdout } = await run("ip", ["netns", "list"]);
    return stdout
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((n) => n.startsWith(this.prefix));
  }
}

/** Resolve when the child prints a line containing `marker` on stdout (bounded by a timeout). */
export function waitForOutput(child: ChildProcess, marker: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for "${marker}"; got: ${buf}`)),
      timeoutMs,
    );
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      if (buf.includes(marker)) {
        clearTimeout(timer);
        resolve(buf);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before printing "${marker}": ${buf}`));
    });
  });
}
