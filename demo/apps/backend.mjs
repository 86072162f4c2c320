// Demo backend: answers every request with JSON naming itself and the caller's address.
// A plain HTTP server that knows nothing about the mesh.
import http from "node:http";

const port = Number(process.env.PORT ?? 9090);
http
  .createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ service: "backend", path: req.url, caller: req.socket.remoteAddress }) + "\n");
  })
  .listen(port, () => console.log(`backend listening on ${port}`));
