// Serves the agent desktop example and passes /v2/… and /client/… on to
// the ccevents REST API, so the page, the API and the client module share
// one origin, as they would behind a production reverse proxy.
//
//   node serve.mjs --api http://127.0.0.1:8000 --port 8080
//   open http://127.0.0.1:8080/?ws=ws://127.0.0.1:5555
import { createServer, request } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { api: { type: "string", default: "http://127.0.0.1:8000" }, port: { type: "string", default: "8080" }, host: { type: "string", default: "127.0.0.1" } } });
const here = dirname(fileURLToPath(import.meta.url));
const api = new URL(values.api);
const files = { "/": ["index.html", "text/html"], "/agent-desktop.js": ["agent-desktop.js", "text/javascript"], "/agent-desktop.css": ["agent-desktop.css", "text/css"] };

const server = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path.startsWith("/v2/") || path.startsWith("/client/")) {
    const up = request({ host: api.hostname, port: api.port, method: req.method, path: req.url, headers: { ...req.headers, host: api.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", (err) => {
      res.writeHead(502, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ status: "error", message: `the ccevents API at ${api.origin} did not answer: ${err.message}` }));
    });
    req.pipe(up);
    return;
  }
  const f = files[path];
  if (!f) {
    res.writeHead(404).end("not found");
    return;
  }
  res.writeHead(200, { "Content-Type": `${f[1]}; charset=utf-8`, "Cache-Control": "no-cache" });
  res.end(await readFile(join(here, f[0])));
});
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address();
  console.log(`agent desktop on http://${values.host}:${port}/ (API ${api.origin})`);
});
