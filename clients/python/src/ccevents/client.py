"""The asyncio client of the ccevents websocket gateway.

A Client keeps one websocket up: after any drop (network, gateway restart,
slow-consumer close, a gateway that stops answering pings) it reconnects
with exponential backoff and jitter and resubscribes every binding after
the last sequence it received, so each subscription sees every event once
and in stream order. With an API key it obtains the auth token from the
REST API and renews it on the live connection before it expires.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import inspect
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, AsyncIterator, Awaitable, Callable, Optional, Sequence, Union

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatusCode
from websockets.legacy.client import WebSocketClientProtocol, connect as ws_connect

from .errors import APIError, CCEventsError, ClosedError, ReplyError
from .events import Payload, Snapshot, decode

__all__ = ["Client", "Event", "Position", "Resync", "Subscription", "Token", "login", "CLOSE_SLOW_CONSUMER", "CLOSE_TOKEN_EXPIRED"]

CLOSE_SLOW_CONSUMER = 4008
"""Close code of a client that fell too far behind; it resumes without loss."""
CLOSE_TOKEN_EXPIRED = 4001
"""Close code of a connection whose token expired without a refresh."""

# Events read but not yet handled; when full, reading waits, and the gateway
# sees a slow consumer rather than this process growing without bound.
_QUEUE_LEN = 256
_MAX_FRAME = 1 << 20

log = logging.getLogger("ccevents")


@dataclasses.dataclass(frozen=True)
class Position:
    """A resume cursor: the last stream sequence seen and its history's epoch."""

    sequence: int = 0
    epoch: str = ""

    def __bool__(self) -> bool:
        return self.sequence > 0 or self.epoch != ""

    def __str__(self) -> str:
        return f"{self.sequence}@{self.epoch}" if self.epoch else str(self.sequence)

    @classmethod
    def parse(cls, s: str) -> Position:
        """Reads "SEQUENCE" or "SEQUENCE@EPOCH", as str() writes it."""
        seq, _, epoch = s.strip().partition("@")
        if not seq.isdigit():
            raise ValueError(f"position {s!r}: want a sequence number, optionally followed by @EPOCH")
        return cls(int(seq), epoch)


@dataclasses.dataclass(frozen=True)
class Token:
    """An auth token and what the REST API said about it."""

    value: str
    account_id: str = ""
    expires_at: float = 0.0
    """Unix seconds; 0 when unknown."""


@dataclasses.dataclass(frozen=True)
class Event:
    """One event as the gateway pushes it. payload is the typed dataclass (QueueJoin, …)."""

    subscribed_key: str
    subscription_key: str
    routing_key: str
    name: str
    sequence: int
    epoch: str
    data: dict[str, Any]
    """The payload exactly as received, correlation fields included."""

    @property
    def payload(self) -> Payload:
        """The typed payload; raises UnknownEventError for an event newer than this client."""
        return decode(self.data)

    @property
    def event_type(self) -> str:
        """"<family>.<name>", e.g. "queue.join"."""
        return str(self.data.get("event", ""))

    @property
    def position(self) -> Position:
        return Position(self.sequence, self.epoch)

    def _segment(self, i: int) -> str:
        parts = self.routing_key.split(".")
        return parts[i] if len(parts) > i else ""

    @property
    def family(self) -> str:
        return self._segment(1)

    @property
    def account_id(self) -> str:
        return self._segment(2)

    @property
    def entity_id(self) -> str:
        return self._segment(3)


@dataclasses.dataclass(frozen=True)
class Resync:
    """The gateway could not replay everything a subscription missed.

    Its history no longer reaches back, or it was reset (a new epoch).
    Events keep flowing after it; to be exact again, load a snapshot and
    skip the events whose sequence it already includes.
    """

    account_id: str
    binding: str
    from_: Position
    """The position the subscription asked to resume after."""
    epoch: str
    """The epoch of the gateway's history now."""
    reason: str


Handler = Callable[[Event], Union[None, Awaitable[None]]]
ResyncHandler = Callable[[Resync], Union[None, Awaitable[None]]]


def login(api_url: str, api_key: str, timeout: float = 10.0) -> Token:
    """Exchanges an API key for an auth token with PUT /v2/api_auth (blocking; see Client for async)."""
    body = _rest("PUT", api_url.rstrip("/") + "/v2/api_auth", None, {"data": {"api_key": api_key}}, timeout)
    if not body.get("auth_token"):
        raise APIError("the API answered without an auth_token")
    return Token(body["auth_token"], body.get("data", {}).get("account_id", ""), _parse_time(body.get("data", {}).get("expires_at", "")))


def _rest(method: str, url: str, token: Optional[str], body: Any, timeout: float) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("X-Auth-Token", token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        msg = ""
        try:
            env = json.loads(raw)
            msg = env.get("message") or (env.get("data") or {}).get("message") or ((env.get("data") or {}).get("errors") or [""])[0]
        except (ValueError, AttributeError):
            msg = raw.decode(errors="replace").strip()[:200]
        raise APIError(msg or e.reason, e.code) from None
    except (urllib.error.URLError, OSError) as e:
        raise APIError(f"could not reach {url}: {getattr(e, 'reason', e)}") from None


def _parse_time(s: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _token_info(value: str) -> Token:
    """Reads the account and expiry a ccevents token states, without verifying it (the gateway does)."""
    parts = value.split(".")
    if len(parts) != 3:
        return Token(value)
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return Token(value, str(claims.get("account_id", "")), float(claims.get("exp", 0) or 0))
    except (ValueError, TypeError):
        return Token(value)


def backoff(lo: float, hi: float, attempt: int) -> float:
    """The wait before reconnect attempt n (from 1): lo doubled n-1 times, capped
    at hi, of which a random half is taken away, so clients dropped together
    by one gateway restart spread out instead of returning in one burst."""
    d = lo
    for _ in range(1, attempt):
        if d >= hi:
            break
        d *= 2
    d = min(d, hi)
    return d / 2 + random.uniform(0, d / 2)


def _renew_at(tok: Token, now: float) -> float:
    """After four fifths of the token's remaining life, at least 30 s (or half its life) before expiry."""
    if not tok.expires_at:
        return 0.0
    life = tok.expires_at - now
    return tok.expires_at - max(life / 5, min(30.0, life / 2))


async def _call(fn: Callable[..., Any], arg: Any) -> None:
    r = fn(arg)
    if inspect.isawaitable(r):
        await r


class _Lost(CCEventsError):
    """The connection went away before the reply; the request is retried on the next one."""


class _Binding:
    """One binding of a subscription: where it stands on the stream."""

    def __init__(self, sub: Subscription, binding: str, order: int, since: Position) -> None:
        self.sub = sub
        self.binding = binding
        self.order = order
        self.received = since  # the connection has delivered everything up to here
        self.handled = since  # the last event whose handler returned
        self.active = False  # the gateway has accepted it at least once


class Subscription:
    """Bindings of one account with one handler, or an async iterator of their events.

    It survives reconnects: the client subscribes it again from its last
    position. Without a handler, iterate over it::

        async for event in sub: ...
    """

    def __init__(self, client: Client, account_id: str, bindings: Sequence[str], handler: Optional[Handler],
                 on_resync: Optional[ResyncHandler], since: Position) -> None:
        self._client = client
        self.account_id = account_id
        self._handler = handler
        self._on_resync = on_resync
        self._bindings = [_Binding(self, b, client._next_order(), since) for b in bindings]
        self._gone = False
        self._items: Optional[asyncio.Queue[Any]] = None if handler else asyncio.Queue(_QUEUE_LEN)

    @property
    def bindings(self) -> list[str]:
        return [b.binding for b in self._bindings]

    @property
    def position(self) -> Position:
        """Where the last event handled (or iterated) stands; pass it as since to resume later."""
        best = Position()
        for b in self._bindings:
            p = b.handled
            if not best or (p.epoch == best.epoch and p.sequence > best.sequence):
                best = p
        return best

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._items is None:
            raise CCEventsError("this subscription has a handler; iterate over one subscribed without")
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        assert self._items is not None
        while True:
            item = await self._items.get()
            if item is None:  # unsubscribed, or the client stopped
                err = self._client.error
                if err is not None:
                    raise err
                return
            if isinstance(item, Resync):
                if self._on_resync:
                    await _call(self._on_resync, item)
                else:
                    log.warning("ccevents: %s needs a resync: %s", item.binding, item.reason)
                continue
            b, ev = item
            yield ev
            b.handled = ev.position

    async def unsubscribe(self) -> None:
        """Ends the subscription: no event is handed out after it, and a reconnect does not bring it back."""
        await self._client._unsubscribe(self)

    def _end(self) -> None:
        if self._gone:
            return
        self._gone = True
        if self._items is not None:
            # Wake an iterator; drop what it has not taken yet.
            while not self._items.empty():
                self._items.get_nowait()
            self._items.put_nowait(None)


class _Conn:
    """One websocket to the gateway: a read loop that routes frames, and request/reply over it."""

    def __init__(self, ws: WebSocketClientProtocol, client: Client) -> None:
        self.ws = ws
        self.client = client
        self.pending: dict[str, tuple[asyncio.Future[dict[str, Any]], Optional[Callable[[dict[str, Any]], Any]]]] = {}
        self.next_id = 0
        self.reason = "connection lost"
        self.closed = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def request(self, msg: dict[str, Any], on_reply: Optional[Callable[[dict[str, Any]], Any]] = None) -> dict[str, Any]:
        if self.closed.is_set():
            raise _Lost("connection lost")
        self.next_id += 1
        rid = f"r{self.next_id}"
        msg["request_id"] = rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = (fut, on_reply)
        try:
            await self.ws.send(json.dumps(msg))
            return await asyncio.wait_for(asyncio.shield(fut), self.client._request_timeout)
        except ConnectionClosed:
            raise _Lost("connection lost") from None
        except asyncio.TimeoutError:
            raise CCEventsError(f"gateway did not answer {msg.get('action')} within {self.client._request_timeout} s") from None
        finally:
            self.pending.pop(rid, None)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                if not isinstance(text, str):
                    continue  # the protocol is JSON text
                try:
                    f = json.loads(text)
                except ValueError:
                    continue  # one malformed frame must not end the session
                if not isinstance(f, dict):
                    continue
                if f.get("action") == "reply":
                    p = self.pending.pop(str(f.get("request_id")), None)
                    if p is None:
                        continue
                    fut, on_reply = p
                    # Before any later frame: a subscription is in place before
                    # the first event of its replay is routed.
                    for item in (on_reply(f) if on_reply else None) or ():
                        await self.client._queue.put(item)
                    if not fut.done():
                        fut.set_result(f)
                    continue
                await self.client._route(f)
            self.reason = _describe_close(self.ws.close_code, self.ws.close_reason)
        except ConnectionClosed as e:
            self.reason = _describe_close(*_close_of(e))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must end this connection, not the client
            self.reason = f"read failed: {e!r}"
            log.exception("ccevents: reading the connection failed")
        finally:
            for fut, _ in self.pending.values():
                if not fut.done():
                    fut.set_exception(_Lost("connection lost"))
            self.pending.clear()
            self.closed.set()
            await self.ws.close()

    async def close(self) -> None:
        await self.ws.close(1000, "client closed")
        self.reader.cancel()
        try:
            await self.reader
        except (asyncio.CancelledError, Exception):
            pass
        self.closed.set()


def _close_of(e: ConnectionClosed) -> tuple[Optional[int], str]:
    rcvd = getattr(e, "rcvd", None)
    if rcvd is not None:
        return rcvd.code, rcvd.reason
    return getattr(e, "code", None), getattr(e, "reason", "")


def _describe_close(code: Optional[int], reason: str) -> str:
    if code == CLOSE_SLOW_CONSUMER:
        return "gateway closed the connection: the client fell behind (4008 slow consumer)"
    if code == 1001:
        return f"gateway is going away ({reason or 'restart'})"
    if code == CLOSE_TOKEN_EXPIRED:
        return "the auth token expired (4001)"
    if code == 1011 and "keepalive" in (reason or ""):
        return "the gateway did not answer a ping"
    if code in (None, 1006):
        return "connection dropped"
    return f"connection closed ({code}{' ' + reason if reason else ''})"


class Client:
    """A connection to the gateway that stays up; use ``async with Client(...) as cc``.

    Give url and either token (fixed, not renewed) or api_key with api_url
    (the token is obtained and renewed for you). on_state, if set, is called
    with ("connected" | "disconnected" | "closed", detail) on every change;
    on_notice with the data of each notice the gateway sends before a planned
    close ({"reason": "shutdown" | "token_expiring", "message": …}).
    """

    def __init__(self, url: str, *, token: Optional[str] = None, api_key: Optional[str] = None, api_url: Optional[str] = None,
                 min_backoff: float = 0.25, max_backoff: float = 30.0, ping_interval: float = 20.0, request_timeout: float = 10.0,
                 on_state: Optional[Callable[[str, str], None]] = None,
                 on_notice: Optional[Callable[[dict[str, Any]], None]] = None) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise CCEventsError(f"url must start with ws:// or wss://, got {url!r}")
        if bool(token) == bool(api_key):
            raise CCEventsError("give a token or an api_key (with api_url), not both")
        if api_key and not api_url:
            raise CCEventsError("api_url is required with an api_key, e.g. http://127.0.0.1:8000")
        self.url = url
        self.api_url = (api_url or "").rstrip("/")
        self._api_key = api_key or ""
        self._token = _token_info(token) if token else Token("")
        self._min_backoff = min_backoff
        self._max_backoff = max(max_backoff, min_backoff)
        self._ping_interval = ping_interval
        self._request_timeout = request_timeout
        self._on_state = on_state
        self._on_notice = on_notice
        self._subs: dict[str, _Binding] = {}  # by binding
        self._order = 0
        self._conn: Optional[_Conn] = None
        self._up = asyncio.Event()  # set while _conn is usable
        self._queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE_LEN)
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        self._closing = False
        self.error: Optional[CCEventsError] = None
        """Why the client stopped: None while it runs and after close()."""
        self.state = "connecting"
        self._renew_now = asyncio.Event()

    # ---- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def token(self) -> Token:
        """The auth token in use now; with an API key it changes as it is renewed."""
        return self._token

    async def open(self) -> None:
        """Logs in (with an API key), connects, and starts keeping the connection up."""
        if self._api_key:
            self._token = await self._login()
        elif self._token.expires_at and time.time() > self._token.expires_at:
            raise CCEventsError("the auth token has expired; get a fresh one (PUT /v2/api_auth) or use an api_key")
        conn = await self._dial()
        self._set_conn(conn)
        self._notify("connected", "")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(conn)), loop.create_task(self._dispatch())]
        if self._api_key:
            self._tasks.append(loop.create_task(self._renew_loop()))

    async def close(self) -> None:
        """Closes the connection, stops reconnecting and waits for the running handler; none runs after."""
        await self._stop(None)

    async def wait_closed(self) -> Optional[CCEventsError]:
        """Waits until the client has stopped; returns why (None after close())."""
        await self._stopped.wait()
        return self.error

    async def _stop(self, err: Optional[CCEventsError]) -> None:
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        self.error = err
        if err is not None:
            log.error("ccevents client stopped: %s", err)
        conn, self._conn = self._conn, None
        self._up.clear()
        current = asyncio.current_task()
        for t in self._tasks:
            if t is not current:
                t.cancel()
        if conn is not None:
            await conn.close()
        for t in self._tasks:
            if t is not current:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
        seen = set()
        for b in self._subs.values():
            if id(b.sub) not in seen:
                seen.add(id(b.sub))
                b.sub._end()
        self._notify("closed", str(err) if err else "")
        self._stopped.set()

    def _notify(self, state: str, detail: str) -> None:
        self.state = state
        if self._on_state:
            try:
                self._on_state(state, detail)
            except Exception:
                log.exception("ccevents: on_state raised")

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    # ---- REST -------------------------------------------------------------------

    async def _login(self) -> Token:
        return await asyncio.to_thread(login, self.api_url, self._api_key, self._request_timeout)

    async def snapshot(self, account_id: str) -> Snapshot:
        """Loads the account's state (GET /v2/accounts/{account_id}/qubicle_state).

        Subscribing with since=snap.sequence and epoch (see position) then
        applies exactly the events after it.
        """
        if not self.api_url:
            raise CCEventsError("snapshot needs api_url, e.g. http://127.0.0.1:8000")
        url = f"{self.api_url}/v2/accounts/{urllib.parse.quote(account_id, safe='')}/qubicle_state"
        body = await asyncio.to_thread(_rest, "GET", url, self._token.value, None, self._request_timeout)
        return Snapshot.from_dict(body["data"])

    # ---- subscribing --------------------------------------------------------------

    async def subscribe(self, account_id: str, bindings: Union[str, Sequence[str]], handler: Optional[Handler] = None, *,
                        since: Optional[Position] = None, on_resync: Optional[ResyncHandler] = None) -> Subscription:
        """Subscribes to one binding or several of account_id.

        handler(event) (a function or a coroutine function) runs for each
        event, one at a time in stream order; without a handler, iterate over
        the returned Subscription. since resumes after a position (from an
        earlier event, subscription or snapshot); on_resync runs, before the
        next event, when the gateway cannot replay all that was missed.
        Returns once the gateway has accepted; a refusal raises ReplyError.
        """
        blist = [bindings] if isinstance(bindings, str) else list(bindings)
        if not blist:
            raise CCEventsError("give at least one binding")
        if self._closing:
            raise ClosedError("client is closed")
        for i, b in enumerate(blist):
            if b in self._subs or b in blist[:i]:
                raise CCEventsError(f"subscribe {b!r}: this client is already subscribed to it")
        sub = Subscription(self, account_id, blist, handler, on_resync, since or Position())
        for b in sub._bindings:
            self._subs[b.binding] = b  # inactive until accepted
        try:
            while True:
                conn = await self._connected()
                try:
                    await self._subscribe_on(conn, account_id, sub._bindings)
                    return sub
                except _Lost:
                    continue
        except BaseException:
            await self._forget(sub, unsubscribe=True)
            raise

    async def _connected(self) -> _Conn:
        while True:
            if self._closing:
                raise ClosedError("client is closed")
            conn = self._conn
            if conn is not None and self._up.is_set():
                return conn
            waiter = asyncio.ensure_future(self._up.wait())
            stopped = asyncio.ensure_future(self._stopped.wait())
            await asyncio.wait([waiter, stopped], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopped.cancel()

    async def _subscribe_on(self, conn: _Conn, account_id: str, bs: list[_Binding]) -> None:
        since = [b.received for b in bs]
        specs: list[Any] = []
        for b, p in zip(bs, since):
            if not p:
                specs.append(b.binding)
            else:
                specs.append({"binding": b.binding, "since": {"sequence": p.sequence, "epoch": p.epoch} if p.epoch else {"sequence": p.sequence}})
        for attempt in range(2):
            msg = {"action": "subscribe", "auth_token": self._token.value, "data": {"account_id": account_id, "bindings": specs}}
            r = await conn.request(msg, lambda r: self._accepted(bs, since, r))
            if r.get("status") == "success":
                return
            d = r.get("data") or {}
            took = set(d.get("subscribed") or [])
            if attempt == 0 and self._api_key and not any(b.binding in took for b in bs):
                self._token = await self._login()  # the usual cause: a token that expired while disconnected
                continue
            errs = d.get("errors") or ([d["message"]] if d.get("message") else [])
            raise ReplyError("subscribe", [b.binding for b in bs], errs, d.get("retry_after") or None)

    def _accepted(self, bs: list[_Binding], since: list[Position], r: dict[str, Any]) -> list[Any]:
        """Runs on the read loop when a subscribe reply arrives, before any event after it.

        Returns the resyncs to hand out, which the read loop queues before the next event.
        """
        out: list[Any] = []
        d = r.get("data") or {}
        took = set(d.get("subscribed") or [])
        epoch = d.get("epoch") or ""
        for b, frm in zip(bs, since):
            if r.get("status") != "success" and b.binding not in took:
                continue
            b.active = True
            if not frm:
                # Live from the position the gateway names: the first resume
                # is then gapless even if nothing matched before a drop.
                b.received = Position(int(d.get("sequence") or 0), epoch)
                if not b.handled:
                    b.handled = b.received
            elif frm.epoch != epoch:
                b.received = Position(0, epoch)  # another history: all of it is new
            elif frm.sequence > int(d.get("replay_until") or 0):
                b.received = Position(int(d.get("replay_until") or 0), epoch)
            if frm and d.get("recovered") is False:
                reason = d.get("message") or (
                    f"event history was reset; events after sequence {frm.sequence} are gone" if frm.epoch and frm.epoch != epoch
                    else f"event history no longer reaches back to sequence {frm.sequence}")
                out.append((b, Resync(b.sub.account_id, b.binding, frm, epoch, reason)))
        return out

    async def _unsubscribe(self, sub: Subscription) -> None:
        await self._forget(sub, unsubscribe=True)

    async def _forget(self, sub: Subscription, unsubscribe: bool) -> None:
        active = [b for b in sub._bindings if b.active]
        for b in sub._bindings:
            if self._subs.get(b.binding) is b:
                del self._subs[b.binding]
        sub._end()
        conn = self._conn
        if not unsubscribe or conn is None or not self._up.is_set():
            return
        for b in active:
            try:
                await conn.request({"action": "unsubscribe", "auth_token": self._token.value,
                                    "data": {"account_id": sub.account_id, "binding": b.binding}})
            except CCEventsError:
                return  # the connection is gone; reconnects skip it anyway

    # ---- routing and handlers ---------------------------------------------------

    async def _route(self, f: dict[str, Any]) -> None:
        action = f.get("action")
        if action == "event":
            b = self._subs.get(str(f.get("subscribed_key")))
            try:
                ev = Event(str(f["subscribed_key"]), str(f.get("subscription_key", "")), str(f["routing_key"]), str(f.get("name", "")),
                           int(f["sequence"]), str(f.get("epoch", "")), dict(f.get("data") or {}))
            except (KeyError, TypeError, ValueError):
                log.warning("ccevents: dropping a malformed event frame")
                return
            if b is None or b.sub._gone or not self._fresh(b, ev):
                return
            # The gateway delivers an account's events in order, each once:
            # every binding of the account now has everything up to ev.
            for o in self._subs.values():
                if o is not b and o.active and o.sub.account_id == b.sub.account_id and o.received.epoch == ev.epoch and o.received.sequence < ev.sequence:
                    o.received = ev.position
            await self._queue.put((b, ev))
        elif action == "notice":
            n = f.get("data") or {}
            log.info("ccevents: gateway notice %s", n.get("reason"))
            if self._on_notice:
                try:
                    self._on_notice(n)
                except Exception:
                    log.exception("ccevents: on_notice raised")
            if n.get("reason") == "token_expiring" and self._api_key:
                self._renew_now.set()

    @staticmethod
    def _fresh(b: _Binding, ev: Event) -> bool:
        # An event at or before the position in the same history was already
        # delivered; only an overlapping resume can bring it again.
        if ev.epoch == b.received.epoch and ev.sequence <= b.received.sequence:
            return False
        b.received = ev.position
        return True

    async def _dispatch(self) -> None:
        while True:
            b, item = await self._queue.get()
            sub = b.sub
            if sub._gone:
                continue
            if sub._items is not None:
                await sub._items.put((b, item) if isinstance(item, Event) else item)
                continue
            if isinstance(item, Resync):
                if sub._on_resync:
                    await self._guard(sub._on_resync, item, "on_resync")
                else:
                    log.warning("ccevents: %s needs a resync: %s", item.binding, item.reason)
                continue
            assert sub._handler is not None
            await self._guard(sub._handler, item, "handler")
            b.handled = item.position

    async def _guard(self, fn: Callable[[Any], Any], arg: Any, what: str) -> None:
        try:
            await _call(fn, arg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ccevents: %s of %s raised", what, getattr(arg, "binding", None) or getattr(arg, "subscribed_key", ""))

    # ---- connection -------------------------------------------------------------

    async def _dial(self) -> _Conn:
        try:
            ws = await ws_connect(self.url, open_timeout=self._request_timeout, ping_interval=self._ping_interval,
                                  ping_timeout=self._request_timeout, close_timeout=2, max_size=_MAX_FRAME, compression=None)
        except InvalidStatusCode as e:
            raise CCEventsError(f"connect to {self.url}: the gateway refused the websocket (HTTP {e.status_code})") from None
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as e:
            raise CCEventsError(f"connect to {self.url}: {e or type(e).__name__}") from None
        return _Conn(ws, self)

    def _set_conn(self, conn: _Conn) -> None:
        self._conn = conn
        self._up.set()

    async def _run(self, conn: _Conn) -> None:
        """Keeps a connection up until the client stops."""
        attempt = 0
        while True:
            started = time.monotonic()
            await conn.closed.wait()
            if self._conn is conn:
                self._conn = None
                self._up.clear()
            why = conn.reason
            # A connection that held for a while earns a fresh backoff.
            if time.monotonic() - started > 10 * self._min_backoff + 1:
                attempt = 0
            while True:
                attempt += 1
                wait = backoff(self._min_backoff, self._max_backoff, attempt)
                log.info("ccevents: connection lost (%s); reconnecting in %.2f s", why, wait)
                self._notify("disconnected", why)
                await asyncio.sleep(wait)
                try:
                    conn = await self._reconnect()
                    break
                except ReplyError as e:
                    if e.retry_after:
                        await asyncio.sleep(e.retry_after)  # throttled, not refused
                        why = str(e)
                        continue
                    asyncio.get_running_loop().create_task(self._stop(e))
                    return
                except APIError as e:
                    if e.status == 401:
                        asyncio.get_running_loop().create_task(self._stop(e))
                        return
                    why = str(e)
                except CCEventsError as e:
                    why = str(e)
                except Exception as e:  # anything else must not end reconnecting
                    log.exception("ccevents: reconnecting failed")
                    why = repr(e)
            self._notify("connected", "")

    async def _reconnect(self) -> _Conn:
        if self._api_key and time.time() > _renew_at(self._token, time.time()):
            self._token = await self._login()
        conn = await self._dial()
        try:
            # One request per account, every binding from its own position,
            # so the gateway replays each account's history once.
            active = sorted((b for b in self._subs.values() if b.active and not b.sub._gone), key=lambda b: b.order)
            for acc in dict.fromkeys(b.sub.account_id for b in active):
                await self._subscribe_on(conn, acc, [b for b in active if b.sub.account_id == acc])
        except BaseException:
            await conn.close()
            raise
        if self._closing:
            await conn.close()
            raise ClosedError("client is closed")
        self._set_conn(conn)
        return conn

    async def _renew_loop(self) -> None:
        """Replaces the token before it expires (or when the gateway warns it is about to) and hands it to the live connection."""
        failures = 0
        while True:
            if failures:
                timeout: Optional[float] = backoff(1, 30, failures)
            elif self._token.expires_at:
                timeout = max(0.0, _renew_at(self._token, time.time()) - time.time())
            else:
                timeout = None
            try:
                await asyncio.wait_for(self._renew_now.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._renew_now.clear()
            try:
                self._token = await self._login()
            except APIError as e:
                if e.status == 401:
                    asyncio.get_running_loop().create_task(self._stop(e))
                    return
                failures += 1
                log.warning("ccevents: could not renew the auth token; retrying: %s", e)
                continue
            failures = 0
            conn = self._conn
            if conn is not None and self._up.is_set() and any(b.active for b in self._subs.values()):
                # Without the new token the gateway closes the connection
                # (4001) when the old one expires; a reconnect uses the new one.
                try:
                    r = await conn.request({"action": "refresh", "auth_token": self._token.value})
                    if r.get("status") != "success":
                        log.warning("ccevents: the gateway refused the renewed token: %s", (r.get("data") or {}).get("errors"))
                except CCEventsError:
                    pass
