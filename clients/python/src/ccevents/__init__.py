"""ccevents: the Python client of the ccevents contact-center event gateway.

    import asyncio, ccevents

    async def main():
        async with ccevents.Client("ws://127.0.0.1:5555", api_key=KEY, api_url="http://127.0.0.1:8000") as cc:
            acc = cc.token.account_id
            sub = await cc.subscribe(acc, f"qubicle.queue.{acc}.*")
            async for event in sub:
                match event.payload:
                    case ccevents.QueueJoin(queue_id=q, position=p):
                        print(f"caller in {q} at position {p}")

    asyncio.run(main())

Events arrive once and in stream order across reconnects and gateway
restarts; the token is renewed before it expires. The payload types
(QueueJoin, RecipientReady, …) are generated from the gateway's catalogue.
"""

from .client import (
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOKEN_EXPIRED,
    Client,
    Event,
    Position,
    Resync,
    Subscription,
    Token,
    login,
)
from .errors import APIError, CCEventsError, ClosedError, DecodeError, ReplyError, UnknownEventError
from .events import *  # noqa: F401,F403 (the generated payload types)
from .events import __all__ as _event_names

__version__ = "0.1.0"

__all__ = [
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_TOKEN_EXPIRED",
    "Client",
    "Event",
    "Position",
    "Resync",
    "Subscription",
    "Token",
    "login",
    "APIError",
    "CCEventsError",
    "ClosedError",
    "DecodeError",
    "ReplyError",
    "UnknownEventError",
    *_event_names,
]
