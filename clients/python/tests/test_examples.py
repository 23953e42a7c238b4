"""The SQLite analytics example, killed mid-stream and started again, and the
package installed with pip into a fresh virtualenv."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, eventually

PKG = REPO / "clients" / "python"
EXAMPLE = PKG / "examples" / "analytics_sqlite.py"


def start_collector(server, db: Path, log: Path, run: int) -> subprocess.Popen[bytes]:
    """Starts the example; run counts its starts on this log, from 1."""
    env = dict(os.environ, PYTHONPATH=str(PKG / "src"), CCEVENTS_API_KEY=server.api_key)
    with open(log, "ab") as out:
        p = subprocess.Popen([sys.executable, str(EXAMPLE), "--url", server.ws_url, "--api-url", server.api_url, "--db", str(db)],
                             stdout=out, stderr=subprocess.STDOUT, env=env)

    def subscribed() -> bool:
        if p.poll() is not None:
            raise AssertionError(f"the collector exited ({p.returncode}):\n{log.read_text()}")
        return log.read_text().count("subscribed to") >= run

    eventually("the collector subscribed", subscribed, 60)
    return p


def stored(db: Path) -> list[int]:
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute("SELECT sequence FROM events ORDER BY sequence")]


def test_analytics_collector_resumes_after_being_killed(server, tmp_path):
    token = server.token()
    db, log = tmp_path / "events.sqlite", tmp_path / "collector.log"
    acked = []
    p = start_collector(server, db, log, 1)
    try:
        acked += [server.publish_join(token, "analytics", i) for i in range(10)]
        eventually("the first events stored", lambda: stored(db) == acked)
        p.kill()  # no goodbye: the cursor in the database is all it has
        p.wait()
        acked += [server.publish_join(token, "analytics", i) for i in range(10, 20)]  # while it is down
        p = start_collector(server, db, log, 2)
        assert f"resuming after sequence {acked[9]}@" in log.read_text()
        acked += [server.publish_join(token, "analytics", i) for i in range(20, 30)]
        eventually("every event stored once", lambda: stored(db) == acked)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0, log.read_text()
        assert f"stopped after sequence {acked[-1]}@" in log.read_text()
    finally:
        if p.poll() is None:
            p.kill()
    report = subprocess.run([sys.executable, str(EXAMPLE), "--db", str(db), "--report"], env=dict(os.environ, PYTHONPATH=str(PKG / "src")),
                            capture_output=True, text=True, check=True).stdout
    assert "queue.join" in report and "analytics" in report


def test_pip_installs_the_package_into_a_fresh_virtualenv(tmp_path, server):
    # Offline, as this repository's CI is: Debian's Python with its
    # python3-websockets, a virtualenv that sees them, and pip building the
    # package with the setuptools it has. With PyPI, a plain
    # `python3 -m venv .venv && .venv/bin/pip install ./clients/python` does.
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation", str(PKG)], check=True, cwd=tmp_path)
    script = (
        "import asyncio, ccevents, sys\n"
        "assert ccevents.__file__.startswith(sys.prefix), ccevents.__file__\n"
        "async def main():\n"
        f"    async with ccevents.Client({server.ws_url!r}, api_key={server.api_key!r}, api_url={server.api_url!r}) as cc:\n"
        f"        sub = await cc.subscribe(cc.token.account_id, 'qubicle.queue.{server.account_id}.installed')\n"
        "        print('subscribed', flush=True)\n"
        "        async for ev in sub:\n"
        "            print(type(ev.payload).__name__)\n"
        "            return\n"
        "asyncio.run(asyncio.wait_for(main(), 60))\n"
    )
    p = subprocess.Popen([str(py), "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert p.stdout is not None and p.stdout.readline() == "subscribed\n"
        server.publish_join(server.token(), "installed")
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0
    assert out == "QueueJoin\n"
