// The ccevents wallboard: live queue tiles and a recipient grid for one
// account, built from a snapshot (GET /v2/accounts/{id}/qubicle_state) and
// then kept current by websocket events only, resumed after the snapshot's
// sequence so that snapshot + events is exact.
import { CCEvents, CCEventsError, login, rest } from "/client/ccevents.js";

const $ = (id) => document.getElementById(id);
const api = location.origin;
const sessionKey = "ccevents.wallboard";

const STATE_LABEL = {
  logged_out: "logged out",
  ready: "ready",
  away: "away",
  offered: "ringing",
  busy: "on a call",
  wrapup: "wrap-up",
  external_call: "external call",
};
// States in which the recipient is working on a queue call.
const ON_QUEUE_CALL = new Set(["offered", "busy", "wrapup"]);

let session = null; // { token, accountId (of the token), wsUrl, mode, secret }
let cc = null; // CCEvents
let view = null; // the board of one account

// ---- sign in -------------------------------------------------------------

function defaultWsUrl() {
  const u = new URLSearchParams(location.search).get("ws");
  if (u) return u;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:5555`;
}

function setStatus(state, text) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = text;
}

function showLogin(message = "") {
  $("login").hidden = false;
  $("board").hidden = true;
  $("signout").hidden = true;
  document.querySelector(".account").hidden = true;
  $("login-error").textContent = message;
  setStatus("signed-out", "signed out");
  $("secret").focus();
}

/** Reads the account id out of a token without verifying it (the server does). */
function tokenAccount(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    return { accountId: claims.account_id || "", expiresAt: (claims.exp || 0) * 1000 };
  } catch {
    return { accountId: "", expiresAt: 0 };
  }
}

async function signIn({ mode, secret, wsUrl, account }) {
  $("login-error").textContent = "";
  setStatus("connecting", "signing in…");
  let token, accountId;
  if (mode === "apikey") {
    ({ token, accountId } = await login(api, secret));
  } else {
    token = secret;
    accountId = tokenAccount(secret).accountId;
    if (!accountId) throw new CCEventsError("this does not look like a ccevents auth token");
  }
  // Check the credentials and learn the account's name before connecting.
  const own = (await rest("GET", `${api}/v2/accounts/${accountId}`, token)).data;
  let children = [];
  try {
    children = (await rest("GET", `${api}/v2/accounts/${accountId}/children`, token)).data || [];
  } catch {
    // an account without the right to list children still gets its own board
  }
  cc = new CCEvents(mode === "apikey" ? { url: wsUrl, apiKey: secret, apiUrl: api } : { url: wsUrl, token: secret });
  cc.addEventListener("status", onConnStatus);
  cc.addEventListener("error", (e) => showLogin(e.detail.error.message));
  try {
    await cc.open();
  } catch (err) {
    cc.close();
    cc = null;
    throw new CCEventsError(`${err.message} — is the gateway at ${wsUrl}? Change it under "Gateway".`);
  }
  session = { mode, secret, wsUrl, accountId };
  sessionStorage.setItem(sessionKey, JSON.stringify({ mode, secret, wsUrl, account: account || accountId }));

  const sel = $("account");
  sel.replaceChildren();
  for (const a of [own, ...children]) {
    const o = document.createElement("option");
    o.value = a.account_id;
    o.textContent = a.account_id === own.account_id ? a.name : `↳ ${a.name}`;
    sel.append(o);
  }
  sel.value = [own, ...children].some((a) => a.account_id === account) ? account : own.account_id;
  document.querySelector(".account").hidden = false;
  $("login").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  await showAccount(sel.value);
}

function signOut() {
  sessionStorage.removeItem(sessionKey);
  if (view) view.stop();
  view = null;
  if (cc) cc.close();
  cc = null;
  session = null;
  $("queues").replaceChildren();
  $("recipients").replaceChildren();
  $("feed").textContent = "";
  showLogin();
}

function onConnStatus(e) {
  const d = e.detail;
  switch (d.state) {
    case "connected":
      setStatus("live", "live");
      break;
    case "connecting":
      setStatus("reconnecting", d.attempt ? `reconnecting (attempt ${d.attempt})…` : "connecting…");
      break;
    case "disconnected":
      setStatus("reconnecting", `${d.error} — retrying in ${Math.ceil(d.retryMs / 1000)} s`);
      break;
    case "closed":
      setStatus("signed-out", "disconnected");
      break;
  }
}

async function showAccount(accountId) {
  if (view) await view.stop();
  const sel = $("account");
  const stored = JSON.parse(sessionStorage.getItem(sessionKey) || "{}");
  sessionStorage.setItem(sessionKey, JSON.stringify({ ...stored, account: accountId }));
  view = new Board(accountId, sel.options[sel.selectedIndex]?.textContent || accountId);
  await view.start();
}

// ---- the board of one account --------------------------------------------

class Board {
  constructor(accountId, name) {
    this.accountId = accountId;
    this.name = name;
    this.queues = new Map(); // id -> queue model
    this.recipients = new Map(); // id -> recipient model
    this.skipThrough = { sequence: 0, epoch: "" }; // events the snapshot already includes
    this.buffer = null; // events held while a resync reloads the snapshot
    this.subs = [];
    this.events = 0;
    this.lastSeq = 0;
    // Server time minus browser time, from the snapshot, so the tiles roll
    // over at the server's UTC midnight even when the browser clock is off.
    this.skewMs = 0;
    // Today's totals of queues stopped by a server shutdown: the engine
    // keeps them, so they come back with the queue.create after a restart.
    this.shutQueues = new Map(); // id -> { day, delivered, abandoned }
  }

  async start() {
    const snap = await this.loadSnapshot();
    const since = { sequence: snap.sequence, epoch: snap.epoch };
    const onResync = (r) => this.resync(r);
    const handler = (ev) => this.onEvent(ev);
    // One subscribe for both bindings, so both resume from the snapshot.
    const bindings = ["queue", "recipient"].map((f) => `qubicle.${f}.${this.accountId}.*`);
    this.subs = await cc.subscribe(this.accountId, bindings, handler, { since, onResync });
    this.ticker = setInterval(() => this.render(), 1000);
    this.render();
  }

  async stop() {
    clearInterval(this.ticker);
    clearTimeout(this.renderSoon);
    this.stopped = true;
    await Promise.allSettled(this.subs.map((s) => s.unsubscribe()));
    this.subs = [];
  }

  async loadSnapshot() {
    const token = cc.token.token;
    const body = await rest("GET", `${api}/v2/accounts/${this.accountId}/qubicle_state`, token);
    const snap = body.data || {};
    this.applySnapshot(snap);
    return { sequence: Number(snap.sequence) || 0, epoch: snap.epoch || "" };
  }

  applySnapshot(snap) {
    const now = Date.now();
    if (snap.timestamp_ms) this.skewMs = snap.timestamp_ms - now;
    const today = utcDay(now + this.skewMs);
    const old = this.queues;
    this.queues = new Map();
    this.shutQueues = new Map();
    for (const q of listOf(snap.queues)) {
      const callers = new Map();
      let est = null;
      for (const c of q.callers || []) {
        const joined = Date.parse(c.joined_at);
        callers.set(c.session_id, { joinedMs: Number.isNaN(joined) ? now - (c.wait_ms || 0) : joined });
        est = c.estimated_wait_s ?? est;
      }
      // The snapshot's totals are exact at its sequence; the events after
      // it add to them.
      this.queues.set(q.id, {
        id: q.id,
        name: q.name || q.id,
        callers,
        estimatedWaitS: est ?? old.get(q.id)?.estimatedWaitS ?? null,
        day: q.day || today,
        delivered: q.delivered_today || 0,
        abandoned: q.abandoned_today || 0,
      });
    }
    this.recipients = new Map();
    for (const r of listOf(snap.recipients)) {
      const queueId = r.active_session?.queue_id || r.offer?.queue_id || "";
      this.recipients.set(r.id, {
        id: r.id,
        name: r.name || r.id,
        state: r.state || "logged_out",
        sinceMs: r.since_ms || Date.parse(r.since) || now,
        queueId: ON_QUEUE_CALL.has(r.state) ? queueId : "",
        paused: r.paused_queues || [],
      });
    }
    this.skipThrough = { sequence: Number(snap.sequence) || 0, epoch: snap.epoch || "" };
  }

  // The gateway could not replay everything missed: reload the snapshot,
  // holding the events that arrive meanwhile, then apply those it lacks.
  async resync(r) {
    if (this.buffer) return; // already reloading
    this.buffer = [];
    $("feed").textContent = `resyncing: ${r.reason}`;
    for (;;) {
      try {
        await this.loadSnapshot();
        break;
      } catch (err) {
        if (this.stopped) return;
        await new Promise((res) => setTimeout(res, 2000));
      }
    }
    const held = this.buffer;
    this.buffer = null;
    for (const ev of held) this.onEvent(ev);
  }

  onEvent(ev) {
    if (this.stopped) return;
    if (this.buffer) {
      this.buffer.push(ev);
      return;
    }
    if (ev.epoch === this.skipThrough.epoch && ev.sequence <= this.skipThrough.sequence) return;
    this.events++;
    this.lastSeq = ev.sequence;
    const d = ev.data || {};
    const ts = d.timestamp_ms || Date.parse(d.timestamp) || Date.now() + this.skewMs;
    const family = ev.routing_key.split(".")[1];
    if (family === "queue") this.onQueueEvent(ev.name, d, ts);
    else if (family === "recipient") this.onRecipientEvent(ev.name, d, ts);
    // Coalesce a burst of events into one render.
    if (!this.renderSoon) this.renderSoon = setTimeout(() => this.render(), 50);
  }

  queue(id, ts) {
    let q = this.queues.get(id);
    if (!q) {
      q = { id, name: id, callers: new Map(), estimatedWaitS: null, day: utcDay(ts), delivered: 0, abandoned: 0 };
      this.queues.set(id, q);
    }
    return q;
  }

  // count adds one to a queue's total of the event's UTC day, the day the
  // engine counted it in; the totals start again when that day is new.
  count(q, field, ts) {
    const day = utcDay(ts);
    if (day < q.day) return; // yesterday's, after the tile rolled over
    rollTo(q, day);
    q[field]++;
  }

  onQueueEvent(name, d, ts) {
    switch (name) {
      case "create": {
        const q = this.queue(d.queue_id, ts);
        q.name = d.queue_name || d.queue_id;
        const kept = this.shutQueues.get(d.queue_id);
        this.shutQueues.delete(d.queue_id);
        if (kept) Object.assign(q, kept);
        break;
      }
      case "delete": {
        const q = this.queues.get(d.queue_id);
        this.queues.delete(d.queue_id);
        if (q && d.reason === "shutdown") this.shutQueues.set(q.id, { day: q.day, delivered: q.delivered, abandoned: q.abandoned });
        else this.shutQueues.delete(d.queue_id);
        break;
      }
      case "join": {
        const q = this.queue(d.queue_id, ts);
        q.callers.set(d.session_id, { joinedMs: ts });
        q.estimatedWaitS = d.estimated_wait_s;
        break;
      }
      case "leave": {
        const q = this.queue(d.queue_id, ts);
        q.callers.delete(d.session_id);
        if (d.reason === "abandoned") this.count(q, "abandoned", ts);
        break;
      }
      case "delivered":
        this.count(this.queue(d.queue_id, ts), "delivered", ts);
        break;
    }
  }

  onRecipientEvent(name, d, ts) {
    let r = this.recipients.get(d.recipient_id);
    if (!r) {
      r = { id: d.recipient_id, name: d.recipient_id, state: "logged_out", sinceMs: ts, queueId: "", paused: [] };
      this.recipients.set(r.id, r);
    }
    if (name === "create" && d.recipient_name) r.name = d.recipient_name;
    if (name === "sync") {
      r.state = d.state;
      r.sinceMs = d.state_since_ms || ts;
      r.paused = d.paused_queues || [];
      const s = (d.active_sessions || [])[0];
      r.queueId = ON_QUEUE_CALL.has(r.state) && s ? s.queue_id || "" : ON_QUEUE_CALL.has(r.state) ? r.queueId : "";
      return;
    }
    if (d.paused_queues) r.paused = d.paused_queues;
    if (d.state) {
      if (d.state !== r.state) r.sinceMs = ts;
      r.state = d.state;
    }
    if (d.queue_id && ["offer", "delivered", "wrapup_start"].includes(name)) r.queueId = d.queue_id;
    if (!ON_QUEUE_CALL.has(r.state)) r.queueId = "";
  }

  // ---- rendering ---------------------------------------------------------

  render() {
    const now = Date.now();
    // At 00:00 UTC (server time) today's totals start again, events or not.
    const today = utcDay(now + this.skewMs);
    for (const q of this.queues.values()) rollTo(q, today);
    const qs = $("queues");
    const queues = [...this.queues.values()].sort((a, b) => a.name.localeCompare(b.name));
    syncChildren(qs, queues, (q) => q.id, () => $("queue-tile").content.firstElementChild.cloneNode(true), (el, q) => {
      el.dataset.queueId = q.id;
      set(el, ".name", q.name);
      set(el, ".waiting", String(q.callers.size));
      let oldest = Infinity;
      for (const c of q.callers.values()) oldest = Math.min(oldest, c.joinedMs);
      set(el, ".longest", q.callers.size ? duration(now - oldest) : "—");
      set(el, ".estimated", q.estimatedWaitS == null ? "—" : duration(q.estimatedWaitS * 1000));
      set(el, ".delivered", String(q.delivered));
      set(el, ".abandoned", String(q.abandoned));
      set(el, ".day", q.day);
      el.querySelector(".day").dateTime = q.day;
      el.title = `Delivered and abandoned on ${q.day} (UTC); they start again at 00:00 UTC.`;
      el.classList.toggle("alert", q.callers.size > 0 && now - oldest > 120000);
    });

    const rs = $("recipients");
    const recips = [...this.recipients.values()].sort((a, b) => a.name.localeCompare(b.name));
    syncChildren(rs, recips, (r) => r.id, () => $("recipient-cell").content.firstElementChild.cloneNode(true), (el, r) => {
      el.dataset.recipientId = r.id;
      el.dataset.state = r.state;
      set(el, ".name", r.name);
      set(el, ".state", STATE_LABEL[r.state] || r.state);
      set(el, ".since", r.state === "logged_out" ? "" : duration(now - r.sinceMs));
      const q = r.queueId ? this.queues.get(r.queueId)?.name || r.queueId : "";
      set(el, ".queue", q ? `· ${q}` : r.paused.length ? `· paused ${r.paused.length}` : "");
    });

    const empty = $("empty");
    empty.hidden = this.queues.size + this.recipients.size > 0;
    empty.textContent = `No queues or recipients in ${this.name} yet; they appear here as soon as they are created.`;
    if (!this.buffer) $("feed").textContent = `${this.name} · ${this.events} events · last sequence ${this.lastSeq || "—"}`;
    $("feed").dataset.events = String(this.events);
    clearTimeout(this.renderSoon);
    this.renderSoon = null;
  }
}

// ---- helpers --------------------------------------------------------------

function listOf(v) {
  if (Array.isArray(v)) return v;
  if (v && typeof v === "object") return Object.values(v);
  return [];
}

/** The UTC date of a time, e.g. "2026-11-25": the engine's "today". */
function utcDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Moves a queue's totals to day, starting from zero when it is a later day. */
function rollTo(q, day) {
  if (day <= q.day) return;
  q.day = day;
  q.delivered = 0;
  q.abandoned = 0;
}

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function set(el, sel, text) {
  const t = el.querySelector(sel);
  if (t.textContent !== text) t.textContent = text;
}

/** Makes parent's children match items, in order, reusing elements by key. */
function syncChildren(parent, items, key, create, update) {
  const existing = new Map();
  for (const el of parent.children) existing.set(el.dataset.key, el);
  let i = 0;
  for (const item of items) {
    const k = key(item);
    let el = existing.get(k);
    if (!el) {
      el = create();
      el.dataset.key = k;
    }
    existing.delete(k);
    update(el, item);
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
    i++;
  }
  for (const el of existing.values()) el.remove();
}

// ---- wiring ---------------------------------------------------------------

$("ws-url").value = defaultWsUrl();
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const button = e.target.querySelector("button");
  button.disabled = true;
  try {
    await signIn({ mode: form.get("mode"), secret: String(form.get("secret")).trim(), wsUrl: String(form.get("ws-url")).trim() || defaultWsUrl() });
  } catch (err) {
    if (cc) cc.close();
    cc = null;
    showLogin(err.message);
  } finally {
    button.disabled = false;
  }
});
$("signout").addEventListener("click", signOut);
$("account").addEventListener("change", (e) =>
  showAccount(e.target.value).catch((err) => ($("feed").textContent = `could not show the account: ${err.message}`)),
);

const saved = JSON.parse(sessionStorage.getItem(sessionKey) || "null");
if (saved && saved.secret) {
  $("ws-url").value = saved.wsUrl || defaultWsUrl();
  signIn(saved).catch((err) => {
    if (cc) cc.close();
    cc = null;
    showLogin(err.message);
  });
} else {
  showLogin();
}
