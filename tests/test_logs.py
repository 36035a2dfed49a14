"""Structured logs: JSON lines with a request id, and no personal data in what is written."""

from __future__ import annotations

import json
import logging
import signal
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask
from sqlmodel import Session

from inbox import create_app, migrate
from inbox.db import databases
from inbox.types import utcnow
from tests.conftest import DatabaseUrls, app_config, make_account, worker_process

# What a customer might write and a careless log call might pass on.
PERSONAL = {
    "email": "jana.schulz@example.org",
    "phone": "+49 171 5550199",
    "iban": "DE89 3704 0044 0532 0130 00",
    "handle": "@jana_s",
    "name": "Jana Schulz",
}
SENTENCE = (
    f"Mein Name ist {PERSONAL['name']}, schreiben Sie an {PERSONAL['email']} oder "
    f"{PERSONAL['handle']}, Telefon {PERSONAL['phone']}, IBAN {PERSONAL['iban']}"
)
PLACEHOLDERS = ("<PERSON>", "<EMAIL>", "<HANDLE>", "<PHONE>", "<IBAN>")
probe_log = logging.getLogger("inbox.probe")


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of a process's output."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def assert_no_personal_data(text: str) -> None:
    """None of the personal values, in any spelling a log could have, is in `text`."""
    for kind, value in PERSONAL.items():
        assert value not in text, kind
    for fragment in ("Schulz", "5550199", "0532 0130", "jana_s", "example.org"):
        assert fragment not in text, fragment


@pytest.fixture
def probe_app(app: Flask) -> Flask:
    """The test app with a view that logs personal data, as buggy code might."""

    @app.get("/_probe")
    def probe() -> str:
        probe_log.warning("customer wrote: %s", SENTENCE, extra={"note": PERSONAL["email"]})
        try:
            raise ValueError(f"cannot parse {PERSONAL['email']} for {PERSONAL['phone']}")
        except ValueError:
            probe_log.exception("parsing failed for %s", PERSONAL["handle"])
        return "ok"

    return app


def test_a_request_logs_json_lines_with_its_id_and_personal_data_redacted(
    probe_app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = probe_app.test_client().get("/_probe", headers={"X-Request-ID": "req-12345678"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-12345678"
    err = capsys.readouterr().err
    assert_no_personal_data(err)
    lines = [line for line in json_lines(err) if line.get("request_id") == "req-12345678"]
    wrote, failed, finished = lines
    assert wrote["logger"] == "inbox.probe" and wrote["level"] == "WARNING"
    for placeholder in PLACEHOLDERS:
        assert placeholder in wrote["message"], placeholder
    assert wrote["note"] == "<EMAIL>"
    assert wrote["timestamp"].endswith("+00:00")
    assert failed["message"] == "parsing failed for <HANDLE>"
    assert "ValueError: cannot parse <EMAIL> for <PHONE>" in failed["exc_info"]
    assert finished["logger"] == "socialcare.request"
    assert (finished["method"], finished["endpoint"], finished["status"]) == ("GET", "probe", 200)
    assert isinstance(finished["duration_ms"], float)


def test_an_unhandled_error_is_logged_as_one_redacted_json_record_with_the_request_id(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/_boom")
    def boom() -> str:
        raise RuntimeError(f"no contract for {PERSONAL['email']}, {PERSONAL['iban']}")

    capsys.readouterr()
    response = app.test_client().get("/_boom", headers={"X-Request-ID": "boom-12345678"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "boom-12345678"
    err = capsys.readouterr().err
    assert_no_personal_data(err)
    # Every line is JSON: no handler of Flask's own prints a plain traceback beside ours.
    lines = json_lines(err)
    assert len(lines) == len(err.splitlines())
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["request_id"] == "boom-12345678"
    assert "RuntimeError: no contract for <EMAIL>, <IBAN>" in error["exc_info"]
    assert lines[-1]["logger"] == "socialcare.request" and lines[-1]["status"] == 500


def test_the_request_line_names_the_view_never_the_path_query_or_cookies(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    client = app.test_client()
    client.set_cookie("session", "geheimer-keks")
    capsys.readouterr()
    client.get("/login?next=/search?q=geheimes-suchwort", headers={"Referer": "http://x/y"})
    client.get("/conversations/987654")
    client.open("/login", method="JANA01715550199")
    err = capsys.readouterr().err
    lines = [line for line in json_lines(err) if line["logger"] == "socialcare.request"]
    assert [(line["endpoint"], line["status"]) for line in lines][0] == ("auth.login", 200)
    assert lines[-1]["method"] == "other" and lines[-1]["status"] == 405
    for secret in ("geheimes-suchwort", "geheimer-keks", "987654", "http://x/y", "/login"):
        assert secret not in err, secret
    assert "5550199" not in err
    ids = [line["request_id"] for line in lines]
    assert len(set(ids)) == len(ids) == 3
    assert all(len(i) == 32 for i in ids)


@pytest.mark.parametrize(
    "supplied", ["abc\nINJECTED line", "a" * 500, "<script>", "short", "ä" * 12]
)
def test_a_malformed_request_id_from_the_client_is_replaced(
    app: Flask, capsys: pytest.CaptureFixture[str], supplied: str
) -> None:
    capsys.readouterr()
    response = app.test_client().get("/login", environ_overrides={"HTTP_X_REQUEST_ID": supplied})
    issued = response.headers["X-Request-ID"]
    assert issued != supplied and len(issued) == 32 and issued.isalnum()
    err = capsys.readouterr().err
    assert "INJECTED" not in err and "a" * 100 not in err and "<script>" not in err
    assert any(line["request_id"] == issued for line in json_lines(err))


def test_text_format_for_terminals_is_redacted_too(
    database_urls: DatabaseUrls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(app_config(database_urls, tmp_path, LOG_FORMAT="text"))
    try:
        capsys.readouterr()
        with app.test_request_context(headers={"X-Request-ID": "text-12345678"}):
            app.preprocess_request()
            probe_log.error("customer wrote: %s", SENTENCE)
        err = capsys.readouterr().err
        assert_no_personal_data(err)
        line = next(line for line in err.splitlines() if "inbox.probe" in line)
        assert "ERROR inbox.probe [text-12345678] customer wrote: Mein Name ist <PERSON>" in line
        assert not line.startswith("{")
    finally:
        create_app(app_config(database_urls, tmp_path))  # back to JSON for the other tests
        databases(app).inbox.dispose()
        databases(app).research.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_worker_logs_json_without_personal_data_and_serves_metrics(
    database_urls: DatabaseUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The web service's multiprocess folder, set in an environment file both services share:
    # the worker must keep out of it, or every web scrape would count its values too.
    web_folder = tmp_path / "prometheus"
    web_folder.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(web_folder))
    port = _free_port()
    token = "worker-metrics-token-0123456789"
    config = app_config(
        database_urls,
        tmp_path,
        WORKER_METRICS_BIND=f"127.0.0.1:{port}",
        METRICS_TOKEN=token,
        WORKER_DRAIN_SECONDS=1,
    )
    app = create_app(config)
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    with Session(dbs.inbox, expire_on_commit=False) as session:
        fernet = MultiFernet([Fernet(config["ENCRYPTION_KEYS"])])
        start = (utcnow() - timedelta(hours=1)).isoformat()
        account = make_account(session, fernet, start=start, rate=1, backlog=0)
        # A cursor the demo connector refuses, quoting it in its error: personal data on the
        # way to the worker's log, as a platform's error message might carry it.
        account.cursor = {"next_index": SENTENCE}
        session.add(account)
        session.commit()
    worker = worker_process(config)
    errors = 0.0
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not errors:
            time.sleep(0.5)
            try:
                answer = requests.get(
                    f"http://127.0.0.1:{port}/metrics",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=2,
                )
            except requests.ConnectionError:
                continue
            assert answer.status_code == 200
            for line in answer.text.splitlines():
                if line.startswith("socialcare_poll_errors_total{") and 'reason="error"' in line:
                    errors = float(line.rsplit(" ", 1)[1])
        refused = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        assert refused.status_code == 401
    finally:
        worker.send_signal(signal.SIGINT)
        output = worker.communicate(timeout=15)[0]
        dbs.inbox.dispose()
        dbs.research.dispose()
    assert errors >= 1, output
    assert not any(web_folder.iterdir())
    assert_no_personal_data(output)
    failed = [
        line
        for line in json_lines(output)
        if line["logger"] == "inbox.worker" and "failed" in line["message"]
    ]
    assert failed, output
    assert "<PERSON>" in failed[0]["message"] and "<EMAIL>" in failed[0]["message"]
    assert failed[0]["level"] == "WARNING" and failed[0]["request_id"] == "-"
