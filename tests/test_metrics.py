"""Prometheus metrics: the token-guarded /metrics, business gauges, counters, worker endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, func, select

import connectors.facebook  # noqa: F401  (registers the Meta webhook parser)
from connectors import Author
from connectors.webhooks import meta_signature
from inbox import create_app, metrics_files, migrate
from inbox.accounts import connect_account
from inbox.db import databases
from inbox.ingest import ingest
from inbox.metrics_http import serve_worker_metrics
from inbox.models import Account, Contact, Conversation, Delivery, ResearchOutbox, Role
from inbox.replies import send_reply
from inbox.types import utcnow
from inbox.worker import context_from_app, drain, poll_account
from tests.conftest import DatabaseUrls, app_config, make_account, make_item, make_user

TOKEN = "metrics-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# Hostile canaries: none of them may ever appear in a metric name, label or value.
CANARIES = {
    "name": "Zyprian Quellmalz",
    "handle": "zyq_canary",
    "text": "Kanarienvogel-Nachricht",
    "email": "zyprian@canary.example",
    "phone": "+49 171 5550199",
    "platform_user_id": "880055",
    "markup": '"}<script>x</script>',
}


@pytest.fixture
def metrics_app(app: Flask) -> Flask:
    """The test app with a metrics token configured."""
    app.config["METRICS_TOKEN"] = TOKEN
    return app


def scrape(client: FlaskClient) -> tuple[str, Samples]:
    """The raw exposition and its samples by (name, labels), as Prometheus would read them."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    body = response.get_data(as_text=True)
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return body, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_404_until_a_token_is_configured(client: FlaskClient) -> None:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 404
    assert "socialcare" not in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


def test_metrics_need_the_right_bearer_token(metrics_app: Flask) -> None:
    client = metrics_app.test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, "Basic dXNlcjpwdw=="):
        refused = client.get("/metrics", headers={"Authorization": wrong})
        assert refused.status_code == 403, wrong
        assert "socialcare_" not in refused.get_data(as_text=True)
    for response in (missing, refused):
        assert "Set-Cookie" not in response.headers
    body, samples = scrape(client)
    assert value(samples, "socialcare_database_up") == 1
    assert value(samples, "socialcare_outbox_depth") == 0
    assert "# TYPE socialcare_request_duration_seconds histogram" in body


def test_ingested_items_dead_letters_and_the_outbox_show_in_the_metrics(
    metrics_app: Flask, session: Session, fernet: MultiFernet
) -> None:
    client = metrics_app.test_client()
    start = (utcnow() - timedelta(hours=1)).isoformat()
    account = make_account(session, fernet, start=start, rate=1, backlog=0, malformed_every=10)
    labels = {"account": str(account.id), "platform": "demo"}
    _, before = scrape(client)

    outcome = poll_account(context_from_app(metrics_app), account.id or 0)
    assert (outcome.new, outcome.failed) == (45, 5)

    _, after = scrape(client)
    kinds = ("mention", "comment", "dm")
    ingested = sum(
        value(after, "socialcare_items_ingested_total", **labels, kind=k, source="poll")
        - value(before, "socialcare_items_ingested_total", **labels, kind=k, source="poll")
        for k in kinds
    )
    assert ingested == 45
    dead = "socialcare_items_dead_lettered_total"
    assert value(after, dead, **labels, source="poll") - value(
        before, dead, **labels, source="poll"
    )
    assert value(after, "socialcare_dead_letters", **labels) == 5
    polls = "socialcare_polls_total"
    assert value(after, polls, **labels) - value(before, polls, **labels) == 1
    outbox_rows = session.exec(select(func.count()).select_from(ResearchOutbox)).one()
    assert outbox_rows == 45
    assert value(after, "socialcare_outbox_depth") == outbox_rows
    assert value(after, "socialcare_outbox_oldest_age_seconds") >= 0
    assert value(after, "socialcare_accounts", platform="demo", status="active") == 1
    assert value(after, "socialcare_account_last_poll_age_seconds", **labels) < 60

    records = "socialcare_research_records_total"
    drain(context_from_app(metrics_app))
    _, drained = scrape(client)
    assert value(drained, "socialcare_outbox_depth") == 0
    written = value(drained, records, outcome="written") - value(after, records, outcome="written")
    assert written == 45
    seconds = "socialcare_research_drain_seconds_total"
    assert value(drained, seconds) > value(after, seconds)


def test_items_from_a_signed_webhook_count_as_webhook_ingestion(
    metrics_app: Flask, session: Session
) -> None:
    metrics_app.config["META_APP_SECRET"] = "meta-secret"
    account = Account(
        platform="facebook",
        display_name="Quendelmarkt",
        platform_account_id="1029384756",
        credentials_encrypted=b"x",
    )
    session.add(account)
    session.commit()
    labels = {"account": str(account.id), "platform": "facebook", "kind": "dm"}
    client = metrics_app.test_client()
    _, before = scrape(client)
    body = (Path(__file__).parent / "fixtures/webhooks/facebook_messenger_dm.json").read_bytes()
    response = client.post(
        "/webhooks/meta",
        data=body,
        headers={"X-Hub-Signature-256": meta_signature("meta-secret", body)},
        content_type="application/json",
    )
    assert response.status_code == 200
    _, after = scrape(client)
    name = "socialcare_items_ingested_total"
    webhook = value(after, name, **labels, source="webhook")
    assert webhook - value(before, name, **labels, source="webhook") == 1
    assert value(after, "socialcare_outbox_depth") == 1


def test_leak_guard_rejections_are_counted_by_kind(
    metrics_app: Flask, session: Session, fernet: MultiFernet
) -> None:
    client = metrics_app.test_client()
    account = make_account(session, fernet)
    author = Author(platform_user_id="9001", handle="amadeus_z", display_name="Amadeus Zylinski")
    ingest(session=session, account=account, item=make_item(external_id="a", author=author))
    contact = session.exec(select(Contact)).one()
    contact.phone = "+49 171 5550123"
    session.add(contact)
    session.commit()
    leaky = make_item(external_id="b", author=author, text="Die alte Durchwahl war 5550123.")
    ingest(session=session, account=account, item=leaky)
    _, before = scrape(client)
    drain(context_from_app(metrics_app))
    body, after = scrape(client)
    rejections = "socialcare_leak_guard_rejections_total"
    assert value(after, rejections, kind="phone") - value(before, rejections, kind="phone") == 1
    records = "socialcare_research_records_total"
    assert value(after, records, outcome="rejected") - value(before, records, outcome="rejected")
    assert "5550123" not in body


def test_failed_and_sent_replies_are_counted_and_undelivered_ones_gauged(
    metrics_app: Flask, session: Session, fernet: MultiFernet
) -> None:
    client = metrics_app.test_client()
    account = make_account(session, fernet, fail_replies=True)
    labels = {"account": str(account.id), "platform": "demo"}
    agent = make_user(session, role=Role.agent)
    inbound = ingest(session=session, account=account, item=make_item()).message
    conversation = session.get(Conversation, inbound.conversation_id)
    assert conversation is not None
    _, before = scrape(client)
    failed = send_reply(
        session=session, fernet=fernet, conversation=conversation, agent=agent, text="Hallo"
    )
    assert failed.delivery == Delivery.failed
    account.settings = {**account.settings, "fail_replies": False}
    session.add(account)
    session.commit()
    sent = send_reply(
        session=session, fernet=fernet, conversation=conversation, agent=agent, text="Hallo!"
    )
    assert sent.delivery == Delivery.sent
    _, after = scrape(client)
    replies = "socialcare_replies_total"
    for outcome in ("failed", "sent"):
        delta = value(after, replies, **labels, outcome=outcome)
        assert delta - value(before, replies, **labels, outcome=outcome) == 1, outcome
    assert value(after, "socialcare_replies_undelivered", **labels, delivery="failed") == 1


def test_request_latency_is_labelled_by_view_never_by_path_or_query(
    metrics_app: Flask, session: Session, fernet: MultiFernet
) -> None:
    client = metrics_app.test_client()
    assert client.get("/login?next=/conversations/987654").status_code == 200
    client.get("/conversations/987654")
    client.get("/no-such-page-5550199?q=zyprian@canary.example")
    body, samples = scrape(client)
    count = "socialcare_request_duration_seconds_count"
    assert value(samples, count, endpoint="auth.login", method="GET", status="2xx") >= 1
    assert value(samples, count, endpoint="unmatched", method="GET", status="4xx") >= 1
    endpoints = {dict(labels)["endpoint"] for name, labels in samples if name == count and labels}
    conversation_view, _ = metrics_app.url_map.bind("localhost").match("/conversations/987654")
    assert conversation_view in endpoints
    assert not any("/" in endpoint for endpoint in endpoints)
    for forbidden in ("987654", "5550199", "canary"):
        assert forbidden not in body, forbidden


def test_no_personal_data_appears_in_the_metrics(
    metrics_app: Flask, session: Session, fernet: MultiFernet
) -> None:
    account = make_account(session, fernet)
    author = Author(
        platform_user_id=CANARIES["platform_user_id"],
        handle=CANARIES["handle"],
        display_name=CANARIES["name"],
    )
    text = " ".join(CANARIES[key] for key in ("text", "email", "phone", "markup"))
    ingest(session=session, account=account, item=make_item(author=author, text=text))
    contact = session.exec(select(Contact)).one()
    contact.email, contact.phone = CANARIES["email"], CANARIES["phone"]
    session.add(contact)
    session.commit()
    client = metrics_app.test_client()
    client.get(f"/search?q={CANARIES['handle']}")
    body, _ = scrape(client)
    for kind, canary in CANARIES.items():
        assert canary not in body, kind
    assert "880055" not in body and "Zyprian" not in body and "5550199" not in body


def test_an_unreachable_database_reports_database_up_zero_and_still_answers(
    metrics_app: Flask, tmp_path: Path
) -> None:
    from inbox.db import make_engine
    from inbox.metrics_db import DatabaseCollector
    from inbox.metrics_http import exposition

    missing = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    body = exposition(collectors=[DatabaseCollector(missing)]).decode()
    assert "socialcare_database_up 0.0" in body
    assert "no-such-dir" not in body


# Platform failures, through the real X connector over an intercepted HTTP transport -------

API = "https://api.twitter.com/2"
FIXTURES = Path(__file__).parent / "fixtures" / "x"
ME = json.loads((FIXTURES / "me.json").read_text())
MENTIONS = f"{API}/users/{ME['data']['id']}/mentions"


@pytest.fixture
def x_api() -> Iterator[responses.RequestsMock]:
    """X's API as seen by tweepy."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API}/users/me", json=ME)
        mock.get(f"{API}/dm_events", json={"meta": {"result_count": 0}})
        yield mock


def _x_account(session: Session, fernet: MultiFernet) -> Account:
    credentials = {k: f"{k}-1" for k in ("consumer_key", "consumer_secret")}
    credentials |= {"access_token": "at-1", "access_token_secret": "ats-1"}
    account = connect_account(
        session=session,
        fernet=fernet,
        platform="x",
        credentials=credentials,
        settings={"username": ME["data"]["username"]},
    )
    account.cursor = {
        "v": 1,
        "mentions": {"since_id": "1800000000000000001", "next_token": None, "pending_newest": None},
        "dms": {"last_id": None, "next_token": None, "pending_newest": None},
    }
    session.add(account)
    session.commit()
    return account


def test_rate_limits_and_revoked_tokens_count_as_poll_errors_with_their_reason(
    metrics_app: Flask, session: Session, fernet: MultiFernet, x_api: responses.RequestsMock
) -> None:
    client = metrics_app.test_client()
    account = _x_account(session, fernet)
    labels = {"account": str(account.id), "platform": "x"}
    reset = utcnow() + timedelta(minutes=7)
    x_api.get(
        MENTIONS,
        json=json.loads((FIXTURES / "error_429.json").read_text()),
        status=429,
        headers={"x-rate-limit-reset": str(int(reset.timestamp()))},
    )
    _, before = scrape(client)
    poll_account(context_from_app(metrics_app), account.id or 0)
    _, limited = scrape(client)

    def delta(now: Samples, then: Samples, name: str, **extra: str) -> float:
        return value(now, name, **labels, **extra) - value(then, name, **labels, **extra)

    errors = "socialcare_poll_errors_total"
    assert delta(limited, before, errors, reason="rate_limited") == 1
    assert delta(limited, before, "socialcare_rate_limit_waits_total") == 1
    waited = delta(limited, before, "socialcare_rate_limit_wait_seconds_total")
    assert 6 * 60 < waited <= 7 * 60
    assert value(limited, "socialcare_accounts_rate_limited", platform="x") == 1

    session.refresh(account)
    account.rate_limited_until = None
    session.add(account)
    session.commit()
    x_api.replace(
        responses.GET,
        MENTIONS,
        json=json.loads((FIXTURES / "error_401.json").read_text()),
        status=401,
    )
    poll_account(context_from_app(metrics_app), account.id or 0)
    _, revoked = scrape(client)
    assert delta(revoked, limited, errors, reason="revoked") == 1
    assert value(revoked, "socialcare_accounts", platform="x", status="needs_reconnection") == 1


# The worker's own endpoint -------------------------------------------------------------------


def test_the_worker_endpoint_serves_its_counters_only_with_the_token(
    app: Flask, session: Session, fernet: MultiFernet
) -> None:
    assert serve_worker_metrics(bind="127.0.0.1:0", token="") is None
    assert serve_worker_metrics(bind="", token=TOKEN) is None
    server = serve_worker_metrics(bind="127.0.0.1:0", token=TOKEN)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        account = make_account(session, fernet, start=datetime(2026, 1, 1, tzinfo=UTC).isoformat())
        poll_account(context_from_app(app), account.id or 0)
        assert requests.get(url, timeout=5).status_code == 401
        wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 403 and b"socialcare" not in wrong.content
        other = f"http://127.0.0.1:{server.server_port}/"
        assert requests.get(other, headers=AUTH, timeout=5).status_code == 404
        answer = requests.get(url, headers=AUTH, timeout=5)
        assert answer.status_code == 200
        samples: dict[str, Any] = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        polls = samples["socialcare_polls_total"]
        assert any(s.labels["account"] == str(account.id) and s.value >= 1 for s in polls)
    finally:
        server.shutdown()
        server.server_close()


# Several web processes (gunicorn workers) -----------------------------------------------------

_PROCESS = """
import json, sys
from inbox import create_app
client = create_app(json.loads(sys.argv[1])).test_client()
if sys.argv[2] == "visit":
    assert client.get("/login").status_code == 200
else:
    answer = client.get("/metrics", headers={"Authorization": "Bearer " + sys.argv[2]})
    sys.stdout.write(answer.get_data(as_text=True))
"""


def test_with_a_multiprocess_directory_a_scrape_adds_up_every_process_dead_or_alive(
    metrics_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    keys = ("TESTING", "SECRET_KEY", "ENCRYPTION_KEYS", "DATABASE_URL", "RESEARCH_DATABASE_URL")
    config = json.dumps(
        {**{key: metrics_app.config[key] for key in keys}, "METRICS_TOKEN": TOKEN,
         "INSTANCE_PATH": str(tmp_path / "instance")}
    )  # fmt: skip

    def run(argument: str) -> tuple[int, str]:
        process = subprocess.Popen(
            [sys.executable, "-c", _PROCESS, config, argument],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        return process.pid, out

    def logins() -> float:
        samples: Samples = {}
        for family in text_string_to_metric_families(run(TOKEN)[1]):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        assert value(samples, "socialcare_database_up") == 1
        count = "socialcare_request_duration_seconds_count"
        return value(samples, count, endpoint="auth.login", method="GET", status="2xx")

    first, second = run("visit")[0], run("visit")[0]
    assert logins() == 2
    assert (folder / f"histogram_{first}.db").exists()

    # What gunicorn's master does as each worker exits: fold its files into the archive.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    metrics_files.worker_exited(first)
    metrics_files.worker_exited(second)
    assert not list(folder.glob(f"*_{first}.db")) and not list(folder.glob(f"*_{second}.db"))
    assert logins() == 2  # nothing lost, nothing counted twice
    metrics_files.worker_exited(run("visit")[0])
    assert logins() == 3
    assert {p.name for p in folder.glob("*_archive.db")} == {
        "counter_archive.db",
        "histogram_archive.db",
    }


def test_preparing_the_multiprocess_folder_empties_it_or_makes_a_private_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "prometheus"
    stale.mkdir()
    (stale / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(stale))
    assert metrics_files.prepare() == stale and not list(stale.glob("*.db"))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    made = metrics_files.prepare()
    try:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(made)
        assert made.is_dir() and not any(made.iterdir())
        assert oct(made.stat().st_mode & 0o777) == "0o700"
    finally:
        made.rmdir()


def test_gunicorn_workers_of_socialcare_serve_add_up_in_every_scrape(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    config = app_config(database_urls, tmp_path, METRICS_TOKEN=TOKEN)
    app = create_app(config)
    dbs = databases(app)
    migrate.upgrade(dbs.inbox, "inbox")
    migrate.upgrade(dbs.research, "research")
    dbs.inbox.dispose()
    dbs.research.dispose()
    del config["TESTING"]
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, **{f"SOCIALCARE_{k}": str(v) for k, v in config.items()}}
    env.pop("SOCIALCARE_TESTING", None)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("socialcare")), "serve", "--workers", "2",
             "--bind", f"127.0.0.1:{port}"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        for _ in range(30):  # a new connection each: gunicorn hands them to either worker
            assert requests.get(f"{base}/login", timeout=10).status_code == 200
        count = "socialcare_request_duration_seconds_count"
        for _ in range(4):
            answer = requests.get(f"{base}/metrics", headers=AUTH, timeout=10)
            assert answer.status_code == 200
            samples: Samples = {}
            for family in text_string_to_metric_families(answer.text):
                for sample in family.samples:
                    samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
            assert value(samples, count, endpoint="auth.login", method="GET", status="2xx") == 30
        # Each worker keeps its values in its own files there (the lazy import saw the folder).
        assert list(folder.glob("histogram_*.db"))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=40)
    output = log.read_text()
    assert "Traceback" not in output, output
