"""`socialcare serve`: gunicorn as a real process, its workers, proxy headers and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from inbox import create_app, migrate
from inbox.db import databases
from inbox.serve import TrustedProxyHeaders
from tests.conftest import DatabaseUrls, app_config

SOCIALCARE = str(Path(sys.executable).with_name("socialcare"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(config: dict[str, Any]) -> dict[str, str]:
    env = {**os.environ, **{f"SOCIALCARE_{key}": str(value) for key, value in config.items()}}
    env.pop("SOCIALCARE_TESTING", None)  # serve must pass the production start-up checks
    return env


@pytest.fixture
def migrated_config(database_urls: DatabaseUrls, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A production-like configuration on migrated databases."""
    config = app_config(database_urls, tmp_path)
    app: Flask = create_app(config)
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    dbs.inbox.dispose()
    dbs.research.dispose()
    del config["TESTING"]
    yield config


class Server:
    """One `socialcare serve` process and the port it listens on."""

    def __init__(self, config: dict[str, Any], tmp_path: Path, *args: str) -> None:
        self.port = _free_port()
        self.log = tmp_path / "serve.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [SOCIALCARE, "serve", "--bind", f"127.0.0.1:{self.port}", *args],
                env=_environment(config),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
        """Status, headers and body of a GET."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read().decode()
                return response.status, dict(response.headers), body
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read().decode()

    def wait_until_healthy(self, timeout: float = 60.0) -> None:
        """Poll /healthz until it answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"no /healthz within {timeout} s:\n{self.log.read_text()}")

    def workers(self) -> set[int]:
        """The pids of the master's child processes, read from /proc."""
        children = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                children.add(int(entry.name))
        return children

    def stop(self) -> int:
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def _wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_serve_runs_two_workers_replaces_a_dead_one_and_stops_on_sigterm(
    migrated_config: dict[str, Any], tmp_path: Path
) -> None:
    server = Server({**migrated_config, "PROXY_HOPS": 1}, tmp_path, "--workers", "2")
    try:
        server.wait_until_healthy()
        status, headers, body = server.get("/healthz")
        assert (status, body) == (200, "ok\n")
        assert "Set-Cookie" not in headers
        status, _, page = server.get("/login")
        assert status == 200 and 'name="password"' in page
        # Both databases and migrations are fine; no worker has beaten yet.
        status, _, ready = server.get("/readyz")
        assert status == 503 and '"worker":"none"' in ready.replace(" ", "")

        _wait_for(lambda: len(server.workers()) == 2)
        workers = server.workers()
        # The proxy (here: us, on 127.0.0.1) says the client came over HTTPS: PROXY_HOPS=1
        # believes it, so the app answers as it does over TLS.
        _, secure_headers, _ = server.get("/login", **{"X-Forwarded-Proto": "https"})
        assert "Strict-Transport-Security" in secure_headers

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(server.workers()) == 2 and victim not in server.workers())
        assert server.get("/login")[0] == 200
        workers = server.workers()
    finally:
        status = server.stop()
    assert status == 0, server.log.read_text()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
    log = server.log.read_text()
    assert "Handling signal: term" in log
    assert "Using worker: gthread" in log


def test_forwarded_headers_from_a_peer_that_is_no_proxy_are_ignored(
    migrated_config: dict[str, Any], tmp_path: Path
) -> None:
    server = Server(
        {**migrated_config, "PROXY_HOPS": 1},
        tmp_path,
        "--workers",
        "1",
        "--forwarded-allow-ips",
        "192.0.2.10",
    )
    try:
        server.wait_until_healthy()
        _, headers, _ = server.get("/login", **{"X-Forwarded-Proto": "https"})
        assert "Strict-Transport-Security" not in headers
    finally:
        assert server.stop() == 0


def test_serve_refuses_to_start_with_a_placeholder_secret(tmp_path: Path) -> None:
    port = _free_port()
    env = _environment(
        {
            "SECRET_KEY": "change-me",
            "ENCRYPTION_KEYS": "",
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    result = subprocess.run(
        [SOCIALCARE, "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SOCIALCARE_SECRET_KEY" in result.stderr
    assert "socialcare gen-key secret" in result.stderr


def test_trusted_proxy_headers_keep_them_only_from_the_listed_networks() -> None:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        return []

    wrapped = TrustedProxyHeaders(app, "10.0.0.0/8, ::1")
    for peer in ("10.1.2.3", "203.0.113.9", "::1", ""):
        wrapped(
            {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": "1.2.3.4", "HTTP_FORWARDED": "for=x"},
            lambda *a: None,
        )
    assert ["HTTP_X_FORWARDED_FOR" in environ for environ in seen] == [True, False, True, True]
    assert ["HTTP_FORWARDED" in environ for environ in seen] == [True, False, True, True]
