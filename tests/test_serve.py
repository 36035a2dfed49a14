"""`socialcare serve`: gunicorn as a real process, its workers, proxy headers and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from inbox.serve import TrustedProxyHeaders
from tests.conftest import DatabaseUrls
from tests.serving import SOCIALCARE, Server, environment, free_port, migrated_config, wait_for


def test_serve_runs_two_workers_replaces_a_dead_one_and_stops_on_sigterm(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    config = migrated_config(database_urls, tmp_path)
    server = Server({**config, "PROXY_HOPS": 1}, tmp_path, "--workers", "2")
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

        wait_for(lambda: len(server.workers()) == 2)
        workers = server.workers()
        # The proxy (here: us, on 127.0.0.1) says the client came over HTTPS: PROXY_HOPS=1
        # believes it, so the app answers as it does over TLS.
        _, secure_headers, _ = server.get("/login", **{"X-Forwarded-Proto": "https"})
        assert "Strict-Transport-Security" in secure_headers

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(server.workers()) == 2 and victim not in server.workers())
        assert server.get("/login")[0] == 200
        workers = server.workers()
    finally:
        status = server.stop()
    assert status == 0, server.log.read_text()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
    # gunicorn's own lines are JSON like the app's, for the log shipper.
    records = [json.loads(line) for line in server.log.read_text().splitlines() if line]
    gunicorn = [r["message"] for r in records if r["logger"] == "gunicorn.error"]
    assert "Using worker: gthread" in gunicorn
    assert "Handling signal: term" in gunicorn


def test_forwarded_headers_from_a_peer_that_is_no_proxy_are_ignored(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    config = migrated_config(database_urls, tmp_path)
    server = Server(
        {**config, "PROXY_HOPS": 1},
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
    port = free_port()
    env = environment(
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
