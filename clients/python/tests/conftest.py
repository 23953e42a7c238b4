"""A real `ccevents serve` for the tests: built from this repository with
`go build` (once per session), started on free loopback ports with its data
in a temporary directory, stopped as an operator would (SIGINT) and started
again on the same ports and data to restart it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "clients" / "python" / "src"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


POLL_S = 0.05  # between two checks of a condition


def _check(what: str, cond: Callable[[], Any], deadline: float, timeout: float) -> Any:
    """One check of an eventually: cond's value when it holds, None while
    there is time left, an AssertionError once the deadline has passed."""
    v = cond()
    if v:
        return v
    if time.monotonic() > deadline:
        raise AssertionError(f"{what}: not within {timeout} s")
    return None


def eventually(what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (v := _check(what, cond, deadline, timeout)):
        time.sleep(POLL_S)
    return v


async def aeventually(what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (v := _check(what, cond, deadline, timeout)):
        await asyncio.sleep(POLL_S)
    return v


class Server:
    def __init__(self, binary: str, data_dir: Path, extra: list[str]) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.extra = extra
        self.ws_port, self.api_port = free_port(), free_port()
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.log_path = data_dir / "serve.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.account_id = ""
        self.api_key = ""

    def start(self) -> None:
        args = [self.binary, "serve", "--data-dir", str(self.data_dir / "data"), "--ws-addr", f"127.0.0.1:{self.ws_port}",
                "--api-addr", f"127.0.0.1:{self.api_port}", "--nats-listen", "", "--log-level", "warn", *self.extra]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        root = self.data_dir / "data" / "root.json"

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"ccevents serve exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            if not root.exists() or root.stat().st_size == 0:
                return False
            try:
                with urllib.request.urlopen(self.api_url + "/readyz", timeout=2) as r:
                    if r.status != 200:
                        return False
            except OSError:
                return False
            info = json.loads(root.read_text())
            self.account_id, self.api_key = info["account_id"], info["api_key"]
            return True

        eventually("ccevents serve ready", ready, 60)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def token(self) -> str:
        req = urllib.request.Request(self.api_url + "/v2/api_auth", method="PUT", data=json.dumps({"data": {"api_key": self.api_key}}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["auth_token"]

    def publish_join(self, token: str, queue: str = "support", n: int = 1) -> int:
        """Publishes a queue.join through the REST API; returns its stream sequence."""
        body = {"data": {"routing_key": f"qubicle.queue.{self.account_id}.{queue}.join",
                         "payload": {"session_id": f"call-{n}", "caller_id_number": f"+1555{n:07d}", "position": 1, "estimated_wait_s": 30}}}
        req = urllib.request.Request(f"{self.api_url}/v2/accounts/{self.account_id}/events", method="POST", data=json.dumps(body).encode(),
                                     headers={"X-Auth-Token": token, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["data"]["sequence"]

    async def apublish_join(self, token: str, queue: str = "support", n: int = 1) -> int:
        return await asyncio.to_thread(self.publish_join, token, queue, n)


@pytest.fixture(scope="session")
def binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    if os.environ.get("CCEVENTS_BIN"):
        return os.environ["CCEVENTS_BIN"]
    out = tmp_path_factory.mktemp("bin") / "ccevents"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/ccevents"], cwd=REPO, check=True)
    return str(out)


@pytest.fixture
def start_server(binary: str, tmp_path_factory: pytest.TempPathFactory):
    started: list[Server] = []

    def start(*extra: str) -> Server:
        s = Server(binary, tmp_path_factory.mktemp("serve"), list(extra))
        s.start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def server(binary: str, tmp_path_factory: pytest.TempPathFactory):
    s = Server(binary, tmp_path_factory.mktemp("serve"), [])
    s.start()
    yield s
    s.stop()


def run(coro: Any, timeout: float = 120.0) -> Any:
    """Runs a test coroutine with a deadline, so a hang fails instead of stalling the suite."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
