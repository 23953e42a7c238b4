// The ccevents wallboard: for one account, a tile per queue with the
// engine's statistics (callers waiting, longest wait, service level,
// abandon rate, average answer and handle times, occupancy, today's counts,
// agents by state and the last hour's trend), the account's totals, and a
// grid of agents. It starts from a snapshot (GET …/qubicle_state, with the
// statistics; GET …/qubicle_stats for the trends) and then follows the
// websocket from the snapshot's sequence: stats events replace the
// figures, recipient events move the agents. While the connection is down
// every figure is greyed and the age of the last update shown.
//
// Only the browser client's public API is used (connect options, subscribe,
// status events, login, rest).
import { CCEvents, CCEventsError, login, rest } from "/client/ccevents.js";

const $ = (id) => document.getElementById(id);
const api = location.origin;
const sessionKey = "ccevents.wallboard";
const tvKey = "ccevents.wallboard.tv";
const thresholdKey = (account, key) => `ccevents.wallboard.thresholds.${account}.${key}`;
const TOTAL = "_total"; // the account's own tile, as in qubicle.stats.{ACCOUNT_ID}._total

const STATE_LABEL = {
  logged_out: "logged out",
  ready: "ready",
  away: "away",
  offered: "ringing",
  busy: "on a call",
  wrapup: "wrap-up",
  external_call: "external call",
};
// The order of the agents-by-state bar, and its words.
const BAR_STATES = [
  ["ready", "ready"],
  ["offered", "ringing"],
  ["busy", "on a call"],
  ["wrapup", "wrap-up"],
  ["external_call", "external call"],
  ["away", "away"],
];
// States in which the recipient is working on a queue call.
const ON_QUEUE_CALL = new Set(["offered", "busy", "wrapup"]);

let session = null; // { mode, secret, wsUrl, accountId (of the token) }
let cc = null; // CCEvents
let view = null; // the board of one account

// ---- remembered settings ---------------------------------------------------

const store = {
  get(key, fallback) {
    try {
      const v = localStorage.getItem(key);
      return v == null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch {
      // private mode or full: the board still works, it forgets
    }
  },
};

// ---- thresholds --------------------------------------------------------------

// The figures a supervisor sets thresholds on. "up" turns amber then red as
// the figure rises; "down" as it falls.
const METRICS = [
  { key: "waiting", label: "Callers waiting", unit: "", dir: "up", step: 1 },
  { key: "longest", label: "Longest wait", unit: "s", dir: "up", step: 1 },
  { key: "sl", label: "Service level, 15 min", unit: "%", dir: "down", step: 0.1 },
  { key: "abandon", label: "Abandon rate, 15 min", unit: "%", dir: "up", step: 0.1 },
];

/** Defaults from the queue's own target: amber below it, red 10 points lower. */
function defaultThresholds(fig) {
  const target = fig?.service_level_target_pct ?? 80;
  const slS = fig?.service_level_s ?? 20;
  return {
    waiting: { warn: 2, alert: 5 },
    longest: { warn: slS, alert: slS * 2 },
    sl: { warn: target, alert: Math.max(0, target - 10) },
    abandon: { warn: 5, alert: 10 },
  };
}

function thresholdsFor(account, key, fig) {
  const th = defaultThresholds(fig);
  const saved = store.get(thresholdKey(account, key), null);
  if (saved && typeof saved === "object") {
    for (const m of METRICS) {
      for (const lvl of ["warn", "alert"]) {
        const v = saved[m.key]?.[lvl];
        if (typeof v === "number" && Number.isFinite(v)) th[m.key][lvl] = v;
      }
    }
  }
  return th;
}

/** ok, warn or alert for a value against its thresholds; none without a value. */
function levelOf(metric, value, th) {
  if (value == null) return "none";
  const t = th[metric];
  const m = METRICS.find((x) => x.key === metric);
  if (m.dir === "up") return value >= t.alert ? "alert" : value >= t.warn ? "warn" : "ok";
  return value < t.alert ? "alert" : value < t.warn ? "warn" : "ok";
}

const LEVEL_WORDS = { ok: "within thresholds", warn: "amber: past the first threshold", alert: "red: past the second threshold", none: "" };
const RANK = { none: 0, ok: 1, warn: 2, alert: 3 };

// ---- sign in -----------------------------------------------------------------

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
  $("tv").hidden = true;
  $("stale").hidden = true;
  document.body.dataset.stale = "false";
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
  $("tv").hidden = false;
  await showAccount(sel.value);
}

function signOut() {
  sessionStorage.removeItem(sessionKey);
  if (view) view.stop();
  view = null;
  if (cc) cc.close();
  cc = null;
  session = null;
  for (const id of ["queues", "recipients", "total", "agents-bar"]) $(id).replaceChildren();
  $("feed").textContent = "";
  showLogin();
}

function onConnStatus(e) {
  const d = e.detail;
  switch (d.state) {
    case "connected":
      setStatus("live", "live");
      view?.setLive(true);
      break;
    case "connecting":
      setStatus("reconnecting", d.attempt ? `reconnecting (attempt ${d.attempt})…` : "connecting…");
      view?.setLive(false);
      break;
    case "disconnected":
      setStatus("reconnecting", `${d.error} — retrying in ${Math.ceil(d.retryMs / 1000)} s`);
      view?.setLive(false);
      break;
    case "closed":
      setStatus("signed-out", "disconnected");
      view?.setLive(false);
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

// ---- TV mode -----------------------------------------------------------------

function setTV(on) {
  document.documentElement.classList.toggle("tv", on);
  $("tv").setAttribute("aria-pressed", String(on));
  store.set(tvKey, on);
}

// ---- the board of one account --------------------------------------------------

class Board {
  constructor(accountId, name) {
    this.accountId = accountId;
    this.name = name;
    this.queues = new Map(); // id -> { id, fig (stats.queue figures), trend: [{minute, waiting, sl}] }
    this.total = null; // stats.account figures
    this.recipients = new Map(); // id -> recipient model
    this.skipThrough = { sequence: 0, epoch: "" }; // events the snapshot already includes
    this.buffer = null; // events held while a resync reloads the snapshot
    this.subs = [];
    this.events = 0;
    this.lastSeq = 0;
    this.skewMs = 0; // server time minus browser time
    this.live = true;
    this.updatedAt = Date.now(); // browser time of the latest figures
  }

  async start() {
    const snap = await this.loadSnapshot();
    await this.loadTrends();
    const since = { sequence: snap.sequence, epoch: snap.epoch };
    const onResync = (r) => this.resync(r);
    const handler = (ev) => this.onEvent(ev);
    // One subscribe for every binding, so all resume from the snapshot.
    const bindings = ["stats", "queue", "recipient"].map((f) => `qubicle.${f}.${this.accountId}.*`);
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

  setLive(live) {
    if (live && !this.live) this.updatedAt = Date.now(); // resumed: what is missed replays now
    this.live = live;
    this.render();
  }

  async loadSnapshot() {
    const body = await rest("GET", `${api}/v2/accounts/${this.accountId}/qubicle_state`, cc.token.token);
    const snap = body.data || {};
    this.applySnapshot(snap);
    return { sequence: Number(snap.sequence) || 0, epoch: snap.epoch || "" };
  }

  // The last hour per queue; the stats events extend it from here.
  async loadTrends() {
    try {
      const st = (await rest("GET", `${api}/v2/accounts/${this.accountId}/qubicle_stats`, cc.token.token)).data || {};
      for (const q of listOf(st.queues)) {
        const model = this.queues.get(q.queue_id);
        if (!model) continue;
        model.trend = listOf(q.trend).map((p) => ({ minute: Date.parse(p.minute), waiting: p.waiting_peak ?? 0, sl: p.service_level_pct ?? null }));
      }
    } catch {
      // no trend yet: it builds up from the events
    }
  }

  applySnapshot(snap) {
    const now = Date.now();
    if (snap.timestamp_ms) this.skewMs = snap.timestamp_ms - now;
    const old = this.queues;
    this.queues = new Map();
    for (const q of listOf(snap.stats?.queues)) {
      this.queues.set(q.queue_id, { id: q.queue_id, fig: q, trend: old.get(q.queue_id)?.trend || [] });
    }
    this.total = snap.stats?.account || null;
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
    this.updatedAt = now;
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
        await this.loadTrends();
        break;
      } catch {
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
    this.updatedAt = Date.now();
    const d = ev.data || {};
    const ts = d.timestamp_ms || Date.parse(d.timestamp) || Date.now() + this.skewMs;
    if (d.timestamp_ms) this.skewMs = d.timestamp_ms - Date.now();
    const family = ev.routing_key.split(".")[1];
    if (family === "stats") this.onStats(ev.name, d, ts);
    else if (family === "queue") this.onQueueEvent(ev.name, d);
    else if (family === "recipient") this.onRecipientEvent(ev.name, d, ts);
    // Coalesce a burst of events into one render.
    if (!this.renderSoon) this.renderSoon = setTimeout(() => this.render(), 50);
  }

  onStats(name, d, ts) {
    if (name === "account") {
      this.total = d;
      return;
    }
    let q = this.queues.get(d.queue_id);
    if (!q) {
      q = { id: d.queue_id, fig: d, trend: [] };
      this.queues.set(q.id, q);
    }
    extendTrend(q.trend, ts, q.fig.waiting || 0);
    q.fig = d;
    const p = q.trend[q.trend.length - 1];
    p.waiting = Math.max(p.waiting, d.waiting || 0);
    p.sl = d.last_15m?.service_level_pct ?? null;
  }

  onQueueEvent(name, d) {
    // A deleted queue's tile goes; one stopped by a server shutdown stays
    // (greyed while the connection is down) and comes back with its figures.
    if (name === "delete" && d.reason === "deleted") this.queues.delete(d.queue_id);
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

  // ---- rendering -------------------------------------------------------------

  render() {
    const now = Date.now();
    const serverNow = now + this.skewMs;
    this.renderStale(now);

    const total = $("total");
    if (this.total) {
      if (!total.firstElementChild) total.append(newTile());
      const fig = { ...this.total, queue_name: this.name };
      this.renderTile(total.firstElementChild, TOTAL, fig, null, serverNow);
    }

    const qs = $("queues");
    const queues = [...this.queues.values()].sort((a, b) => (a.fig.queue_name || a.id).localeCompare(b.fig.queue_name || b.id));
    syncChildren(qs, queues, (q) => q.id, newTile, (el, q) => {
      extendTrend(q.trend, serverNow, q.fig.waiting || 0);
      this.renderTile(el, q.id, q.fig, q.trend, serverNow);
    });

    this.renderAgentsBar();
    const rs = $("recipients");
    const recips = [...this.recipients.values()].sort((a, b) => a.name.localeCompare(b.name));
    syncChildren(rs, recips, (r) => r.id, () => $("recipient-cell").content.firstElementChild.cloneNode(true), (el, r) => {
      el.dataset.recipientId = r.id;
      el.dataset.state = r.state;
      set(el, ".name", r.name);
      set(el, ".state", STATE_LABEL[r.state] || r.state);
      set(el, ".since", r.state === "logged_out" ? "" : duration(now - r.sinceMs));
      const q = r.queueId ? this.queues.get(r.queueId)?.fig.queue_name || r.queueId : "";
      set(el, ".queue", q ? `· ${q}` : r.paused.length ? `· paused ${r.paused.length}` : "");
    });

    const empty = $("empty");
    empty.hidden = this.queues.size + this.recipients.size > 0;
    empty.textContent = `No queues or agents in ${this.name} yet; they appear here as soon as they are created.`;
    if (!this.buffer) $("feed").textContent = `${this.name} · ${this.events} events · last sequence ${this.lastSeq || "—"}`;
    $("feed").dataset.events = String(this.events);
    clearTimeout(this.renderSoon);
    this.renderSoon = null;
  }

  renderStale(now) {
    const stale = !this.live;
    document.body.dataset.stale = String(stale);
    const banner = $("stale");
    banner.hidden = !stale;
    if (stale) {
      const age = duration(now - this.updatedAt);
      banner.dataset.ageMs = String(now - this.updatedAt);
      setText(banner, `Connection lost · these figures are ${age} old (last update ${clockTime(this.updatedAt)}) · reconnecting…`);
    }
  }

  renderTile(el, key, fig, trend, serverNow) {
    const th = thresholdsFor(this.accountId, key, fig);
    const isTotal = key === TOTAL;
    el.dataset.queueId = key;
    const name = fig.queue_name || key;
    set(el, ".name", isTotal ? "All queues" : name);
    // The queue's target under the service level's name.
    set(el, ".sl-rule", isTotal ? "last 15 min" : `15 min · goal ${fig.service_level_target_pct ?? 80}% in ${fig.service_level_s ?? 20} s`);
    const gear = el.querySelector(".gear");
    gear.setAttribute("aria-label", `Thresholds for ${isTotal ? "the whole account" : name}`);
    gear.onclick = (e) => {
      e.stopPropagation();
      openThresholds(this, key, fig);
    };
    // Enter or Space on a tile opens its thresholds, once the key is up:
    // opened on keydown, the dialog's first field would take the key's
    // character and submit the form at once.
    el.onkeydown = (e) => {
      if (e.target === el && (e.key === "Enter" || e.key === " ")) e.preventDefault();
    };
    el.onkeyup = (e) => {
      if (e.target === el && (e.key === "Enter" || e.key === " ")) {
        e.preventDefault();
        openThresholds(this, key, fig);
      }
    };

    const w15 = fig.last_15m || {};
    const today = fig.today || {};
    let longestMs = fig.waiting > 0 ? fig.longest_wait_ms || 0 : null;
    const joined = Date.parse(fig.oldest_joined_at || "");
    if (fig.waiting > 0 && !Number.isNaN(joined) && this.live) longestMs = Math.max(longestMs, serverNow - joined);

    const values = {
      waiting: fig.waiting ?? 0,
      longest: longestMs == null ? null : Math.floor(longestMs / 1000),
      sl: w15.service_level_pct ?? null,
      abandon: w15.abandon_rate_pct ?? null,
    };
    const shown = {
      waiting: String(values.waiting),
      longest: longestMs == null ? "—" : duration(longestMs),
      sl: pct(values.sl),
      abandon: pct(values.abandon),
      asa: w15.asa_ms == null ? "—" : duration(w15.asa_ms),
      aht: w15.aht_ms == null ? "—" : duration(w15.aht_ms),
      occupancy: pct(w15.occupancy_pct ?? null),
    };
    let worst = "none";
    for (const kpi of el.querySelectorAll(".kpi")) {
      const metric = kpi.dataset.metric;
      set(kpi, ".num", shown[metric]);
      if (metric in values) {
        const lvl = levelOf(metric, values[metric], th);
        kpi.dataset.level = lvl;
        if (RANK[lvl] > RANK[worst]) worst = lvl;
        setText(kpi.querySelector(".level"), lvl === "none" ? "" : `, ${LEVEL_WORDS[lvl]}`);
      }
    }
    el.dataset.level = worst;
    set(el, ".offered", String(today.offered ?? 0));
    set(el, ".answered", String(today.answered ?? 0));
    set(el, ".abandoned", String(today.abandoned ?? 0));
    set(el, ".sltoday", pct(today.service_level_pct ?? null));
    el.setAttribute("aria-label", `${isTotal ? "All queues" : `Queue ${name}`}: ${values.waiting} waiting, ` +
      `longest wait ${shown.longest}, service level ${shown.sl}${isTotal ? "" : ` against a target of ${fig.service_level_target_pct ?? 80}% in ${fig.service_level_s ?? 20} seconds`}; ` +
      `${LEVEL_WORDS[worst] || "no calls yet"}. Press Enter to set thresholds.`);
    renderStateBar(el.querySelector(".statebar"), fig.recipients);
    if (trend) renderTrend(el.querySelector(".trend svg"), trend, fig.service_level_target_pct ?? 80);
  }

  renderAgentsBar() {
    renderStateBar($("agents-bar"), this.total?.recipients);
  }
}

// ---- tiles, bars and trends ---------------------------------------------------

function newTile() {
  return $("tile").content.firstElementChild.cloneNode(true);
}

function renderStateBar(el, counts) {
  if (!el) return;
  const c = counts || {};
  const total = c.logged_in || 0;
  if (!el.firstElementChild) {
    const track = document.createElement("div");
    track.className = "bar-track";
    const legend = document.createElement("ul");
    legend.className = "legend";
    for (const [s, word] of BAR_STATES) {
      const seg = document.createElement("span");
      seg.className = "seg";
      seg.dataset.s = s;
      track.append(seg);
      const li = document.createElement("li");
      li.dataset.state = s;
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.dataset.s = s;
      const b = document.createElement("b");
      li.append(dot, b, ` ${word}`);
      legend.append(li);
    }
    track.setAttribute("aria-hidden", "true");
    el.append(track, legend);
    el.setAttribute("role", "group");
  }
  const parts = [];
  for (const [s, word] of BAR_STATES) {
    const n = c[s] || 0;
    el.querySelector(`.seg[data-s="${s}"]`).style.width = total ? `${(100 * n) / total}%` : "0";
    const li = el.querySelector(`li[data-state="${s}"]`);
    li.hidden = n === 0 && el.classList.contains("mini"); // the small bars list only who is there
    setText(li.querySelector("b"), String(n));
    if (n) parts.push(`${n} ${word}`);
  }
  el.setAttribute("aria-label", `${total} agents logged in${parts.length ? ": " + parts.join(", ") : ""}${c.paused ? `; ${c.paused} paused` : ""}`);
}

/**
 * Adds points so the trend's last one is the minute of ts, keeping an hour.
 * A new minute starts at the level of callers waiting so far, and with the
 * service level the figures had.
 */
function extendTrend(trend, ts, level) {
  const minute = Math.floor(ts / 60000) * 60000;
  if (!trend.length) trend.push({ minute, waiting: level, sl: null });
  let last = trend[trend.length - 1];
  while (last.minute < minute) {
    last = { minute: last.minute + 60000, waiting: level, sl: last.sl };
    trend.push(last);
  }
  while (trend.length > 60) trend.shift();
}

const SVG = "http://www.w3.org/2000/svg";

function renderTrend(svg, trend, target) {
  if (!svg) return;
  const peak = Math.max(1, ...trend.map((p) => p.waiting));
  let bars = svg.querySelector("g.bars");
  if (!bars) {
    bars = document.createElementNS(SVG, "g");
    bars.setAttribute("class", "bars");
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", "sl");
    const tg = document.createElementNS(SVG, "line");
    tg.setAttribute("class", "tg");
    svg.append(bars, tg, line);
  }
  // Waiting: bars in the lower half, scaled to the hour's peak.
  const n = trend.length;
  while (bars.childElementCount < n) bars.append(document.createElementNS(SVG, "rect"));
  while (bars.childElementCount > n) bars.lastElementChild.remove();
  trend.forEach((p, i) => {
    const r = bars.children[i];
    const h = (p.waiting / peak) * 11;
    r.setAttribute("class", "w");
    r.setAttribute("x", String(60 - n + i + 0.1));
    r.setAttribute("width", "0.8");
    r.setAttribute("y", String(24 - h));
    r.setAttribute("height", String(h));
  });
  // Service level: a line over the whole height, 0 % at the bottom.
  const y = (v) => (24 - (v / 100) * 23).toFixed(2);
  const pts = [];
  trend.forEach((p, i) => {
    if (p.sl != null) pts.push(`${60 - n + i + 0.5},${y(p.sl)}`);
  });
  if (pts.length === 1) {
    const [x, yv] = pts[0].split(","); // one minute: a short dash, not nothing
    pts.unshift(`${Number(x) - 1},${yv}`);
  }
  svg.querySelector("polyline.sl").setAttribute("points", pts.join(" "));
  const tg = svg.querySelector("line.tg");
  tg.setAttribute("x1", "0");
  tg.setAttribute("x2", "60");
  tg.setAttribute("y1", y(target));
  tg.setAttribute("y2", y(target));
  const sls = trend.map((p) => p.sl).filter((v) => v != null);
  const title = svg.querySelector("title");
  setText(title, `Last hour: at most ${Math.max(0, ...trend.map((p) => p.waiting))} callers waiting at once; ` +
    (sls.length ? `service level between ${Math.min(...sls)}% and ${Math.max(...sls)}%, now ${sls[sls.length - 1]}%` : "no service level yet"));
}

// ---- thresholds dialog -------------------------------------------------------

function openThresholds(board, key, fig) {
  const dlg = $("thresholds");
  const th = thresholdsFor(board.accountId, key, fig);
  const name = key === TOTAL ? "the whole account" : fig.queue_name || key;
  setText($("th-title"), `Thresholds for ${name}`);
  const rows = $("th-rows");
  rows.replaceChildren();
  const fill = (values) => {
    rows.replaceChildren();
    for (const m of METRICS) {
      const tr = document.createElement("tr");
      const th0 = document.createElement("th");
      th0.scope = "row";
      th0.textContent = `${m.label} ${m.dir === "up" ? "at or above" : "below"}`;
      tr.append(th0);
      for (const lvl of ["warn", "alert"]) {
        const td = document.createElement("td");
        const input = document.createElement("input");
        input.type = "number";
        input.step = String(m.step);
        input.min = "0";
        input.name = `${m.key}.${lvl}`;
        input.value = String(values[m.key][lvl]);
        input.setAttribute("aria-label", `${m.label}: ${lvl === "warn" ? "amber" : "red"} ${m.dir === "up" ? "at or above" : "below"}${m.unit ? ` (${m.unit === "s" ? "seconds" : "percent"})` : ""}`);
        const unit = document.createElement("span");
        unit.className = "unit";
        unit.textContent = m.unit;
        td.append(input, unit);
        tr.append(td);
      }
      rows.append(tr);
    }
  };
  fill(th);
  const opener = document.activeElement;
  $("th-reset").onclick = () => fill(defaultThresholds(fig));
  $("th-cancel").onclick = () => dlg.close();
  $("th-form").onsubmit = () => {
    const saved = {};
    for (const m of METRICS) {
      saved[m.key] = {};
      for (const lvl of ["warn", "alert"]) {
        const v = Number(rows.querySelector(`input[name="${m.key}.${lvl}"]`).value);
        if (Number.isFinite(v)) saved[m.key][lvl] = v;
      }
    }
    store.set(thresholdKey(board.accountId, key), saved);
    board.render();
  };
  dlg.onclose = () => opener?.focus?.();
  dlg.showModal();
  rows.querySelector("input")?.focus();
}

// ---- helpers ----------------------------------------------------------------

function listOf(v) {
  if (Array.isArray(v)) return v;
  if (v && typeof v === "object") return Object.values(v);
  return [];
}

function pct(v) {
  return v == null ? "—" : `${Number(v).toFixed(1).replace(/\.0$/, "")}%`;
}

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function set(el, sel, text) {
  setText(el.querySelector(sel), text);
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

// ---- wiring -------------------------------------------------------------------

$("ws-url").value = defaultWsUrl();
const tvParam = new URLSearchParams(location.search).get("tv");
setTV(tvParam != null ? tvParam !== "0" : store.get(tvKey, false) === true);
$("tv").addEventListener("click", () => setTV(!document.documentElement.classList.contains("tv")));
document.addEventListener("keydown", (e) => {
  if ((e.key === "t" || e.key === "T") && !e.ctrlKey && !e.metaKey && !e.altKey && !$("board").hidden &&
      !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName) && !$("thresholds").open) {
    setTV(!document.documentElement.classList.contains("tv"));
  }
});
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const button = e.target.querySelector("button[type=submit]");
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
