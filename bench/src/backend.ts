// The benchmark's backend, the same for every scenario: an HTTP/1.1 server answering every GET
// with a fixed body (1 KiB by default), keep-alive unless the request says Connection: close.
// Usage: node backend.js HOST[,HOST…] PORT [BODY_BYTES] — prints "listening HOST:PORT" for each
// address once it listens there (one process serves every address: the same backend for all).
import * as net from "node:net";
import { RequestCounter, responseBytes } from "./http1.js";

const [host = "127.0.0.1", portText = "9100", bodyText = "1024"] = process.argv.slice(2);
const response = responseBytes(Number(bodyText));

const onConnection = (s: net.Socket): void => {
  const counter = new RequestCounter();
  s.on("data", (d: Buffer) => {
    let r;
    try {
      r = counter.push(d);
    } catch {
      s.destroy();
      return;
    }
    for (let i = 0; i < r.requests; i++) s.write(response);
    if (r.close) s.end();
  });
  s.on("error", () => undefined);
};
for (const h of host.split(",")) {
  const server = net.createServer({ noDelay: true }, onConnection);
  server.maxConnections = 50_000;
  server.listen({ host: h, port: Number(portText), backlog: 4096 }, () => {
    console.log(`listening ${h}:${portText}`);
  });
}
process.on("SIGTERM", () => process.exit(0));
