"""Real OS processes for multi-process tests: web nodes and workers, their logs kept in files."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
_CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


@dataclass
class Process:
    """One started process: what it is, its Popen and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        """The OS process id (workers name themselves `host:pid`)."""
        return self.popen.pid

    def tail(self, chars: int = 3000) -> str:
        """The end of the process's output, for a failure message."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        # APScheduler says so each second while a poll outlasts its interval: not news here.
        text = "\n".join(line for line in text.splitlines() if "running instances" not in line)
        return f"--- {self.name} (pid {self.pid}, exit {self.popen.poll()}) ---\n{text[-chars:]}"


@dataclass
class Processes:
    """The processes a test started; `stop_all` ends each of them, by its own pid."""

    directory: Path
    started: list[Process] = field(default_factory=list)

    def start(
        self, name: str, command: list[str], env: Mapping[str, str], url: str = ""
    ) -> Process:
        """Start a command with its output in `<directory>/<name>.log`."""
        log = self.directory / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        process = Process(name, popen, log, url)
        self.started.append(process)
        return process

    def output(self) -> str:
        """Every process's recent output."""
        return "\n".join(process.tail() for process in self.started)

    def stop_all(self, timeout: float = 20) -> None:
        """Ask each process still running to stop, and kill any that does not in time."""
        running = [p for p in self.started if p.popen.poll() is None]
        for process in running:
            process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=10)


@contextmanager
def processes(directory: Path) -> Iterator[Processes]:
    """A place to start processes that are all stopped when the block ends, failing or not."""
    directory.mkdir(parents=True, exist_ok=True)
    started = Processes(directory)
    try:
        yield started
    finally:
        started.stop_all()


def environment(config: Mapping[str, Any], **extra: Any) -> dict[str, str]:
    """The environment a `socialcare` process reads this configuration from, as in production."""
    env = {**os.environ}
    env.update({f"SOCIALCARE_{key}": str(value) for key, value in {**config, **extra}.items()})
    env.pop("SOCIALCARE_TESTING", None)  # the production start-up checks must pass
    return env


def free_port() -> int:
    """A localhost port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_web(started: Processes, name: str, config: Mapping[str, Any]) -> Process:
    """Start one web node (`socialcare serve`, one gunicorn worker process) on a free port."""
    port = free_port()
    # Plain HTTP on localhost: the session cookie must not demand HTTPS here.
    env = environment(config, SESSION_COOKIE_SECURE="false")
    command = [str(BIN / "socialcare"), "serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    return started.start(name, command, env, url=f"http://127.0.0.1:{port}")


def start_worker(started: Processes, name: str, config: Mapping[str, Any]) -> Process:
    """Start one `socialcare worker`."""
    return started.start(name, [str(BIN / "socialcare"), "worker"], environment(config))


def wait_for(
    condition: Callable[[], bool], seconds: float, what: str, output: Callable[[], str]
) -> None:
    """Poll a condition until it holds, failing with `output()` once the deadline passes."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() < began + seconds, (
            f"timed out after {seconds} s: {what}\n{output()}"
        )
        time.sleep(0.2)
    # Shown with a failure (or with -s): where a slow run spent its time.
    print(f"{time.strftime('%H:%M:%S')} waited {time.monotonic() - began:.1f} s for {what}")


def wait_until_serving(web: Process, output: Callable[[], str], seconds: float = 60) -> None:
    """Wait until a web node answers its login page."""

    def serving() -> bool:
        assert web.popen.poll() is None, f"{web.name} exited\n{output()}"
        try:
            return requests.get(f"{web.url}/login", timeout=10).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False  # the master listens before its worker has loaded the app

    wait_for(serving, seconds, f"{web.name} to answer", output)


def csrf_token(page: str) -> str:
    """The CSRF token of the form on a page."""
    found = _CSRF.search(page) or re.search(r'value="([^"]+)" name="csrf_token"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def form_value(page: str, name: str) -> str:
    """The value of a hidden input on a page."""
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert found, f"no input {name!r} on the page"
    return found.group(1)


def browser_login(http: requests.Session, base_url: str, email: str, password: str) -> None:
    """Log in through a node's login form, as a browser does."""
    page = http.get(f"{base_url}/login", timeout=30)
    answer = http.post(
        f"{base_url}/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, (answer.status_code, answer.text[:500])
    assert not answer.headers["Location"].startswith("/login"), answer.headers["Location"]


def answer_through(
    nodes: list[Process],
    email: str,
    password: str,
    jobs: list[tuple[int, str]],
    errors: list[str],
) -> None:
    """One agent in a browser: log in on the first node, then read each conversation on one
    node and send the reply through the other. Runs in a thread: failures go to `errors`."""
    try:
        http = requests.Session()
        browser_login(http, nodes[0].url, email, password)
        for n, (conversation_id, text) in enumerate(jobs):
            reader, sender = nodes[n % 2], nodes[(n + 1) % 2]
            page = http.get(f"{reader.url}/conversations/{conversation_id}", timeout=30)
            assert page.status_code == 200, (reader.name, page.status_code)
            form = {
                "text": text,
                "seen": form_value(page.text, "seen"),
                "purpose": "service",
                "csrf_token": csrf_token(page.text),
            }
            sent = http.post(
                f"{sender.url}/conversations/{conversation_id}/reply",
                data=form,
                allow_redirects=False,
                timeout=60,
            )
            assert sent.status_code == 302, (sender.name, sent.status_code, sent.text[:300])
    except BaseException as exc:  # the test's thread reports it
        errors.append(f"{email}: {exc!r}")
