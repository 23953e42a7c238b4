// @ts-check
// An agent desktop on the ccevents TypeScript client: one recipient's
// state, the call ringing them (accept or decline), their queues' waiting
// callers and the events as they arrive. It loads the account's snapshot,
// then subscribes from the snapshot's position, so what it shows is exact
// and stays exact across reconnects and gateway restarts.
//
// The client is the module the gateway serves (/client/ccevents.js, built
// from this package); in an app of your own, `import … from "@ccevents/client"`.
// The JSDoc types below come from the package and are checked by its tests.

/** @typedef {import("../../src/index.js").CCEvent} CCEvent */
/** @typedef {import("../../src/index.js").CCEvents} CCEvents */
/** @typedef {import("../../src/index.js").Snapshot} Snapshot */
/** @typedef {import("../../src/index.js").RecipientState} RecipientState */
/** @typedef {import("../../src/index.js").RecipientOffer} RecipientOffer */
/** @typedef {import("../../src/index.js").Subscription} Subscription */

const clientURL = "/client/ccevents.js"; // served by the gateway and the API
const cc_module = /** @type {typeof import("../../src/index.js")} */ (await import(clientURL));
const { connect, rest, CCEventsError } = cc_module;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const params = new URLSearchParams(location.search);
const api = location.origin; // serve.mjs passes /v2/… on to the REST API
/** @type {HTMLInputElement} */ ($("ws")).value = params.get("ws") || `ws://${location.hostname}:5555`;

/** @type {CCEvents | null} */
let cc = null;
/** @type {Subscription[]} */
let subs = [];
/** What the page shows, from the snapshot and the events after it. */
const view = {
  accountId: "",
  recipientId: "",
  name: "",
  state: "logged_out",
  sinceMs: Date.now(),
  /** @type {RecipientOffer | null} */
  offer: null,
  /** @type {Map<string, {name: string, waiting: number}>} */
  queues: new Map(),
  /** Events at or before this sequence are already in the snapshot. */
  sequence: 0,
};

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("error").textContent = "";
  try {
    await start(/** @type {HTMLInputElement} */ ($("key")).value.trim(), /** @type {HTMLInputElement} */ ($("ws")).value.trim());
  } catch (err) {
    $("error").textContent = err instanceof Error ? err.message : String(err);
  }
});

/**
 * Connects with the API key, loads the snapshot and subscribes.
 * @param {string} apiKey
 * @param {string} wsUrl
 */
async function start(apiKey, wsUrl) {
  cc?.close();
  cc = await connect({ url: wsUrl, apiKey, apiUrl: api });
  cc.addEventListener("status", (e) => {
    $("conn").dataset.state = e.detail.state;
    $("conn").textContent = e.detail.state + (e.detail.error ? `: ${e.detail.error}` : "");
  });
  cc.addEventListener("error", (e) => ($("error").textContent = e.detail.error.message));
  $("conn").dataset.state = "connected";
  $("conn").textContent = "connected";
  view.accountId = cc.token.accountId;
  const snap = await loadSnapshot();
  const select = /** @type {HTMLSelectElement} */ ($("recipient"));
  const wanted = select.value || params.get("recipient") || snap.recipients[0]?.id || "";
  select.replaceChildren(...snap.recipients.map((r) => new Option(r.name || r.id, r.id, false, r.id === wanted)));
  select.disabled = false;
  select.onchange = () => void follow(select.value);
  await follow(wanted);
  $("desk").hidden = false;
}

/** Reads the account's state; events after its sequence are applied on top. */
async function loadSnapshot() {
  const snap = await /** @type {CCEvents} */ (cc).snapshot(view.accountId);
  view.sequence = snap.sequence;
  view.queues = new Map(snap.queues.map((q) => [q.id, { name: q.name, waiting: q.waiting }]));
  const me = snap.recipients.find((r) => r.id === view.recipientId);
  if (me) applyRecipient(me);
  render();
  return snap;
}

/** @param {RecipientState} r */
function applyRecipient(r) {
  view.name = r.name || r.id;
  view.state = r.state;
  view.sinceMs = r.since_ms;
  view.offer = null;
  for (const q of view.queues.keys()) if (!r.queues.includes(q)) view.queues.delete(q);
}

/**
 * Shows one recipient: its part of a fresh snapshot, then its events and
 * its queues' events from the snapshot's position on.
 * @param {string} recipientId
 */
async function follow(recipientId) {
  const client = /** @type {CCEvents} */ (cc);
  await Promise.all(subs.map((s) => s.unsubscribe()));
  view.recipientId = recipientId;
  const snap = await loadSnapshot();
  const acc = view.accountId;
  subs = await client.subscribe(acc, [`qubicle.recipient.${acc}.${recipientId}`, `qubicle.queue.${acc}.*`], onEvent, {
    since: { sequence: snap.sequence, epoch: snap.epoch ?? "" },
    // History no longer reaches back: the snapshot is the truth again.
    onResync: () => void loadSnapshot(),
  });
}

/** @param {CCEvent} ev */
function onEvent(ev) {
  if (ev.sequence <= view.sequence) return; // already in the snapshot
  const d = ev.data;
  switch (d.event) {
    case "queue.join":
    case "queue.leave": {
      const q = view.queues.get(d.queue_id);
      if (!q) return;
      q.waiting = Math.max(0, q.waiting + (d.event === "queue.join" ? 1 : -1));
      break;
    }
    case "recipient.offer":
      view.offer = d;
      break;
    case "recipient.delivered":
    case "recipient.reject":
    case "recipient.rescind":
    case "recipient.delete":
      view.offer = null;
      break;
    case "recipient.sync":
      view.state = d.state;
      view.sinceMs = d.state_since_ms;
      render();
      return;
    default:
      if (d.event.startsWith("queue.")) return;
  }
  if ("state" in d && d.recipient_id === view.recipientId) {
    view.state = d.state;
    view.sinceMs = d.timestamp_ms;
  }
  log(ev);
  render();
}

/** @param {CCEvent} ev */
function log(ev) {
  const li = document.createElement("li");
  const d = ev.data;
  const who = "caller_id_number" in d ? ` ${d.caller_id_name || d.caller_id_number}` : "";
  li.textContent = `${d.timestamp.slice(11, 19)} #${ev.sequence} ${d.event}${who}`;
  li.dataset.event = d.event;
  $("log").prepend(li);
  while ($("log").childElementCount > 50) $("log").lastElementChild?.remove();
}

function render() {
  $("name").textContent = view.name;
  $("state").textContent = view.state;
  $("state").dataset.state = view.state;
  $("offer").hidden = !view.offer;
  if (view.offer) {
    $("caller").textContent = view.offer.caller_id_name ? `${view.offer.caller_id_name} (${view.offer.caller_id_number})` : view.offer.caller_id_number;
    $("offer-queue").textContent = view.queues.get(view.offer.queue_id)?.name ?? view.offer.queue_id;
    $("offer-wait").textContent = clock(view.offer.wait_duration_ms);
  }
  $("queues").replaceChildren(
    ...[...view.queues].map(([id, q]) => {
      const li = document.createElement("li");
      li.dataset.queue = id;
      li.textContent = `${q.name}: ${q.waiting} waiting`;
      return li;
    }),
  );
}

/** @param {number} ms */
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
setInterval(() => ($("since").textContent = clock(Date.now() - view.sinceMs)), 1000);

/**
 * Calls the engine's REST API with the client's current token.
 * @param {string} path
 * @param {unknown} body
 */
async function act(path, body) {
  $("error").textContent = "";
  try {
    await rest("POST", `${api}/v2/accounts/${view.accountId}${path}`, cc?.token.token, { data: body });
  } catch (err) {
    $("error").textContent = err instanceof CCEventsError ? err.message : String(err);
  }
}
$("ready").addEventListener("click", () => act(`/recipients/${view.recipientId}/status`, { action: "ready" }));
$("away").addEventListener("click", () => act(`/recipients/${view.recipientId}/status`, { action: "away" }));
$("accept").addEventListener("click", () => view.offer && act(`/calls/${view.offer.session_id}/accept`, { recipient_id: view.recipientId }));
$("reject").addEventListener("click", () => view.offer && act(`/calls/${view.offer.session_id}/reject`, { recipient_id: view.recipientId, reason: "declined" }));
