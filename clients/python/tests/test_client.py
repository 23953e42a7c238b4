"""The client against a real `ccevents serve` (see conftest.py)."""

from __future__ import annotations

import asyncio
import signal

import pytest

import ccevents
from ccevents import Client, Position

from conftest import aeventually, run


def assert_increasing(seen: list[Position]) -> None:
    for a, b in zip(seen, seen[1:]):
        assert b.sequence > a.sequence, f"sequence {b.sequence} after {a.sequence}: not in order, or twice"


async def replay(server, binding: str, after: Position, count: int) -> list[Position]:
    """The positions a fresh client replays from history after `after`."""
    got: list[Position] = []
    async with Client(server.ws_url, api_key=server.api_key, api_url=server.api_url) as cc:
        sub = await cc.subscribe(server.account_id, binding, since=after)
        async for ev in sub:
            got.append(ev.position)
            if len(got) == count:
                break
    return got


def test_handler_gets_typed_events_in_stream_order(server):
    async def main():
        token = server.token()
        states = []
        async with Client(server.ws_url, api_key=server.api_key, api_url=server.api_url, on_state=lambda s, _: states.append(s)) as cc:
            assert cc.token.account_id == server.account_id
            got = []
            sub = await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.typed.*", got.append)
            seqs = [await server.apublish_join(token, "typed", i) for i in range(1, 6)]
            await aeventually("five events", lambda: len(got) == 5)
            assert [e.sequence for e in got] == seqs
            p = got[-1].payload
            assert isinstance(p, ccevents.QueueJoin)
            assert (p.queue_id, p.position, p.sequence) == ("typed", 1, seqs[-1])
            assert got[-1].family == "queue" and got[-1].entity_id == "typed"
            assert sub.position == Position(seqs[-1], got[-1].epoch)
        assert cc.state == "closed" and states[-1] == "closed"
        assert await cc.wait_closed() is None

    run(main())


def test_async_for_and_coroutine_handlers(server):
    async def main():
        token = server.token()
        async with Client(server.ws_url, token=token) as cc:
            handled = []

            async def slow(ev):
                await asyncio.sleep(0.02)
                handled.append(ev.sequence)

            await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.cb", slow)
            sub = await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.iter")
            want_cb = [await server.apublish_join(token, "cb", i) for i in range(3)]
            want_it = [await server.apublish_join(token, "iter", i) for i in range(3)]
            got = []
            async for ev in sub:
                got.append(ev.sequence)
                if len(got) == 3:
                    break
            assert got == want_it
            await aeventually("coroutine handler", lambda: len(handled) == 3)
            assert handled == want_cb
            await sub.unsubscribe()
            assert [ev async for ev in sub] == []  # an unsubscribed iterator ends

    run(main())


def test_a_refusal_raises_with_the_gateways_explanation(server):
    async def main():
        async with Client(server.ws_url, token=server.token()) as cc:
            with pytest.raises(ccevents.ReplyError, match="account") as e:
                await cc.subscribe(server.account_id, "qubicle.queue." + "0" * 32 + ".*", lambda ev: None)
            assert e.value.errors
            await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.ok", lambda ev: None)
        with pytest.raises(ccevents.APIError) as e:
            async with Client(server.ws_url, api_key="not-a-key", api_url=server.api_url):
                pass
        assert e.value.status == 401

    run(main())


def test_gateway_restart_mid_stream_every_event_once_in_order(server):
    async def main():
        token = server.token()
        binding = f"qubicle.queue.{server.account_id}.restart"
        states = []
        notices = []
        seen: list[Position] = []
        acked: list[int] = []
        async with Client(server.ws_url, api_key=server.api_key, api_url=server.api_url, min_backoff=0.1, max_backoff=1,
                          on_state=lambda s, _: states.append(s), on_notice=lambda n: notices.append(n.get("reason"))) as cc:
            await cc.subscribe(server.account_id, binding, lambda ev: seen.append(ev.position))
            stop = asyncio.Event()

            async def publisher():
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        acked.append(await server.apublish_join(token, "restart", n))
                    except OSError:
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(0.005)

            pub = asyncio.create_task(publisher())
            try:
                await aeventually("events before the restart", lambda: len(seen) >= 20)
                await asyncio.to_thread(server.restart)
                at = len(acked)
                await aeventually("publishes after the restart", lambda: len(acked) >= at + 30)
            finally:
                stop.set()
                await pub
            await aeventually("every published event received", lambda: seen and seen[-1].sequence >= acked[-1])
        assert "shutdown" in notices, notices
        assert "disconnected" in states and "connected" in states[states.index("disconnected"):], states
        assert_increasing(seen)
        got = {p.sequence for p in seen}
        missing = [s for s in acked if s not in got]
        assert not missing, f"published sequences never handed to the handler: {missing}"
        assert await replay(server, binding, Position(seen[0].sequence - 1, seen[0].epoch), len(seen)) == seen

    run(main(), 180)


def test_a_gateway_that_stops_answering_is_replaced(server):
    async def main():
        token = server.token()
        states = []
        seen = []
        async with Client(server.ws_url, api_key=server.api_key, api_url=server.api_url, ping_interval=0.3, request_timeout=1,
                          min_backoff=0.1, max_backoff=0.5, on_state=lambda s, _: states.append(s)) as cc:
            await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.hb", lambda ev: seen.append(ev.sequence))
            first = await server.apublish_join(token, "hb", 1)
            await aeventually("first event", lambda: seen == [first])
            server.proc.send_signal(signal.SIGSTOP)
            try:
                await aeventually("the silent gateway noticed", lambda: "disconnected" in states, 20)
            finally:
                server.proc.send_signal(signal.SIGCONT)
            more = [await server.apublish_join(token, "hb", i) for i in range(2, 5)]
            await aeventually("events after the gateway answers again", lambda: len(seen) == 4)
            assert seen == [first, *more]

    run(main())


def test_resync_callback_when_history_cannot_be_replayed(server):
    async def main():
        token = server.token()
        resyncs = []
        got = []
        async with Client(server.ws_url, token=token) as cc:
            binding = f"qubicle.queue.{server.account_id}.resync"
            await cc.subscribe(server.account_id, binding, lambda ev: got.append(ev.sequence), since=Position(1, "0000000000000000"),
                               on_resync=resyncs.append)
            await aeventually("on_resync", lambda: len(resyncs) == 1)
            r = resyncs[0]
            assert (r.binding, r.from_) == (binding, Position(1, "0000000000000000"))
            assert "epoch" in r.reason
            seq = await server.apublish_join(token, "resync")
            await aeventually("the live event after the resync", lambda: seq in got)

    run(main())


def test_snapshot_then_since_is_exact(server):
    async def main():
        token = server.token()
        await server.apublish_join(token, "snap", 1)  # in the snapshot's past: must not arrive
        async with Client(server.ws_url, api_key=server.api_key, api_url=server.api_url) as cc:
            snap = await cc.snapshot(server.account_id)
            assert isinstance(snap, ccevents.Snapshot) and snap.account_id == server.account_id
            after = [await server.apublish_join(token, "snap", 2), await server.apublish_join(token, "snap", 3)]
            got = []
            await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.snap", lambda ev: got.append(ev.sequence),
                               since=Position(snap.sequence, snap.epoch or ""))
            await aeventually("events after the snapshot", lambda: len(got) == 2)
            assert got == after

    run(main())


def test_renews_the_token_before_it_expires(start_server):
    short = start_server("--token-ttl", "3s", "--token-expiry-notice", "1s")

    async def main():
        states = []
        got = []
        async with Client(short.ws_url, api_key=short.api_key, api_url=short.api_url, on_state=lambda s, _: states.append(s)) as cc:
            first = cc.token.value
            await cc.subscribe(short.account_id, f"qubicle.queue.{short.account_id}.renew", lambda ev: got.append(ev.sequence))
            seqs = []
            loop = asyncio.get_running_loop()
            until = loop.time() + 8
            i = 0
            while loop.time() < until:
                i += 1
                seqs.append(await short.apublish_join(await asyncio.to_thread(short.token), "renew", i))
                await asyncio.sleep(0.5)
            await aeventually("every event", lambda: len(got) == len(seqs))
            assert got == seqs
            assert cc.token.value != first, "the token was never renewed"
        assert "disconnected" not in states, states

    run(main())


def test_close_stops_handlers(server):
    async def main():
        token = server.token()
        got = []
        cc = Client(server.ws_url, token=token)
        await cc.open()
        await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.closing", lambda ev: got.append(ev.sequence))
        seq = await server.apublish_join(token, "closing", 1)
        await aeventually("one event", lambda: got == [seq])
        await cc.close()
        await server.apublish_join(token, "closing", 2)
        await asyncio.sleep(0.3)
        assert got == [seq]
        with pytest.raises(ccevents.ClosedError):
            await cc.subscribe(server.account_id, f"qubicle.queue.{server.account_id}.x", lambda ev: None)

    run(main())
