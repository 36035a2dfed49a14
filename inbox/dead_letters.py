"""Dead letters: list them, retry them with the current parser after a fix, or discard them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import DataError
from sqlmodel import Session, col, select

from connectors import RETRY_PARSERS, PayloadError
from inbox.ingest import ingest
from inbox.models import Account, DeadLetter
from inbox.types import utcnow

Outcome = Literal["ingested", "duplicate", "failed", "refused"]


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """What a retry did: ingested (or found already stored), failed again, or refused to try."""

    outcome: Outcome
    message: str
    message_id: int | None = None

    @property
    def resolved(self) -> bool:
        """Whether the letter is resolved now."""
        return self.outcome in ("ingested", "duplicate")


def list_dead_letters(
    *, session: Session, include_resolved: bool = False, limit: int = 100
) -> Sequence[DeadLetter]:
    """The newest dead letters, open ones only unless asked for all."""
    query = select(DeadLetter).order_by(col(DeadLetter.id).desc()).limit(limit)
    if not include_resolved:
        query = query.where(col(DeadLetter.resolved_at).is_(None))
    return session.exec(query).all()


def retry_dead_letter(*, session: Session, letter: DeadLetter) -> RetryOutcome:
    """Parse a letter's raw with its platform's current parser and ingest it if it parses now."""
    if letter.resolved_at is not None:
        return RetryOutcome("refused", f"Dead letter #{letter.id} is already resolved")
    parser = RETRY_PARSERS.get(letter.platform)
    if parser is None:
        return RetryOutcome(
            "refused", f"Platform {letter.platform!r} has no retry parser; discard the letter"
        )
    account = session.get(Account, letter.account_id) if letter.account_id is not None else None
    if account is None:
        return RetryOutcome(
            "refused",
            f"Dead letter #{letter.id} belongs to no account, so there is no inbox to put it in",
        )
    try:
        raw = json.loads(letter.raw)
        if not isinstance(raw, dict):
            raise PayloadError(f"the stored payload is a JSON {type(raw).__name__}, not an object")
        item = parser(raw)
    except (ValueError, PayloadError) as exc:
        # json's ValueError: the stored raw is not JSON at all (a webhook body cut short).
        return _failed(session, letter, str(exc))
    if item.platform != account.platform or item.account_ref != account.platform_account_id:
        return _failed(
            session,
            letter,
            f"The payload is for {item.platform} account {item.account_ref!r}, not for "
            f"{account.platform} account {account.platform_account_id!r}",
        )
    try:
        ingested = ingest(session=session, account=account, item=item)
    except DataError as exc:
        # Parsed now, but holds a value the database refuses (too long an id, say).
        session.rollback()
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        return _failed(session, letter, f"The database refused the item: {reason}")
    letter.resolved_at = utcnow()
    session.add(letter)
    session.commit()
    message_id = ingested.message.id
    if ingested.created:
        return RetryOutcome("ingested", f"Stored as message #{message_id}", message_id)
    return RetryOutcome("duplicate", f"Already stored as message #{message_id}", message_id)


def discard_dead_letter(*, session: Session, letter: DeadLetter) -> None:
    """Mark a letter resolved without ingesting it."""
    if letter.resolved_at is None:
        letter.resolved_at = utcnow()
        session.add(letter)
        session.commit()


def _failed(session: Session, letter: DeadLetter, error: str) -> RetryOutcome:
    letter.error = error
    letter.retries += 1
    session.add(letter)
    session.commit()
    return RetryOutcome("failed", error)
