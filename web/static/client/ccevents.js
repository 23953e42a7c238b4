// ccevents.js — browser client of the ccevents websocket gateway.
//
// A dependency-free ES module. It keeps one websocket up: after any drop
// (network change, laptop sleep, gateway restart, slow-consumer close) it
// reconnects with exponential backoff and jitter and resubscribes every
// binding after the last sequence it received, so each handler sees every
// event once and in stream order. With an API key it obtains the auth token
// from the REST API and renews it on the live connection before it expires.
//
//   import { connect } from "http://HOST:5555/client/ccevents.js";
//   const cc = await connect({ url: "ws://HOST:5555", apiKey, apiUrl: "http://HOST:8000" });
//   await cc.subscribe(accountId, `qubicle.queue.${accountId}.*`, (ev) => console.log(ev.routing_key, ev.data));
//
// Every event handed to a handler is the gateway's frame: { subscribed_key,
// subscription_key, routing_key, name, sequence, epoch, data }.

/** Close code the gateway uses for a client that fell too far behind. */
export const CLOSE_SLOW_CONSUMER = 4008;
/** Close code the gateway uses when the token expired without a refresh. */
export const CLOSE_TOKEN_EXPIRED = 4001;

/** Error answered by the gateway or the REST API, with its message for people. */
export class CCEventsError extends Error {
  constructor(message, { status = 0, errors = [] } = {}) {
    super(message);
    this.name = "CCEventsError";
    this.status = status;
    this.errors = errors;
  }
}

/**
 * Exchanges an API key for an auth token with PUT /v2/api_auth.
 * Resolves to { token, accountId, expiresAt (ms since epoch or 0) }.
 */
export async function login(apiUrl, apiKey) {
  const body = await rest("PUT", `${trimSlash(apiUrl)}/v2/api_auth`, null, { data: { api_key: apiKey } });
  const exp = Date.parse(body.data?.expires_at ?? "");
  return { token: body.auth_token, accountId: body.data?.account_id ?? "", expiresAt: Number.isNaN(exp) ? 0 : exp };
}

/** Calls the REST API and resolves to the decoded success envelope. */
export async function rest(method, url, token, body) {
  const headers = {};
  if (token) headers["X-Auth-Token"] = token;
  if (body !== undefined && body !== null) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(url, { method, headers, body: body == null ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new CCEventsError(`could not reach ${url}: ${err.message}`);
  }
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // not JSON: fall through with the status line
  }
  if (!resp.ok) {
    const msg = data?.message || data?.data?.errors?.[0] || `${resp.status} ${resp.statusText}`;
    throw new CCEventsError(msg, { status: resp.status, errors: data?.data?.errors ?? [] });
  }
  return data;
}

/** Opens a client and resolves once its first connection is up. */
export async function connect(options) {
  const cc = new CCEvents(options);
  await cc.open();
  return cc;
}

/**
 * A connection to the gateway that stays up. Listen for "status" events
 * (detail: { state: "connecting"|"connected"|"disconnected"|"closed",
 * error, retryMs, attempt }) to show the connection to people.
 */
export class CCEvents extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.url        gateway websocket URL, e.g. ws://HOST:5555
   * @param {string} [o.token]    a fixed auth token, or:
   * @param {string} [o.apiKey]   an API key (with apiUrl): the token is obtained and renewed
   * @param {string} [o.apiUrl]   REST API, e.g. http://HOST:8000
   * @param {number} [o.minBackoffMs=250]  first reconnect wait
   * @param {number} [o.maxBackoffMs=30000] longest reconnect wait
   * @param {number} [o.pingIntervalMs=20000] how often liveness is checked
   * @param {number} [o.requestTimeoutMs=10000] longest wait for a reply
   */
  constructor(o) {
    super();
    if (!o || !/^wss?:\/\//.test(o.url || "")) throw new CCEventsError("url must start with ws:// or wss://");
    if (!o.token && !o.apiKey) throw new CCEventsError("give a token or an apiKey");
    if (o.apiKey && !o.apiUrl) throw new CCEventsError("apiUrl is required with an apiKey");
    this.url = o.url;
    this.apiUrl = o.apiUrl ? trimSlash(o.apiUrl) : "";
    this._apiKey = o.apiKey || "";
    this._token = { token: o.token || "", accountId: "", expiresAt: 0 };
    this._minBackoff = o.minBackoffMs ?? 250;
    this._maxBackoff = o.maxBackoffMs ?? 30000;
    this._pingEvery = o.pingIntervalMs ?? 20000;
    this._timeout = o.requestTimeoutMs ?? 10000;
    this._subs = new Map(); // binding -> Subscription
    this._pending = new Map(); // request_id -> { resolve, reject, onReply, timer }
    this._nextId = 0;
    this._order = 0;
    this._ws = null;
    this._closed = false;
    this._attempt = 0;
    this._timers = new Set();
    this._waiters = []; // resolve functions waiting for a connection
    this.state = "connecting";
    this._online = () => this._retryNow();
    globalThis.addEventListener?.("online", this._online);
  }

  /** The current auth token: { token, accountId, expiresAt }. */
  get token() {
    return { ...this._token };
  }

  /** Connects for the first time; rejects with the reason if that fails. */
  async open() {
    if (this._apiKey) this._token = await login(this.apiUrl, this._apiKey);
    await this._dial();
    this._connectedSince = Date.now();
    this._setState("connected");
    if (this._apiKey) this._scheduleRenewal(0);
  }

  /**
   * Subscribes to one binding (a string) or several (an array) of
   * accountId; handler(event) runs for each event. Resolves to a
   * Subscription, or an array of them, once the gateway accepts; rejects
   * with the gateway's explanation if it refuses. Give several bindings of
   * an account in one call to resume them together with since: once events
   * of an account flow, the gateway cannot go back before them.
   * An event matching several bindings is delivered once, to the first.
   * @param {object} [opts]
   * @param {{sequence:number, epoch?:string}} [opts.since] resume after this position
   * @param {(r:{accountId,binding,from,epoch,reason})=>void} [opts.onResync]
   *   runs before the next event when the gateway could not replay all that
   *   was missed: reload a snapshot and skip events it already includes.
   */
  async subscribe(accountId, bindings, handler, opts = {}) {
    const list = Array.isArray(bindings) ? bindings : [bindings];
    if (typeof handler !== "function") throw new CCEventsError("handler must be a function");
    if (list.length === 0) throw new CCEventsError("give at least one binding");
    for (const [i, b] of list.entries()) {
      if (this._subs.has(b) || list.indexOf(b) !== i) throw new CCEventsError(`already subscribed to ${b}`);
    }
    const subs = list.map((b) => new Subscription(this, accountId, b, handler, opts, ++this._order));
    for (const sub of subs) this._subs.set(sub.binding, sub); // inactive until accepted
    try {
      for (;;) {
        const ws = await this._connected();
        try {
          await this._subscribeOn(ws, accountId, subs);
          return Array.isArray(bindings) ? subs : subs[0];
        } catch (err) {
          if (err !== LOST) throw err;
        }
      }
    } catch (err) {
      for (const sub of subs) {
        // A binding the gateway took as part of a refused request must not
        // stay on the connection.
        if (sub._active) sub.unsubscribe().catch(() => {});
        sub._gone = true;
        if (this._subs.get(sub.binding) === sub) this._subs.delete(sub.binding);
      }
      throw err;
    }
  }

  /** Closes the connection and stops reconnecting. */
  close() {
    if (this._closed) return;
    this._closed = true;
    globalThis.removeEventListener?.("online", this._online);
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(1000, "client closed");
    this._failPending(new CCEventsError("client is closed"));
    for (const w of this._waiters.splice(0)) w.reject(new CCEventsError("client is closed"));
    this._setState("closed");
  }

  // ---- connection ------------------------------------------------------

  _setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...extra } }));
  }

  _later(ms, fn) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
    return t;
  }

  /** Opens a websocket and resolves once it is open, with its read handlers set. */
  _dial() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (err) {
        reject(new CCEventsError(`cannot connect to ${this.url}: ${err.message}`));
        return;
      }
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this._ws = ws;
        this._startPing(ws);
        resolve(ws);
      };
      ws.onmessage = (m) => this._onMessage(ws, m.data);
      ws.onclose = (e) => {
        if (!opened) {
          reject(new CCEventsError(`cannot connect to ${this.url}` + (e.code !== 1006 ? ` (${e.code} ${e.reason})` : "")));
          return;
        }
        this._onClose(ws, e);
      };
      ws.onerror = () => {}; // onclose follows with the code
    });
  }

  /** Resolves with an open websocket, waiting while reconnecting. */
  _connected() {
    if (this._closed) return Promise.reject(new CCEventsError("client is closed"));
    if (this._ws && this._ws.readyState === WebSocket.OPEN && !this._resubscribing) return Promise.resolve(this._ws);
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  _onClose(ws, e) {
    if (ws._pingTimer) clearInterval(ws._pingTimer);
    if (this._ws !== ws) return;
    this._ws = null;
    this._failPending(LOST);
    if (this._closed) return;
    const why = describeClose(e);
    this._reconnectAfter(why);
  }

  _reconnectAfter(why, atLeastMs = 0) {
    // A connection that held for a while earns a fresh backoff; one that
    // keeps failing right away backs off further each time.
    if (this._connectedSince && Date.now() - this._connectedSince > 10000) this._attempt = 0;
    this._connectedSince = 0;
    this._attempt++;
    const wait = Math.max(atLeastMs, backoff(this._minBackoff, this._maxBackoff, this._attempt));
    this._setState("disconnected", { error: why, retryMs: wait, attempt: this._attempt });
    this._retryTimer = this._later(wait, () => {
      this._retryTimer = null;
      this._reconnect();
    });
  }

  /** Skips the remaining backoff when the browser says the network is back. */
  _retryNow() {
    if (this._retryTimer && !this._closed) {
      clearTimeout(this._retryTimer);
      this._timers.delete(this._retryTimer);
      this._retryTimer = null;
      this._reconnect();
    }
  }

  async _reconnect() {
    if (this._closed) return;
    this._setState("connecting", { attempt: this._attempt });
    let ws;
    try {
      if (this._apiKey && this._token.expiresAt && Date.now() > renewAt(this._token)) {
        this._token = await login(this.apiUrl, this._apiKey);
      }
      this._resubscribing = true;
      ws = await this._dial();
      // One request per account, every binding from its own position, so
      // the gateway replays each account's history once.
      const active = [...this._subs.values()].filter((s) => s._active && !s._gone).sort((a, b) => a._order - b._order);
      for (const acc of new Set(active.map((s) => s.accountId))) {
        await this._subscribeOn(ws, acc, active.filter((s) => s.accountId === acc));
      }
    } catch (err) {
      this._resubscribing = false;
      if (ws && this._ws === ws) {
        this._ws = null;
        ws.onclose = null;
        ws.close(1000, "resubscribe failed");
        if (ws._pingTimer) clearInterval(ws._pingTimer);
      }
      if (err !== LOST && err instanceof CCEventsError && (err.status === 401 || err.refused)) {
        this._fail(err); // retrying cannot help: the gateway refuses us
        return;
      }
      if (!this._closed && !this._retryTimer) this._reconnectAfter(err === LOST ? "connection lost" : err.message, err.retryAfterMs);
      return;
    }
    this._resubscribing = false;
    this._connectedSince = Date.now();
    this._setState("connected");
    for (const w of this._waiters.splice(0)) w.resolve(ws);
  }

  _fail(err) {
    this.close();
    this.dispatchEvent(new CustomEvent("error", { detail: { error: err } }));
  }

  _startPing(ws) {
    ws._pingTimer = setInterval(() => {
      this._request(ws, { action: "ping" }).catch((err) => {
        if (err && err.timeout && this._ws === ws) ws.close(4000, "ping timeout");
      });
    }, this._pingEvery);
  }

  // ---- requests ----------------------------------------------------------

  _request(ws, msg, onReply) {
    return new Promise((resolve, reject) => {
      if (ws.readyState !== WebSocket.OPEN) {
        reject(LOST);
        return;
      }
      const id = `r${++this._nextId}`;
      msg.request_id = id;
      const timer = setTimeout(() => {
        this._pending.delete(id);
        const err = new CCEventsError(`gateway did not answer ${msg.action} within ${this._timeout} ms`);
        err.timeout = true;
        reject(err);
      }, this._timeout);
      this._pending.set(id, { resolve, reject, onReply, timer, ws });
      ws.send(JSON.stringify(msg));
    });
  }

  _failPending(err) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this._pending.delete(id);
    }
  }

  async _subscribeOn(ws, accountId, subs) {
    const since = subs.map((s) => (s._received.sequence > 0 || s._received.epoch ? { ...s._received } : null));
    const specs = subs.map((s, i) => (since[i] ? { binding: s.binding, since: since[i].epoch ? since[i] : { sequence: since[i].sequence } } : s.binding));
    for (let attempt = 0; ; attempt++) {
      const msg = { action: "subscribe", auth_token: this._token.token, data: { account_id: accountId, bindings: specs } };
      const r = await this._request(ws, msg, (r) => this._accepted(subs, since, r));
      if (r.status === "success") return;
      // Retry once with a fresh token, unless the gateway took some of the
      // bindings: then the token is fine and retrying cannot help.
      if (attempt === 0 && this._apiKey && !subs.some((s) => (r.data?.subscribed || []).includes(s.binding))) {
        this._token = await login(this.apiUrl, this._apiKey); // the usual cause: an expired token
        continue;
      }
      const errs = r.data?.errors ?? [];
      const err = new CCEventsError(`subscribe ${subs.map((s) => s.binding).join(" ")}: ${errs[0] || r.data?.message || "refused"}`, { errors: errs });
      // Throttled (repeated auth failures from this address) is not refused.
      if (r.data?.retry_after > 0) err.retryAfterMs = r.data.retry_after * 1000;
      else err.refused = true;
      throw err;
    }
  }

  /** Runs when a subscribe reply arrives, before any event after it. */
  _accepted(subs, since, r) {
    const d = r.data || {};
    subs.forEach((sub, i) => {
      if (r.status !== "success" && !(d.subscribed || []).includes(sub.binding)) return;
      sub._active = true;
      const from = since[i];
      if (!from) {
        // Live from the position the gateway names: the first resume is
        // then gapless even if nothing matched before a drop.
        sub._received = { sequence: d.sequence || 0, epoch: d.epoch || "" };
        if (!sub._handled.sequence && !sub._handled.epoch) sub._handled = { ...sub._received };
      } else if (from.epoch !== (d.epoch || "")) {
        sub._received = { sequence: 0, epoch: d.epoch || "" }; // another history: all of it is new
      } else if (from.sequence > (d.replay_until || 0)) {
        sub._received = { sequence: d.replay_until || 0, epoch: d.epoch || "" };
      }
      if (from && d.recovered === false) {
        const reason =
          d.message ||
          (from.epoch && d.epoch && from.epoch !== d.epoch
            ? `event history was reset; events after sequence ${from.sequence} are gone`
            : `event history no longer reaches back to sequence ${from.sequence}`);
        sub._resync({ accountId: sub.accountId, binding: sub.binding, from, epoch: d.epoch || "", reason });
      }
    });
  }

  _onMessage(ws, text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      return; // one malformed frame must not end the session
    }
    switch (f.action) {
      case "reply": {
        const p = this._pending.get(f.request_id);
        if (!p) return;
        this._pending.delete(f.request_id);
        clearTimeout(p.timer);
        if (p.onReply) p.onReply(f);
        p.resolve(f);
        return;
      }
      case "event": {
        const sub = this._subs.get(f.subscribed_key);
        if (!sub || sub._gone || !sub._fresh(f)) return;
        // The gateway delivers an account's events in order, each once:
        // every binding of the account now has everything up to f.
        for (const o of this._subs.values()) {
          if (o !== sub && o.accountId === sub.accountId && o._active && o._received.epoch === f.epoch && o._received.sequence < f.sequence) {
            o._received = { sequence: f.sequence, epoch: f.epoch };
          }
        }
        sub._deliver(f);
        return;
      }
      case "notice": {
        const reason = f.data?.reason;
        this.dispatchEvent(new CustomEvent("notice", { detail: f.data || {} }));
        if (reason === "token_expiring" && this._apiKey) this._scheduleRenewal(0, true);
        return;
      }
    }
  }

  // ---- token renewal -------------------------------------------------------

  _scheduleRenewal(failures, now = false) {
    if (this._closed) return;
    if (this._renewTimer) {
      clearTimeout(this._renewTimer);
      this._timers.delete(this._renewTimer);
    }
    let wait;
    if (now) wait = 0;
    else if (failures > 0) wait = backoff(1000, 30000, failures);
    else if (this._token.expiresAt) wait = Math.max(0, renewAt(this._token) - Date.now());
    else return;
    // setTimeout overflows past 2^31-1 ms; wake up earlier and look again.
    wait = Math.min(wait, 2 ** 31 - 1);
    this._renewTimer = this._later(wait, () => this._renew(failures));
  }

  async _renew(failures) {
    try {
      this._token = await login(this.apiUrl, this._apiKey);
    } catch (err) {
      if (err.status === 401) {
        this._fail(err);
        return;
      }
      this._scheduleRenewal(failures + 1);
      return;
    }
    // Hand the new token to the live connection, which the gateway would
    // otherwise close (4001) when the old one expires.
    const ws = this._ws;
    if (ws && ws.readyState === WebSocket.OPEN && [...this._subs.values()].some((x) => x._active)) {
      this._request(ws, { action: "refresh", auth_token: this._token.token }).catch(() => {});
    }
    this._scheduleRenewal(0);
  }
}

/** One binding of a client with its handler; it survives reconnects. */
export class Subscription {
  constructor(cc, accountId, binding, handler, opts, order) {
    this._cc = cc;
    this._order = order;
    this.accountId = accountId;
    this.binding = binding;
    this._handler = handler;
    this._onResync = opts.onResync;
    const s = opts.since;
    this._received = s ? { sequence: Number(s.sequence) || 0, epoch: s.epoch || "" } : { sequence: 0, epoch: "" };
    this._handled = { ...this._received };
    this._active = false;
    this._gone = false;
  }

  /** Position of the last event handled: pass it as since to resume later. */
  get position() {
    return { ...this._handled };
  }

  /** Ends the subscription; a reconnect does not bring it back. */
  async unsubscribe() {
    this._gone = true;
    const cc = this._cc;
    if (cc._subs.get(this.binding) === this) cc._subs.delete(this.binding);
    const ws = cc._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    try {
      await cc._request(ws, {
        action: "unsubscribe",
        auth_token: cc._token.token,
        data: { account_id: this.accountId, binding: this.binding },
      });
    } catch (err) {
      if (err !== LOST) throw err;
    }
  }

  /** Advances the resume position past ev, if ev is new to this subscription. */
  _fresh(ev) {
    // An event at or before the position in the same history was already
    // delivered; only an overlapping resume can bring it again.
    if (ev.epoch === this._received.epoch && ev.sequence <= this._received.sequence) return false;
    this._received = { sequence: ev.sequence, epoch: ev.epoch };
    return true;
  }

  _deliver(ev) {
    try {
      this._handler(ev);
    } catch (err) {
      console.error(`ccevents: handler of ${this.binding} threw`, err);
    }
    this._handled = { sequence: ev.sequence, epoch: ev.epoch };
  }

  _resync(r) {
    if (this._onResync) {
      try {
        this._onResync(r);
      } catch (err) {
        console.error(`ccevents: onResync of ${this.binding} threw`, err);
      }
    } else {
      console.warn(`ccevents: ${this.binding} needs a resync: ${r.reason}`);
    }
  }
}

// LOST rejects requests whose connection went away before the reply.
const LOST = Object.freeze(new CCEventsError("connection lost"));

/** Exponential backoff with equal jitter: half fixed, half random. */
export function backoff(lo, hi, attempt) {
  let d = lo;
  for (let i = 1; i < attempt && d < hi; i++) d *= 2;
  d = Math.min(d, hi);
  return d / 2 + Math.random() * (d / 2);
}

/** When to replace a token: after 4/5 of its life, ≥30 s (or half its life) before expiry. */
function renewAt(t) {
  const life = t.expiresAt - Date.now();
  const margin = Math.max(life / 5, Math.min(30000, life / 2));
  return t.expiresAt - margin;
}

function describeClose(e) {
  switch (e.code) {
    case CLOSE_SLOW_CONSUMER:
      return "gateway closed the connection: the client fell behind (4008 slow consumer)";
    case 1001:
      return `gateway is going away (${e.reason || "restart"})`;
    case CLOSE_TOKEN_EXPIRED:
      return "the auth token expired (4001)";
    case 1006:
      return "connection dropped";
    default:
      return `connection closed (${e.code}${e.reason ? " " + e.reason : ""})`;
  }
}

function trimSlash(u) {
  return u.replace(/\/+$/, "");
}
