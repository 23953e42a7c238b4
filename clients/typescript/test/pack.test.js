// `npm pack` gives a package that installs into a fresh project, imports
// in Node (with ws, as Node 20 needs), type-checks through its export map,
// and talks to a real gateway.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startServer } from "./harness.js";

const run = promisify(execFile);
const pkg = fileURLToPath(new URL("..", import.meta.url));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

let srv;
let dir;
before(async () => {
  srv = await startServer();
  dir = mkdtempSync(join(tmpdir(), "ccevents-pack-"));
});
after(async () => {
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("npm pack installs into a fresh project, imports, type-checks and connects", async () => {
  // dist/ is already built and checked by `npm test`: skip the prepack rebuild.
  const { stdout } = await run(npm, ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: pkg });
  const [packed] = JSON.parse(stdout);
  const files = packed.files.map((f) => f.path).sort();
  assert.ok(files.includes("dist/index.js") && files.includes("dist/index.d.ts") && files.includes("dist/node.js") && files.includes("dist/events.d.ts"), `packed: ${files}`);
  assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("node_modules/")), `packed too much: ${files}`);

  const app = join(dir, "app");
  await run("mkdir", ["-p", app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  // ws comes from the npm cache this package's own install filled.
  await run(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", join(dir, packed.filename), "ws@8"], { cwd: app, timeout: 120000 });
  assert.ok(readdirSync(join(app, "node_modules", "@ccevents", "client", "dist")).includes("node.js"));

  // Types through the export map, as a user's TypeScript sees them.
  writeFileSync(join(app, "check.ts"), `
import { connect, type CCEvent, type QueueJoin } from "@ccevents/client";
export async function f(): Promise<number> {
  const cc = await connect({ url: "ws://127.0.0.1:1", token: "t" });
  let pos = 0;
  await cc.subscribe("acc", "qubicle.queue.acc.*", (ev: CCEvent) => {
    if (ev.data.event === "queue.join") { const j: QueueJoin = ev.data; pos = j.position; }
  });
  return pos;
}
`);
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, lib: ["ES2022", "DOM"], types: [] }, files: ["check.ts"] }));
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  await run(process.execPath, [tsc, "-p", app]);

  // And it works: the installed package receives an event from the gateway.
  const token = await srv.token();
  writeFileSync(join(app, "live.js"), `
import { connect } from "@ccevents/client";
const cc = await connect({ url: ${JSON.stringify(srv.wsUrl)}, apiKey: ${JSON.stringify(srv.apiKey)}, apiUrl: ${JSON.stringify(srv.apiUrl)} });
await new Promise((resolve, reject) => {
  setTimeout(() => reject(new Error("no event within 20 s")), 20000).unref();
  cc.subscribe(${JSON.stringify(srv.accountId)}, "qubicle.queue.${srv.accountId}.packed", (ev) => { console.log(ev.data.event); resolve(); })
    .then(() => fetch(${JSON.stringify(`${srv.apiUrl}/v2/accounts/${srv.accountId}/events`)}, { method: "POST", headers: { "X-Auth-Token": ${JSON.stringify(token)} },
      body: JSON.stringify({ data: { routing_key: "qubicle.queue.${srv.accountId}.packed.join", payload: { session_id: "p1", caller_id_number: "+1555", position: 1, estimated_wait_s: 1 } } }) }), reject);
});
cc.close();
`);
  const live = await run(process.execPath, ["live.js"], { cwd: app, timeout: 30000 });
  assert.equal(live.stdout, "queue.join\n");
});
