// ccevents.js: the ccevents client for browsers, served by the gateway as /client/ccevents.js.
// Built from clients/typescript (the npm package @ccevents/client) by `npm run build`; do not edit.
// sources sha256 b9e942407caca2b427c9dcf94032efd2e6b90ffe634f8d054201eef6acdc937a
// The TypeScript client of the ccevents websocket gateway, for browsers and
// Node ≥ 20. It keeps one websocket up: after any drop (network change,
// laptop sleep, gateway restart, slow-consumer close) it reconnects with
// exponential backoff and jitter and resubscribes every binding after the
// last sequence it received, so each handler sees every event once and in
// stream order. With an API key it obtains the auth token from the REST API
// and renews it on the live connection before it expires.
//
//   import { connect } from "@ccevents/client";      // or "http://HOST:5555/client/ccevents.js"
//   const cc = await connect({ url: "ws://HOST:5555", apiKey, apiUrl: "http://HOST:8000" });
//   await cc.subscribe(accountId, `qubicle.queue.${accountId}.*`, (ev) => {
//     if (ev.data.event === "queue.join") console.log(ev.data.position); // typed: QueueJoin
//   });
//
// This file is the whole runtime: the gateway serves its compiled form as
// /client/ccevents.js, so browser pages and npm users run the same client.
/** Close code the gateway uses for a client that fell too far behind. */
export const CLOSE_SLOW_CONSUMER = 4008;
/** Close code the gateway uses when the token expired without a refresh. */
export const CLOSE_TOKEN_EXPIRED = 4001;
/** Error answered by the gateway or the REST API, with its message for people. */
export class CCEventsError extends Error {
    /** The HTTP status of a REST refusal, else 0. */
    status;
    /** Every message of the refusal; the first is the main one. */
    errors;
    /** Set when waiting retryAfterMs may help (throttled auth failures). */
    retryAfterMs;
    /** Set when retrying cannot help: the gateway refused the request. */
    refused;
    /** Set when the gateway did not answer in time. */
    timeout;
    constructor(message, { status = 0, errors = [] } = {}) {
        super(message);
        this.name = "CCEventsError";
        this.status = status;
        this.errors = errors;
    }
}
/** Exchanges an API key for an auth token with PUT /v2/api_auth. */
export async function login(apiUrl, apiKey) {
    const body = await rest("PUT", `${trimSlash(apiUrl)}/v2/api_auth`, null, { data: { api_key: apiKey } });
    const exp = Date.parse(body?.data?.expires_at ?? "");
    return { token: body.auth_token, accountId: body?.data?.account_id ?? "", expiresAt: Number.isNaN(exp) ? 0 : exp };
}
/** Calls the REST API and resolves to the decoded success envelope; rejects with its message. */
export async function rest(method, url, token, body) {
    const headers = {};
    if (token)
        headers["X-Auth-Token"] = token;
    if (body !== undefined && body !== null)
        headers["Content-Type"] = "application/json";
    let resp;
    try {
        resp = await fetch(url, { method, headers, body: body == null ? undefined : JSON.stringify(body) });
    }
    catch (err) {
        throw new CCEventsError(`could not reach ${url}: ${err.message}`);
    }
    let data = null;
    try {
        data = await resp.json();
    }
    catch {
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
const OPEN = 1; // WebSocket.OPEN, which Node 20 has no global for
/**
 * A connection to the gateway that stays up. Listen for "status" events to
 * show the connection to people, "notice" for the gateway's announcements
 * and "error" for the refusal that stopped it for good.
 */
export class CCEvents extends EventTarget {
    url;
    apiUrl;
    /** "connecting", "connected", "disconnected" or "closed". */
    state = "connecting";
    /** Resolves once the client has stopped: with null after close(), or with the refusal that stopped it. */
    closed;
    _apiKey;
    _token;
    _minBackoff;
    _maxBackoff;
    _pingEvery;
    _timeout;
    _WebSocket;
    _log;
    /** @internal */ _subs = new Map();
    _pending = new Map();
    _nextId = 0;
    _order = 0;
    /** @internal */ _ws = null;
    _closed = false;
    _attempt = 0;
    _connectedSince = 0;
    _resubscribing = false;
    _timers = new Set();
    _retryTimer = null;
    _renewTimer = null;
    _waiters = [];
    _online = () => this._retryNow();
    _stopped;
    // Handlers run one at a time, in arrival order; an async handler holds
    // the ones after it until it settles.
    _queue = [];
    _draining = false;
    constructor(o) {
        super();
        if (!o || !/^wss?:\/\//.test(o.url || ""))
            throw new CCEventsError("url must start with ws:// or wss://");
        if (!o.token && !o.apiKey)
            throw new CCEventsError("give a token or an apiKey");
        if (o.token && o.apiKey)
            throw new CCEventsError("give a token or an apiKey, not both");
        if (o.apiKey && !o.apiUrl)
            throw new CCEventsError("apiUrl is required with an apiKey, e.g. http://HOST:8000");
        this.url = o.url;
        this.apiUrl = o.apiUrl ? trimSlash(o.apiUrl) : "";
        this._apiKey = o.apiKey || "";
        this._token = o.token ? tokenInfo(o.token) : { token: "", accountId: "", expiresAt: 0 };
        this._minBackoff = o.minBackoffMs ?? 250;
        this._maxBackoff = Math.max(o.maxBackoffMs ?? 30000, this._minBackoff);
        this._pingEvery = o.pingIntervalMs ?? 20000;
        this._timeout = o.requestTimeoutMs ?? 10000;
        this._WebSocket = o.WebSocket;
        this._log = o.logger ?? console;
        this.closed = new Promise((resolve) => (this._stopped = resolve));
        globalThis.addEventListener?.("online", this._online);
    }
    /** The current auth token: { token, accountId, expiresAt }. With an API key it changes as it is renewed. */
    get token() {
        return { ...this._token };
    }
    /**
     * The WebSocket class this client opens connections with. The Node entry
     * of the package overrides it to fall back to `ws` on Node 20.
     */
    async webSocketClass() {
        const ws = this._WebSocket ?? globalThis.WebSocket;
        if (!ws) {
            throw new CCEventsError("no WebSocket implementation: pass options.WebSocket, or on Node 20 install the ws package (npm install ws)");
        }
        return ws;
    }
    /** Connects for the first time; rejects with the reason if that fails. */
    async open() {
        if (this._apiKey)
            this._token = await login(this.apiUrl, this._apiKey);
        else if (this._token.expiresAt && Date.now() > this._token.expiresAt) {
            throw new CCEventsError(`the auth token expired at ${new Date(this._token.expiresAt).toISOString()}; get a fresh one (PUT /v2/api_auth) or use an apiKey`);
        }
        this._WebSocket = await this.webSocketClass();
        await this._dial();
        this._connectedSince = Date.now();
        this._setState("connected");
        if (this._apiKey)
            this._scheduleRenewal(0);
    }
    async subscribe(accountId, bindings, handler, opts = {}) {
        const list = Array.isArray(bindings) ? bindings : [bindings];
        if (typeof handler !== "function")
            throw new CCEventsError("handler must be a function");
        if (list.length === 0)
            throw new CCEventsError("give at least one binding");
        if (this._closed)
            throw new CCEventsError("client is closed");
        for (const [i, b] of list.entries()) {
            if (this._subs.has(b) || list.indexOf(b) !== i)
                throw new CCEventsError(`already subscribed to ${b}`);
        }
        const subs = list.map((b) => new Subscription(this, accountId, b, handler, opts, ++this._order));
        for (const sub of subs)
            this._subs.set(sub.binding, sub); // inactive until accepted
        try {
            for (;;) {
                const ws = await this._connected();
                try {
                    await this._subscribeOn(ws, accountId, subs);
                    return Array.isArray(bindings) ? subs : subs[0];
                }
                catch (err) {
                    if (err !== LOST)
                        throw err;
                }
            }
        }
        catch (err) {
            for (const sub of subs) {
                // A binding the gateway took as part of a refused request must not
                // stay on the connection.
                if (sub._active)
                    sub.unsubscribe().catch(() => { });
                sub._gone = true;
                if (this._subs.get(sub.binding) === sub)
                    this._subs.delete(sub.binding);
            }
            throw err;
        }
    }
    /**
     * Loads the account's state from GET /v2/accounts/{accountId}/qubicle_state.
     * Subscribing with since = its { sequence, epoch } then applies exactly
     * the events after it.
     */
    async snapshot(accountId) {
        if (!this.apiUrl)
            throw new CCEventsError("snapshot needs apiUrl, e.g. http://HOST:8000");
        const body = await rest("GET", `${this.apiUrl}/v2/accounts/${encodeURIComponent(accountId)}/qubicle_state`, this._token.token);
        return body.data;
    }
    /** Closes the connection and stops reconnecting; no handler runs after it. */
    close() {
        this._stop(null);
    }
    // ---- connection ------------------------------------------------------
    _stop(err) {
        if (this._closed)
            return;
        this._closed = true;
        globalThis.removeEventListener?.("online", this._online);
        for (const t of this._timers)
            clearTimeout(t);
        this._timers.clear();
        this._queue.length = 0;
        const ws = this._ws;
        this._ws = null;
        if (ws) {
            if (ws._pingTimer)
                clearInterval(ws._pingTimer);
            ws.close(1000, "client closed");
        }
        this._failPending(new CCEventsError("client is closed"));
        for (const w of this._waiters.splice(0))
            w.reject(new CCEventsError("client is closed"));
        this._setState("closed");
        if (err)
            this.dispatchEvent(new CustomEvent("error", { detail: { error: err } }));
        this._stopped(err);
    }
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
                ws = new this._WebSocket(this.url);
            }
            catch (err) {
                reject(new CCEventsError(`cannot connect to ${this.url}: ${err.message}`));
                return;
            }
            let opened = false;
            // A handshake that hangs (a black-holed address) must not stall reconnecting.
            const timer = this._later(this._timeout, () => {
                if (!opened)
                    ws.close();
                reject(new CCEventsError(`cannot connect to ${this.url}: no answer within ${this._timeout} ms`));
            });
            ws.onopen = () => {
                opened = true;
                clearTimeout(timer);
                this._timers.delete(timer);
                if (this._closed) {
                    ws.close(1000, "client closed");
                    reject(new CCEventsError("client is closed"));
                    return;
                }
                this._ws = ws;
                this._startPing(ws);
                resolve(ws);
            };
            ws.onmessage = (m) => this._onMessage(ws, m.data);
            ws.onclose = (e) => {
                if (!opened) {
                    clearTimeout(timer);
                    this._timers.delete(timer);
                    reject(new CCEventsError(`cannot connect to ${this.url}` + (e.code !== 1006 ? ` (${e.code} ${e.reason})` : "")));
                    return;
                }
                this._onClose(ws, e);
            };
            ws.onerror = () => { }; // onclose follows with the code
        });
    }
    /** Resolves with an open websocket, waiting while reconnecting. */
    _connected() {
        if (this._closed)
            return Promise.reject(new CCEventsError("client is closed"));
        if (this._ws && this._ws.readyState === OPEN && !this._resubscribing)
            return Promise.resolve(this._ws);
        return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
    }
    _onClose(ws, e) {
        if (ws._pingTimer)
            clearInterval(ws._pingTimer);
        if (this._ws !== ws)
            return;
        this._ws = null;
        this._failPending(LOST);
        if (this._closed)
            return;
        this._reconnectAfter(describeClose(e));
    }
    _reconnectAfter(why, atLeastMs = 0) {
        // A connection that held for a while earns a fresh backoff; one that
        // keeps failing right away backs off further each time.
        if (this._connectedSince && Date.now() - this._connectedSince > 10 * this._minBackoff + 1000)
            this._attempt = 0;
        this._connectedSince = 0;
        this._attempt++;
        const wait = Math.max(atLeastMs, backoff(this._minBackoff, this._maxBackoff, this._attempt));
        this._setState("disconnected", { error: why, retryMs: wait, attempt: this._attempt });
        this._retryTimer = this._later(wait, () => {
            this._retryTimer = null;
            void this._reconnect();
        });
    }
    /** Skips the remaining backoff when the browser says the network is back. */
    _retryNow() {
        if (this._retryTimer && !this._closed) {
            clearTimeout(this._retryTimer);
            this._timers.delete(this._retryTimer);
            this._retryTimer = null;
            void this._reconnect();
        }
    }
    async _reconnect() {
        if (this._closed)
            return;
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
        }
        catch (err) {
            this._resubscribing = false;
            if (ws && this._ws === ws) {
                this._ws = null;
                ws.onclose = null;
                if (ws._pingTimer)
                    clearInterval(ws._pingTimer);
                ws.close(1000, "resubscribe failed");
            }
            if (this._closed)
                return;
            const e = err;
            if (err !== LOST && e instanceof CCEventsError && (e.status === 401 || e.refused)) {
                this._stop(e); // retrying cannot help: the gateway or the API refuses us
                return;
            }
            if (!this._retryTimer)
                this._reconnectAfter(err === LOST ? "connection lost" : e.message, e.retryAfterMs);
            return;
        }
        this._resubscribing = false;
        this._connectedSince = Date.now();
        this._setState("connected", { attempt: this._attempt });
        for (const w of this._waiters.splice(0))
            w.resolve(ws);
    }
    _startPing(ws) {
        ws._pingTimer = setInterval(() => {
            this._request(ws, { action: "ping" }).catch((err) => {
                if (err && err.timeout && this._ws === ws)
                    this._abandon(ws, 4000, "the gateway did not answer a ping");
            });
        }, this._pingEvery);
    }
    /**
     * Gives up on a connection at once. A close handshake with a gateway that
     * no longer answers would wait for it (ws: 30 s), so the socket is
     * dropped from here and reconnecting starts now.
     */
    _abandon(ws, code, reason) {
        ws.onclose = ws.onmessage = ws.onerror = null;
        const terminate = ws.terminate;
        if (typeof terminate === "function")
            terminate.call(ws);
        else
            ws.close(code, reason);
        this._onClose(ws, { code, reason });
    }
    // ---- requests ----------------------------------------------------------
    /** @internal */
    _request(ws, msg, onReply) {
        return new Promise((resolve, reject) => {
            if (ws.readyState !== OPEN) {
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
            this._pending.set(id, { resolve, reject, onReply, timer });
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
        const specs = subs.map((s, i) => {
            const p = since[i];
            return p ? { binding: s.binding, since: p.epoch ? p : { sequence: p.sequence } } : s.binding;
        });
        for (let attempt = 0;; attempt++) {
            const msg = { action: "subscribe", auth_token: this._token.token, data: { account_id: accountId, bindings: specs } };
            const r = await this._request(ws, msg, (r) => this._accepted(subs, since, r));
            if (r.status === "success")
                return;
            // Retry once with a fresh token, unless the gateway took some of the
            // bindings: then the token is fine and retrying cannot help.
            if (attempt === 0 && this._apiKey && !subs.some((s) => (r.data?.subscribed || []).includes(s.binding))) {
                this._token = await login(this.apiUrl, this._apiKey); // the usual cause: an expired token
                continue;
            }
            const errs = r.data?.errors ?? [];
            const err = new CCEventsError(`subscribe ${subs.map((s) => s.binding).join(" ")}: ${errs[0] || r.data?.message || "refused"}`, { errors: errs });
            // Throttled (repeated auth failures from this address) is not refused.
            if (r.data?.retry_after > 0)
                err.retryAfterMs = r.data.retry_after * 1000;
            else
                err.refused = true;
            throw err;
        }
    }
    /** Runs when a subscribe reply arrives, before any event after it. */
    _accepted(subs, since, r) {
        const d = r.data || {};
        subs.forEach((sub, i) => {
            if (r.status !== "success" && !(d.subscribed || []).includes(sub.binding))
                return;
            sub._active = true;
            const from = since[i];
            const epoch = d.epoch || "";
            if (!from) {
                // Live from the position the gateway names: the first resume is
                // then gapless even if nothing matched before a drop.
                sub._received = { sequence: d.sequence || 0, epoch };
                if (!sub._handled.sequence && !sub._handled.epoch)
                    sub._handled = { ...sub._received };
            }
            else if (from.epoch !== epoch) {
                sub._received = { sequence: 0, epoch }; // another history: all of it is new
            }
            else if (from.sequence > (d.replay_until || 0)) {
                sub._received = { sequence: d.replay_until || 0, epoch };
            }
            if (from && d.recovered === false) {
                const reason = d.message ||
                    (from.epoch && epoch && from.epoch !== epoch
                        ? `event history was reset; events after sequence ${from.sequence} are gone`
                        : `event history no longer reaches back to sequence ${from.sequence}`);
                const resync = { accountId: sub.accountId, binding: sub.binding, from, epoch, reason };
                this._enqueue(() => sub._resync(resync));
            }
        });
    }
    _onMessage(ws, text) {
        let f;
        try {
            f = JSON.parse(String(text));
        }
        catch {
            return; // one malformed frame must not end the session
        }
        switch (f?.action) {
            case "reply": {
                const p = this._pending.get(f.request_id);
                if (!p)
                    return;
                this._pending.delete(f.request_id);
                clearTimeout(p.timer);
                if (p.onReply)
                    p.onReply(f);
                p.resolve(f);
                return;
            }
            case "event": {
                if (ws !== this._ws)
                    return;
                const sub = this._subs.get(f.subscribed_key);
                if (!sub || sub._gone || !sub._fresh(f))
                    return;
                // The gateway delivers an account's events in order, each once:
                // every binding of the account now has everything up to f.
                for (const o of this._subs.values()) {
                    if (o !== sub && o.accountId === sub.accountId && o._active && o._received.epoch === f.epoch && o._received.sequence < f.sequence) {
                        o._received = { sequence: f.sequence, epoch: f.epoch };
                    }
                }
                this._enqueue(() => sub._deliver(f));
                return;
            }
            case "notice": {
                const n = f.data || { reason: "" };
                this.dispatchEvent(new CustomEvent("notice", { detail: n }));
                if (n.reason === "token_expiring" && this._apiKey)
                    this._scheduleRenewal(0, true);
                if (n.reason === "shutdown")
                    this._attempt = 0; // a planned close: come back quickly
                return;
            }
        }
    }
    // ---- handler queue -------------------------------------------------------
    /** Runs fn after every handler before it has returned (or settled). */
    _enqueue(fn) {
        this._queue.push(fn);
        if (!this._draining)
            void this._drain();
    }
    async _drain() {
        this._draining = true;
        try {
            while (this._queue.length > 0 && !this._closed) {
                const fn = this._queue.shift();
                const r = fn();
                if (r && typeof r.then === "function")
                    await r;
            }
        }
        finally {
            this._draining = false;
        }
    }
    /** @internal */
    _warn(msg, err) {
        if (err === undefined)
            this._log.warn(msg);
        else
            this._log.error(msg, err);
    }
    /** @internal */
    _isClosed() {
        return this._closed;
    }
    // ---- token renewal -------------------------------------------------------
    _scheduleRenewal(failures, now = false) {
        if (this._closed)
            return;
        if (this._renewTimer) {
            clearTimeout(this._renewTimer);
            this._timers.delete(this._renewTimer);
        }
        let wait;
        if (now)
            wait = 0;
        else if (failures > 0)
            wait = backoff(1000, 30000, failures);
        else if (this._token.expiresAt)
            wait = Math.max(0, renewAt(this._token) - Date.now());
        else
            return;
        // setTimeout overflows past 2^31-1 ms; wake up earlier and look again.
        wait = Math.min(wait, 2 ** 31 - 1);
        this._renewTimer = this._later(wait, () => void this._renew(failures));
    }
    async _renew(failures) {
        try {
            this._token = await login(this.apiUrl, this._apiKey);
        }
        catch (err) {
            if (err.status === 401) {
                this._stop(err);
                return;
            }
            this._scheduleRenewal(failures + 1);
            return;
        }
        // Hand the new token to the live connection, which the gateway would
        // otherwise close (4001) when the old one expires.
        const ws = this._ws;
        if (ws && ws.readyState === OPEN && [...this._subs.values()].some((x) => x._active)) {
            this._request(ws, { action: "refresh", auth_token: this._token.token }).catch(() => { });
        }
        this._scheduleRenewal(0);
    }
}
/** One binding of a client with its handler; it survives reconnects. */
export class Subscription {
    accountId;
    binding;
    /** @internal */ _order;
    /** @internal */ _received;
    /** @internal */ _handled;
    /** @internal */ _active = false;
    /** @internal */ _gone = false;
    _cc;
    _handler;
    _onResync;
    /** @internal */
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
    }
    /** Position of the last event handled: pass it as since to resume later. */
    get position() {
        return { ...this._handled };
    }
    /** Ends the subscription; a reconnect does not bring it back. */
    async unsubscribe() {
        this._gone = true;
        const cc = this._cc;
        if (cc._subs.get(this.binding) === this)
            cc._subs.delete(this.binding);
        const ws = cc._ws;
        if (!ws || ws.readyState !== OPEN)
            return;
        try {
            await cc._request(ws, {
                action: "unsubscribe",
                auth_token: cc.token.token,
                data: { account_id: this.accountId, binding: this.binding },
            });
        }
        catch (err) {
            if (err !== LOST)
                throw err;
        }
    }
    /** @internal Advances the resume position past ev, if ev is new to this subscription. */
    _fresh(ev) {
        // An event at or before the position in the same history was already
        // delivered; only an overlapping resume can bring it again.
        if (ev.epoch === this._received.epoch && ev.sequence <= this._received.sequence)
            return false;
        this._received = { sequence: ev.sequence, epoch: ev.epoch };
        return true;
    }
    /** @internal */
    _deliver(ev) {
        if (this._gone || this._cc._isClosed())
            return;
        const done = () => {
            this._handled = { sequence: ev.sequence, epoch: ev.epoch };
        };
        const fail = (err) => this._cc._warn(`ccevents: handler of ${this.binding} threw`, err);
        try {
            const r = this._handler(ev);
            if (r && typeof r.then === "function")
                return r.then(done, (err) => (fail(err), done()));
        }
        catch (err) {
            fail(err);
        }
        done();
    }
    /** @internal */
    _resync(r) {
        if (this._gone)
            return;
        if (!this._onResync) {
            this._cc._warn(`ccevents: ${this.binding} needs a resync: ${r.reason}`);
            return;
        }
        const fail = (err) => this._cc._warn(`ccevents: onResync of ${this.binding} threw`, err);
        try {
            const p = this._onResync(r);
            if (p && typeof p.then === "function")
                return p.catch(fail);
        }
        catch (err) {
            fail(err);
        }
    }
}
// LOST rejects requests whose connection went away before the reply.
const LOST = Object.freeze(new CCEventsError("connection lost"));
/** Exponential backoff with equal jitter: half fixed, half random, so a restarted gateway's clients spread out. */
export function backoff(lo, hi, attempt) {
    let d = lo;
    for (let i = 1; i < attempt && d < hi; i++)
        d *= 2;
    d = Math.min(d, hi);
    return d / 2 + Math.random() * (d / 2);
}
/** When to replace a token: after 4/5 of its life, ≥30 s (or half its life) before expiry. */
function renewAt(t) {
    const life = t.expiresAt - Date.now();
    const margin = Math.max(life / 5, Math.min(30000, life / 2));
    return t.expiresAt - margin;
}
/**
 * Reads the account and expiry a ccevents token states, without verifying
 * it (the gateway does): a client given a bare token then knows its account
 * and refuses one that already expired.
 */
function tokenInfo(token) {
    const t = { token, accountId: "", expiresAt: 0 };
    const parts = token.split(".");
    if (parts.length !== 3)
        return t;
    try {
        const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
        const claims = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
        if (typeof claims.account_id === "string")
            t.accountId = claims.account_id;
        if (typeof claims.exp === "number" && claims.exp > 0)
            t.expiresAt = claims.exp * 1000;
    }
    catch {
        // not a token this client can read; the gateway will say what is wrong
    }
    return t;
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
        case 4000:
            return `connection given up: ${e.reason || "keepalive timeout"} (4000)`;
        default:
            return `connection closed (${e.code}${e.reason ? " " + e.reason : ""})`;
    }
}
function trimSlash(u) {
    return u.replace(/\/+$/, "");
}
