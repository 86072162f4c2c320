// Demo backend: answers every request with JSON naming itself and the caller's address, and the
// caller's identity when a waypoint tells it (x-forwarded-client-cert). A plain HTTP server that
// knows nothing about the mesh.
import http from "node:http";

const port = Number(process.env.PORT ?? 9090);
http
  .createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    const xfcc = req.headers["x-forwarded-client-cert"];
    res.end(
      JSON.stringify({
        service: "backend",
        path: req.url,
        caller: req.socket.remoteAddress,
        ...(xfcc ? { identity: /URI=([^;,]+)/.exec(xfcc)?.[1] ?? xfcc } : {}),
      }) + "\n",
    );
  })
  .listen(port, () => console.log(`backend listening on ${port}`));
