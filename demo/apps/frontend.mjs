// Demo frontend: "/" calls the backend by its Service name and returns both answers;
// "/ticks" streams a line every 200 ms for as long as the connection stays open.
// A plain HTTP server that knows nothing about the mesh.
import http from "node:http";

const port = Number(process.env.PORT ?? 8080);
const backend = process.env.BACKEND_URL ?? "http://backend:9090/";

http
  .createServer((req, res) => {
    if (req.url === "/ticks") {
      res.writeHead(200, { "content-type": "text/plain" });
      let n = 0;
      const timer = setInterval(() => res.write(`tick ${++n}\n`), 200);
      res.on("close", () => clearInterval(timer));
      return;
    }
    http
      .get(backend, { timeout: 5000 }, (up) => {
        let body = "";
        up.on("data", (c) => (body += c));
        up.on("end", () => {
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({
              service: "frontend",
              caller: req.socket.remoteAddress,
              backend: JSON.parse(body),
            }) + "\n",
          );
        });
      })
      .on("error", (err) => {
        res.statusCode = 502;
        res.end(JSON.stringify({ service: "frontend", error: `backend: ${err.message}` }) + "\n");
      });
  })
  .listen(port, () => console.log(`frontend listening on ${port}`));
