// The client against a real `ccevents serve` (see harness.js): typed
// events, refusals, a gateway restart mid-stream, a gateway that stops
// answering, resync, snapshot then since, token renewal and close.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { WebSocket as WS } from "ws";
import { CCEvents, CCEventsError, connect } from "../dist/node.js";
import * as browserEntry from "../dist/index.js";
import { eventually, publishJoin, replay, startServer } from "./harness.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let srv;
let token;
before(async () => {
  srv = await startServer();
  token = await srv.token();
});
after(async () => {
  await srv?.close();
});

/** Watches a client's status and notice events. */
function watch(cc) {
  const w = { states: [], notices: [] };
  cc.addEventListener("status", (e) => w.states.push(e.detail.state));
  cc.addEventListener("notice", (e) => w.notices.push(e.detail.reason));
  return w;
}

function assertIncreasing(seen) {
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i][0] > seen[i - 1][0], `sequence ${seen[i][0]} after ${seen[i - 1][0]}: not in order, or twice`);
  }
}

test("subscribes with an API key and hands typed events to the handler in stream order", async () => {
  const cc = await connect({ url: srv.wsUrl, apiKey: srv.apiKey, apiUrl: srv.apiUrl });
  try {
    assert.equal(cc.token.accountId, srv.accountId);
    assert.ok(cc.token.expiresAt > Date.now());
    const got = [];
    const sub = await cc.subscribe(srv.accountId, `qubicle.queue.${srv.accountId}.typed.*`, (ev) => got.push(ev));
    const seqs = [];
    for (let i = 1; i <= 5; i++) seqs.push(await publishJoin(srv, token, "typed", i));
    await eventually("five events", () => got.length === 5);
    assert.deepEqual(got.map((e) => e.sequence), seqs);
    const ev = got[4];
    assert.equal(ev.data.event, "queue.join");
    assert.equal(ev.data.queue_id, "typed");
    assert.equal(ev.data.sequence, ev.sequence);
    assert.equal(ev.routing_key, `qubicle.queue.${srv.accountId}.typed.join`);
    assert.deepEqual(sub.position, { sequence: seqs[4], epoch: ev.epoch });
  } finally {
    cc.close();
  }
  assert.equal(await cc.closed, null);
  assert.equal(cc.state, "closed");
});

test("a refused subscription rejects with the gateway's explanation and the client stays usable", async () => {
  const cc = await connect({ url: srv.wsUrl, token });
  try {
    const other = "0".repeat(32);
    await assert.rejects(cc.subscribe(srv.accountId, `qubicle.queue.${other}.*`, () => {}), (err) => {
      assert.ok(err instanceof CCEventsError);
      assert.match(err.message, /account/);
      return true;
    });
    const got = [];
    await cc.subscribe(srv.accountId, `qubicle.queue.${srv.accountId}.after-refusal`, (ev) => got.push(ev.sequence));
    const seq = await publishJoin(srv, token, "after-refusal");
    await eventually("event after the refusal", () => got[0] === seq);
  } finally {
    cc.close();
  }
  await assert.rejects(() => connect({ url: srv.wsUrl, apiKey: "not-a-key", apiUrl: srv.apiUrl }), (err) => err.status === 401);
});

test("a gateway restart mid-stream: every event once and in order, none missed", async () => {
  const binding = `qubicle.queue.${srv.accountId}.restart`;
  const cc = await connect({ url: srv.wsUrl, apiKey: srv.apiKey, apiUrl: srv.apiUrl, minBackoffMs: 100, maxBackoffMs: 1000 });
  const w = watch(cc);
  const seen = [];
  await cc.subscribe(srv.accountId, binding, (ev) => seen.push([ev.sequence, ev.epoch]));

  // Publish without pause before, during and after the restart; the
  // publishes the API could not take while down are simply not made.
  const acked = [];
  let stop = false;
  let n = 0;
  const publisher = (async () => {
    while (!stop) {
      try {
        acked.push(await publishJoin(srv, token, "restart", ++n));
      } catch {
        await sleep(50);
      }
      await sleep(5);
    }
  })();
  try {
    await eventually("events before the restart", () => seen.length >= 20);
    await srv.restart();
    const atRestart = acked.length;
    await eventually("publishes after the restart", () => acked.length >= atRestart + 30);
  } finally {
    stop = true;
    await publisher;
  }
  const last = acked[acked.length - 1];
  await eventually("every published event received", () => seen.length > 0 && seen[seen.length - 1][0] >= last);
  cc.close();

  assert.ok(w.notices.includes("shutdown"), `notices: ${w.notices}`);
  assert.ok(w.states.includes("disconnected") && w.states.lastIndexOf("connected") > w.states.indexOf("disconnected"), `states: ${w.states}`);
  assertIncreasing(seen);
  const got = new Set(seen.map((s) => s[0]));
  for (const seq of acked) assert.ok(got.has(seq), `published sequence ${seq} was never handed to the handler`);
  // A fresh client replaying from history sees exactly the same events.
  const replayed = await replay(connect, srv, binding, { sequence: seen[0][0] - 1, epoch: seen[0][1] }, seen.length);
  assert.deepEqual(seen, replayed);
});

test("a gateway that stops answering is replaced and the stream resumes (heartbeat)", async () => {
  const binding = `qubicle.queue.${srv.accountId}.heartbeat`;
  const cc = await connect({ url: srv.wsUrl, apiKey: srv.apiKey, apiUrl: srv.apiUrl, pingIntervalMs: 200, requestTimeoutMs: 1000, minBackoffMs: 100, maxBackoffMs: 500 });
  const w = watch(cc);
  const seen = [];
  await cc.subscribe(srv.accountId, binding, (ev) => seen.push([ev.sequence, ev.epoch]));
  const first = await publishJoin(srv, token, "heartbeat", 1);
  await eventually("first event", () => seen.length === 1);
  try {
    srv.proc.kill("SIGSTOP");
    try {
      await eventually("the silent gateway noticed", () => w.states.includes("disconnected"), 20000);
    } finally {
      srv.proc.kill("SIGCONT");
    }
    const seqs = [first];
    for (let i = 2; i <= 4; i++) seqs.push(await publishJoin(srv, token, "heartbeat", i));
    await eventually("events after the gateway answers again", () => seen.length === 4);
    assert.deepEqual(seen.map((s) => s[0]), seqs);
  } finally {
    cc.close();
  }
});

test("resuming from a history that is not the gateway's calls onResync, then events flow", async () => {
  const cc = await connect({ url: srv.wsUrl, apiKey: srv.apiKey, apiUrl: srv.apiUrl });
  try {
    const resyncs = [];
    const got = [];
    await cc.subscribe(srv.accountId, `qubicle.queue.${srv.accountId}.resync`, (ev) => got.push(ev.sequence), {
      since: { sequence: 1, epoch: "0000000000000000" },
      onResync: (r) => resyncs.push(r),
    });
    await eventually("onResync", () => resyncs.length === 1);
    assert.equal(resyncs[0].binding, `qubicle.queue.${srv.accountId}.resync`);
    assert.deepEqual(resyncs[0].from, { sequence: 1, epoch: "0000000000000000" });
    assert.match(resyncs[0].reason, /epoch/);
    const seq = await publishJoin(srv, token, "resync");
    await eventually("the live event after the resync", () => got.includes(seq));
  } finally {
    cc.close();
  }
});

test("snapshot then since applies exactly the events after the snapshot", async () => {
  await publishJoin(srv, token, "snap", 1); // before the snapshot: must not arrive
  const cc = await connect({ url: srv.wsUrl, apiKey: srv.apiKey, apiUrl: srv.apiUrl });
  try {
    const snap = await cc.snapshot(srv.accountId);
    assert.equal(snap.account_id, srv.accountId);
    assert.ok(Array.isArray(snap.queues) && Array.isArray(snap.recipients));
    const after = [await publishJoin(srv, token, "snap", 2), await publishJoin(srv, token, "snap", 3)];
    const got = [];
    await cc.subscribe(srv.accountId, `qubicle.queue.${srv.accountId}.snap`, (ev) => got.push(ev.sequence), {
      since: { sequence: snap.sequence, epoch: snap.epoch },
    });
    await eventually("the events after the snapshot", () => got.length === 2);
    assert.deepEqual(got, after);
  } finally {
    cc.close();
  }
});

test("an async handler holds the next event until it settles, and close stops handlers", async () => {
  const cc = await connect({ url: srv.wsUrl, token });
  const order = [];
  let running = 0;
  const sub = await cc.subscribe(srv.accountId, `qubicle.queue.${srv.accountId}.async`, async (ev) => {
    running++;
    assert.equal(running, 1, "handlers overlapped");
    await sleep(20);
    order.push(ev.sequence);
    running--;
  });
  const seqs = [];
  for (let i = 1; i <= 4; i++) seqs.push(await publishJoin(srv, token, "async", i));
  await eventually("four handled", () => order.length === 4);
  assert.deepEqual(order, seqs);
  assert.equal(sub.position.sequence, seqs[3]);
  cc.close();
  await publishJoin(srv, token, "async", 5);
  await sleep(200);
  assert.equal(order.length, 4, "a handler ran after close");
  assert.equal(await cc.closed, null);
});

test("the browser entry runs in Node with any WebSocket class and says what is missing without one", async () => {
  const cc = await browserEntry.connect({ url: srv.wsUrl, token, WebSocket: WS });
  const got = [];
  await cc.subscribe(srv.accountId, `qubicle.queue.${srv.accountId}.browser-entry`, (ev) => got.push(ev.sequence));
  const seq = await publishJoin(srv, token, "browser-entry");
  await eventually("event through the browser entry", () => got[0] === seq);
  cc.close();
  if (!globalThis.WebSocket) {
    await assert.rejects(() => browserEntry.connect({ url: srv.wsUrl, token }), /ws package|WebSocket/);
  }
  assert.ok(new CCEvents({ url: srv.wsUrl, token }) instanceof browserEntry.CCEvents);
});

test("Node's own WebSocket (node --experimental-websocket on Node 20) works without ws", async () => {
  const script = `
    const { connect } = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)});
    if (!globalThis.WebSocket) throw new Error("no global WebSocket");
    const cc = await connect({ url: ${JSON.stringify(srv.wsUrl)}, token: ${JSON.stringify(token)} });
    await new Promise((resolve, reject) => {
      setTimeout(() => reject(new Error("no event within 20 s")), 20000).unref();
      cc.subscribe(${JSON.stringify(srv.accountId)}, "qubicle.queue.${srv.accountId}.global-ws", (ev) => { console.log(ev.sequence); resolve(); })
        .then(() => fetch(${JSON.stringify(`${srv.apiUrl}/v2/accounts/${srv.accountId}/events`)}, { method: "POST", headers: { "X-Auth-Token": ${JSON.stringify(token)} },
          body: JSON.stringify({ data: { routing_key: "qubicle.queue.${srv.accountId}.global-ws.join", payload: { session_id: "g1", caller_id_number: "+1555", position: 1, estimated_wait_s: 1 } } }) }), reject);
    });
    cc.close();`;
  const flags = Number(process.versions.node.split(".")[0]) < 22 ? ["--experimental-websocket"] : [];
  const { stdout } = await promisify(execFile)(process.execPath, [...flags, "--input-type=module", "-e", script], {
    cwd: fileURLToPath(new URL(".", import.meta.url)),
    timeout: 30000,
  });
  assert.match(stdout, /^\d+\n$/);
});

test("renews the token before it expires: the connection outlives several token lifetimes", async () => {
  const short = await startServer(["--token-ttl", "3s", "--token-expiry-notice", "1s"]);
  try {
    const cc = await connect({ url: short.wsUrl, apiKey: short.apiKey, apiUrl: short.apiUrl });
    const w = watch(cc);
    const first = cc.token.token;
    const got = [];
    await cc.subscribe(short.accountId, `qubicle.queue.${short.accountId}.renew`, (ev) => got.push(ev.sequence));
    const seqs = [];
    const until = Date.now() + 8000;
    for (let i = 1; Date.now() < until; i++) {
      seqs.push(await publishJoin(short, await short.token(), "renew", i));
      await sleep(500);
    }
    await eventually("every event", () => got.length === seqs.length);
    cc.close();
    assert.deepEqual(got, seqs);
    assert.notEqual(cc.token.token, first, "the token was never renewed");
    assert.ok(!w.states.includes("disconnected"), `the connection dropped: ${w.states}`);
  } finally {
    await short.close();
  }
});
