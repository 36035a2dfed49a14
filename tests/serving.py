"""A real `socialcare serve` process for tests: start, probe, find its workers, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flask import Flask

from inbox import create_app, migrate
from inbox.db import databases
from tests.conftest import DatabaseUrls, app_config

SOCIALCARE = str(Path(sys.executable).with_name("socialcare"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(config: dict[str, Any]) -> dict[str, str]:
    """This process's environment plus the configuration as SOCIALCARE_* variables."""
    env = {**os.environ, **{f"SOCIALCARE_{key}": str(value) for key, value in config.items()}}
    env.pop("SOCIALCARE_TESTING", None)  # serve must pass the production start-up checks
    return env


def migrated_config(database_urls: DatabaseUrls, tmp_path: Path) -> dict[str, Any]:
    """A production-like configuration (no TESTING) on migrated databases."""
    config = app_config(database_urls, tmp_path)
    app: Flask = create_app(config)
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    dbs.inbox.dispose()
    dbs.research.dispose()
    del config["TESTING"]
    return config


class Server:
    """One `socialcare serve` process and the port it listens on."""

    def __init__(self, config: dict[str, Any], tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [SOCIALCARE, "serve", "--bind", f"127.0.0.1:{self.port}", *args],
                env=environment(config),
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


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    """Poll a condition until it holds, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
