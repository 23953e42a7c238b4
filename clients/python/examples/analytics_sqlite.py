#!/usr/bin/env python3
"""Stores every event of an account in SQLite for analytics, resuming where it stopped.

Each event and the resume cursor (sequence and epoch) are written in one
transaction, so after a crash, a kill -9 or a reboot the collector continues
exactly after the last event it stored: none lost, none stored twice.

    python3 analytics_sqlite.py --url ws://127.0.0.1:5555 --api-url http://127.0.0.1:8000 \
        --api-key "$CCEVENTS_API_KEY" --db events.sqlite
    python3 analytics_sqlite.py --db events.sqlite --report

The first run starts from now; later runs resume from the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
from typing import Optional

import ccevents

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    epoch        TEXT    NOT NULL,
    sequence     INTEGER NOT NULL,
    event_id     TEXT    NOT NULL UNIQUE,
    event        TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    queue_id     TEXT,
    recipient_id TEXT,
    session_id   TEXT,
    timestamp_ms INTEGER NOT NULL,
    data         TEXT    NOT NULL,
    PRIMARY KEY (epoch, sequence)
);
CREATE INDEX IF NOT EXISTS events_by_type ON events (event, timestamp_ms);
CREATE TABLE IF NOT EXISTS cursor (
    account_id TEXT PRIMARY KEY,
    sequence   INTEGER NOT NULL,
    epoch      TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS resyncs (
    at_ms   INTEGER NOT NULL,
    binding TEXT    NOT NULL,
    reason  TEXT    NOT NULL
);
"""


def open_db(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed cursor survives a power cut
    db.executescript(SCHEMA)
    return db


def stored_cursor(db: sqlite3.Connection, account_id: str) -> Optional[ccevents.Position]:
    row = db.execute("SELECT sequence, epoch FROM cursor WHERE account_id = ?", (account_id,)).fetchone()
    return ccevents.Position(row[0], row[1]) if row else None


def store(db: sqlite3.Connection, account_id: str, ev: ccevents.Event) -> None:
    d = ev.data
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ev.epoch, ev.sequence, d.get("event_id"), ev.event_type, d.get("account_id", account_id), d.get("queue_id"),
             d.get("recipient_id"), d.get("session_id"), d.get("timestamp_ms", 0), json.dumps(d, separators=(",", ":"))),
        )
        db.execute(
            "INSERT INTO cursor VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET sequence = excluded.sequence, epoch = excluded.epoch",
            (account_id, ev.sequence, ev.epoch),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


async def collect(args: argparse.Namespace) -> None:
    db = open_db(args.db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_state(state: str, detail: str) -> None:
        print(f"connection {state}" + (f": {detail}" if detail else ""), file=sys.stderr, flush=True)

    async with ccevents.Client(args.url, api_key=args.api_key, api_url=args.api_url, on_state=on_state) as cc:
        account = args.account or cc.token.account_id
        since = stored_cursor(db, account)
        print(f"resuming after sequence {since}" if since else "no cursor stored: starting from now", flush=True)

        def on_resync(r: ccevents.Resync) -> None:
            # The history no longer reaches back to the cursor: record the gap
            # for the analyst; events continue from the gateway's history.
            db.execute("INSERT INTO resyncs VALUES (?, ?, ?)", (int(loop.time() * 1000), r.binding, r.reason))
            print(f"gap: {r.reason}", file=sys.stderr, flush=True)

        sub = await cc.subscribe(account, f"qubicle.*.{account}.#", since=since, on_resync=on_resync)
        print(f"subscribed to qubicle.*.{account}.#", flush=True)
        stopping = asyncio.ensure_future(stop.wait())
        events = sub.__aiter__()
        while True:
            nxt = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait([nxt, stopping], return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:
                nxt.cancel()
                break
            try:
                ev = nxt.result()
            except StopAsyncIteration:
                break
            store(db, account, ev)
        print(f"stopped after sequence {stored_cursor(db, account)}", flush=True)


def report(path: str) -> None:
    db = open_db(path)
    print("events by type:")
    for event, n in db.execute("SELECT event, count(*) FROM events GROUP BY event ORDER BY count(*) DESC"):
        print(f"  {event:34} {n}")
    print("queues (callers, abandoned, average wait of the delivered):")
    q = """SELECT queue_id,
                  sum(event = 'queue.join'),
                  sum(event = 'queue.leave' AND json_extract(data, '$.reason') = 'abandoned'),
                  avg(CASE WHEN event = 'queue.delivered' THEN json_extract(data, '$.wait_duration_ms') END)
           FROM events WHERE event LIKE 'queue.%' GROUP BY queue_id ORDER BY queue_id"""
    for queue, joins, abandoned, wait in db.execute(q):
        print(f"  {queue:20} {joins:6} {abandoned:6} {'' if wait is None else f'{wait / 1000:.1f} s'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="ws://127.0.0.1:5555", help="the gateway's websocket URL")
    p.add_argument("--api-url", default="http://127.0.0.1:8000", help="the REST API")
    p.add_argument("--api-key", default=os.environ.get("CCEVENTS_API_KEY", ""), help="API key (or CCEVENTS_API_KEY)")
    p.add_argument("--account", default="", help="account to collect (default: the API key's own)")
    p.add_argument("--db", default="ccevents-events.sqlite", help="SQLite database file")
    p.add_argument("--report", action="store_true", help="print a summary of the database and exit")
    args = p.parse_args()
    if args.report:
        report(args.db)
        return
    if not args.api_key:
        p.error("give --api-key or set CCEVENTS_API_KEY")
    try:
        asyncio.run(collect(args))
    except ccevents.CCEventsError as e:
        sys.exit(f"analytics_sqlite: {e}")


if __name__ == "__main__":
    main()
