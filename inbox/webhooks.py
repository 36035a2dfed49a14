"""Signed webhook deliveries from Meta (Facebook, Instagram) and X, stored like polled items."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from sqlmodel import Session, select
from werkzeug.wrappers import Response

from connectors import WEBHOOK_PARSERS, WebhookBatch
from connectors.webhooks import (
    verify_meta_signature,
    verify_meta_subscription,
    verify_x_signature,
    x_crc_response,
)
from inbox import db
from inbox.auth import csrf
from inbox.ingest import commit_batch
from inbox.models import Account, DeadLetter

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)

# Which registered parser reads a Meta delivery, by its top-level "object".
META_OBJECTS = {"page": "facebook", "instagram": "instagram"}
# Real deliveries are a few kilobytes; the signature is checked over the whole body, so cap it.
MAX_BODY_BYTES = 2 * 1024 * 1024
RECEIVED = "EVENT_RECEIVED"


class ParserMissing(LookupError):
    """No webhook parser is registered for a platform (its connector module is not imported)."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one delivery brought: counts only, so it can be logged without personal data."""

    new: int = 0
    duplicates: int = 0
    failed: int = 0
    unknown_accounts: int = 0
    account_ids: tuple[int, ...] = ()


def store_delivery(
    *, session: Session, source: str, body: bytes, platform: Callable[[Mapping[str, Any]], str]
) -> DeliveryOutcome:
    """Store a signature-checked delivery's items, keeping what cannot be read as dead letters."""
    # `source` names the endpoint ("meta", "x") for dead letters that belong to no platform yet;
    # `platform` picks the parser. ParserMissing propagates so the view answers 503 and the
    # platform delivers again later: nothing is lost while a connector is not loaded.
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    except ValueError as exc:
        _keep_undeliverable(session, source, body, f"invalid JSON: {exc}")
        return DeliveryOutcome(failed=1)
    name = platform(payload)
    if not name:
        kind = repr(payload.get("object"))[:100]
        _keep_undeliverable(session, source, body, f"unknown webhook object {kind}")
        return DeliveryOutcome(failed=1)
    parser = WEBHOOK_PARSERS.get(name)
    if parser is None:
        raise ParserMissing(name)
    try:
        batches = parser(payload)
    except Exception as exc:  # a parser bug must not lose the delivery
        _keep_undeliverable(session, name, body, f"parser failed: {type(exc).__name__}: {exc}")
        log.warning("%s webhook parser failed with %s", name, type(exc).__name__)
        return DeliveryOutcome(failed=1)
    return store_batches(session=session, platform=name, batches=batches)


def store_batches(
    *, session: Session, platform: str, batches: list[WebhookBatch]
) -> DeliveryOutcome:
    """Ingest each batch into its official account; batches for other accounts are dropped."""
    # Meta and X may deliver for pages or users this instance does not run (a shared app, a
    # removed account): storing those would keep strangers' data we have no purpose for.
    new = duplicates = failed = unknown = 0
    account_ids: list[int] = []
    for batch in batches:
        if not batch.account_ref:
            # An entry naming no account is no stranger's either: the parser kept it as a
            # failure so that an admin can see what the platform sent.
            for failure in batch.failures:
                _keep_unattributed(session, platform, failure.raw, failure.error)
                failed += 1
            unknown += bool(batch.items)
            continue
        account = session.exec(
            select(Account).where(
                Account.platform == platform, Account.platform_account_id == batch.account_ref
            )
        ).first()
        if account is None:
            unknown += 1
            continue
        assert account.id is not None
        account_ids.append(account.id)
        # The same path as polling: one transaction per batch, refused items kept.
        result = commit_batch(
            session=session,
            account=account,
            items=batch.items,
            failures=batch.failures,
            source="webhook",
        )
        new += result.new
        duplicates += result.duplicates
        failed += result.failed
    return DeliveryOutcome(
        new=new,
        duplicates=duplicates,
        failed=failed,
        unknown_accounts=unknown,
        account_ids=tuple(sorted(set(account_ids))),
    )


def _keep_undeliverable(session: Session, platform: str, body: bytes, error: str) -> None:
    # Bytes that are not UTF-8 must survive as escapes, not vanish.
    _keep_unattributed(session, platform, body.decode("utf-8", errors="backslashreplace"), error)


def _keep_unattributed(session: Session, platform: str, raw: str, error: str) -> None:
    # No account is known, so keep_failed (which needs one) does not fit. PostgreSQL text
    # cannot hold NUL characters.
    letter = DeadLetter(
        platform=platform, source="webhook", error=error, raw=raw.replace("\x00", "\\x00")
    )
    session.add(letter)
    session.commit()


def _meta_platform(payload: Mapping[str, Any]) -> str:
    return META_OBJECTS.get(str(payload.get("object")), "")


def _x_platform(_payload: Mapping[str, Any]) -> str:
    return "x"


def _text(body: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _secret(key: str) -> str:
    return str(current_app.config.get(key) or "")


def _receive(source: str, platform: Callable[[Mapping[str, Any]], str]) -> Response:
    try:
        outcome = store_delivery(
            session=db.session(), source=source, body=request.get_data(), platform=platform
        )
    except ParserMissing as exc:
        log.error(
            "no webhook parser registered for %r: import its connector module; "
            "answering 503 so the platform delivers again",
            exc.args[0],
        )
        return _text("parser unavailable", 503)
    log.info(
        "%s webhook: %d new, %d duplicate, %d failed, %d for unknown accounts; accounts %s",
        source,
        outcome.new,
        outcome.duplicates,
        outcome.failed,
        outcome.unknown_accounts,
        list(outcome.account_ids),
    )
    return _text(RECEIVED, 200)


@bp.before_request
def _cap_body() -> None:
    configured = current_app.config.get("MAX_CONTENT_LENGTH")
    request.max_content_length = min(configured or MAX_BODY_BYTES, MAX_BODY_BYTES)


@bp.get("/meta")
def meta_handshake() -> Response:
    """Answer Meta's subscription check with its challenge when it carries our verify token."""
    expected = _secret("META_VERIFY_TOKEN")
    if not expected:
        return _text("webhooks are off", 404)
    challenge = verify_meta_subscription(
        request.args.get("hub.mode"),
        request.args.get("hub.verify_token"),
        request.args.get("hub.challenge"),
        expected,
    )
    if challenge is None:
        log.warning("meta webhook handshake refused")
        return _text("forbidden", 403)
    return _text(challenge, 200)


@bp.post("/meta")
def meta_delivery() -> Response:
    """Take a signed Facebook or Instagram delivery and store what it carries."""
    return _signed_delivery(
        "meta", "META_APP_SECRET", "X-Hub-Signature-256", verify_meta_signature, _meta_platform
    )


@bp.get("/x")
def x_crc() -> Response:
    """Answer X's challenge-response check (at registration and then periodically)."""
    secret = _secret("X_CONSUMER_SECRET")
    if not secret:
        return _text("webhooks are off", 404)
    token = request.args.get("crc_token")
    if not token:
        return _text("crc_token missing", 400)
    return jsonify(response_token=x_crc_response(secret, token))


@bp.post("/x")
def x_delivery() -> Response:
    """Take a signed X Account Activity delivery and store what it carries."""
    return _signed_delivery(
        "x", "X_CONSUMER_SECRET", "x-twitter-webhooks-signature", verify_x_signature, _x_platform
    )


def _signed_delivery(
    source: str,
    secret_setting: str,
    header_name: str,
    verify: Callable[[str, bytes, str | None], bool],
    platform: Callable[[Mapping[str, Any]], str],
) -> Response:
    # Checked over the raw bytes before anything parses them: unsigned or forged is never read.
    secret = _secret(secret_setting)
    if not secret:
        return _text("webhooks are off", 404)
    header = request.headers.get(header_name)
    if not verify(secret, request.get_data(), header):
        log.warning("%s webhook refused: %s signature", source, "bad" if header else "missing")
        return _text("forbidden", 403)
    return _receive(source, platform)


def init_app(app: Flask) -> None:
    """Register the webhook endpoints; platforms cannot send CSRF tokens, signatures guard them."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
