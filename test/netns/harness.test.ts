// The netns tier's foundation: namespaces, veth links, processes inside them, in-namespace iptables
// redirection (what in-pod capture relies on), and cleanup that leaves nothing behind.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NetnsHarness, requireRoot, waitForOutput } from "../support/netns.js";

const SERVER = `
const net = require("node:net");
const srv = net.createServer((s) => { s.end("served-by-port-" + s.localPort + "-for-" + s.remoteAddress + "\\n"); });
srv.listen(Number(process.argv[1]), "0.0.0.0", () => console.log("listening"));
`;
const CLIENT = `
const net = require("node:net");
const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 5000 });
let out = ""; s.setEncoding("utf8"); s.on("data", (d) => out += d);
s.on("end", () => { process.stdout.write(out); process.exit(0); });
s.on("timeout", () => { console.error("timeout"); process.exit(3); });
s.on("error", (e) => { console.error(e.code); process.exit(4); });
`;

describe("netns harness", () => {
  const lab = new NetnsHarness("h");
  let client = "";
  let server = "";

  before(async () => {
    requireRoot();
    client = await lab.addNamespace("client");
    server = await lab.addNamespace("server");
    await lab.link(client, "10.199.0.1/30", server, "10.199.0.2/30");
  });

  after(async () => {
    await lab.cleanup();
  });

  test("TCP crosses a veth link between two namespaces", async () => {
    const srv = lab.spawn(server, [process.execPath, "-e", SERVER, "8080"]);
    await waitForOutput(srv, "listening");
    const { stdout } = await lab.exec(client, [process.execPath, "-e", CLIENT, "10.199.0.2", "8080"]);
    assert.equal(stdout.trim(), "served-by-port-8080-for-10.199.0.1");
    srv.kill();
  });

  test("iptables REDIRECT inside a namespace delivers to the capture port and keeps the client address", async () => {
    const srv = lab.spawn(server, [process.execPath, "-e", SERVER, "15006"]);
    await waitForOutput(srv, "listening");
    await lab.exec(server, [
      "iptables",
      "-t",
      "nat",
      "-A",
      "PREROUTING",
      "-p",
      "tcp",
      "--dport",
      "9080",
      "-j",
      "REDIRECT",
      "--to-ports",
      "15006",
    ]);
    try {
      const { stdout } = await lab.exec(client, [process.execPath, "-e", CLIENT, "10.199.0.2", "9080"]);
      assert.equal(stdout.trim(), "served-by-port-15006-for-10.199.0.1");
    } finally {
      await lab.exec(server, ["iptables", "-t", "nat", "-F", "PREROUTING"]);
      srv.kill();
    }
  });

  test("a connection to a port nobody listens on is refused (no silent fallback)", async () => {
    await assert.rejects(
      lab.exec(client, [process.execPath, "-e", CLIENT, "10.199.0.2", "7777"]),
      (err: Error & { stderr?: string }) => {
        assert.match(err.stderr ?? "", /ECONNREFUSED/);
        return true;
      },
    );
  });

  test("cleanup removes every namespace the harness created", async () => {
    const extra = new NetnsHarness("c");
    await extra.addNamespace("one");
    await extra.addNamespace("two");
    assert.equal((await extra.listOwn()).length, 2);
    await extra.cleanup();
    assert.deepEqual(await extra.listOwn(), []);
  });
});
