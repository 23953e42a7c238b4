// A real `ccevents serve` for the tests: built from this repository with
// `go build` (once per run, into .cache/), started on free loopback ports
// with its data in a temporary directory, stopped as an operator would
// (SIGINT) and started again on the same ports and data to restart it.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(pkg, "..", "..");

/** The ccevents binary: $CCEVENTS_BIN, or built from the repository into .cache/. */
export function binary() {
  if (process.env.CCEVENTS_BIN) return process.env.CCEVENTS_BIN;
  const bin = join(pkg, ".cache", "ccevents");
  // `go build` is quick when nothing changed; run it anyway so a stale
  // binary never tests old code.
  execFileSync("go", ["build", "-o", bin, "./cmd/ccevents"], { cwd: repo, stdio: "inherit" });
  return bin;
}

let built;

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls cond until it returns a truthy value, or fails after ms with what. */
export async function eventually(what, cond, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts a server. extraArgs are added to serve's flags. The returned
 * object has wsUrl, apiUrl, accountId and apiKey (the root account), and
 * stop(), start() and restart().
 */
export async function startServer(extraArgs = []) {
  built ??= binary();
  const dataDir = mkdtempSync(join(tmpdir(), "ccevents-ts-"));
  const [wsPort, apiPort] = [await freePort(), await freePort()];
  const srv = {
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    dataDir,
    logPath: join(dataDir, "serve.log"),
    proc: null,
    accountId: "",
    apiKey: "",
    async start() {
      const log = openSync(this.logPath, "a");
      const args = ["serve", "--data-dir", join(dataDir, "data"), "--ws-addr", `127.0.0.1:${wsPort}`, "--api-addr", `127.0.0.1:${apiPort}`,
        "--nats-listen", "", "--log-level", "warn", ...extraArgs];
      const proc = spawn(built, args, { stdio: ["ignore", log, log] });
      this.proc = proc;
      proc.exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
      await eventually("ccevents serve ready", async () => {
        if (proc.exitCode !== null) throw new Error(`ccevents serve exited (${proc.exitCode}):\n${readFileSync(this.logPath, "utf8")}`);
        const root = join(dataDir, "data", "root.json");
        if (!existsSync(root) || statSync(root).size === 0) return false;
        const r = await fetch(`${this.apiUrl}/readyz`);
        if (!r.ok) return false;
        const { account_id, api_key } = JSON.parse(readFileSync(root, "utf8"));
        this.accountId = account_id;
        this.apiKey = api_key;
        return true;
      }, 60000).catch((err) => {
        if (proc.exitCode !== null) throw err;
        throw new Error(`${err.message}\n${readFileSync(this.logPath, "utf8")}`);
      });
    },
    async stop() {
      const proc = this.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGINT");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 30000);
      await proc.exited;
      clearTimeout(killer);
    },
    async restart() {
      await this.stop();
      await this.start();
    },
    async close() {
      await this.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
    /** Logs in with the root API key. */
    async token() {
      const r = await fetch(`${this.apiUrl}/v2/api_auth`, { method: "PUT", body: JSON.stringify({ data: { api_key: this.apiKey } }) });
      return (await r.json()).auth_token;
    },
  };
  await srv.start();
  return srv;
}

/**
 * Publishes a queue.join through the REST API and resolves to its stream
 * sequence; it rejects while the API is down.
 */
export async function publishJoin(srv, token, queue = "support", n = 1) {
  const body = {
    data: {
      routing_key: `qubicle.queue.${srv.accountId}.${queue}.join`,
      payload: { session_id: `call-${n}`, caller_id_number: `+1555${String(n).padStart(7, "0")}`, position: 1, estimated_wait_s: 30 },
    },
  };
  const r = await fetch(`${srv.apiUrl}/v2/accounts/${srv.accountId}/events`, {
    method: "POST",
    headers: { "X-Auth-Token": token, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const out = await r.json();
  if (!r.ok) throw new Error(`publish: ${r.status} ${out.message}`);
  return out.data.sequence;
}

/** Resolves the sequences a fresh client replays after `after`, up to count of them. */
export async function replay(connect, srv, binding, after, count) {
  const got = [];
  const cc = await connect({ url: srv.wsUrl, apiKey: srv.apiKey, apiUrl: srv.apiUrl });
  try {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`replay: ${got.length} of ${count} events within 30 s`)), 30000);
      cc.subscribe(srv.accountId, binding, (ev) => {
        got.push([ev.sequence, ev.epoch]);
        if (got.length === count) {
          clearTimeout(t);
          resolve();
        }
      }, { since: after }).catch(reject);
    });
  } finally {
    cc.close();
  }
  return got;
}
