"""Turn one customer message into a research record that cannot point back to a person."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from anonymizer.enrich import language, topics
from anonymizer.redact import anonymize_text
from anonymizer.store import ResearchRecord


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """What the pipeline needs of a message; the inbox fills it in, the pipeline never reads it."""

    text: str
    platform: str
    channel_kind: str
    account_label: str
    created_at: datetime
    # Stable identity of the author on the platform, only ever used through a keyed hash.
    author_key: str
    author_names: Sequence[str] = ()
    keep_handles: Sequence[str] = field(default_factory=tuple)


def pseudonym(key: bytes, author_key: str) -> str:
    """A keyed one-way pseudonym: stable per author, meaningless without the key."""
    return hmac.new(key, author_key.encode(), hashlib.sha256).hexdigest()[:32]


def hour_bucket(moment: datetime) -> datetime:
    """The UTC hour a moment falls in, as a naive UTC datetime for the store."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)


def anonymize_message(source: SourceMessage, *, pseudonym_key: bytes) -> ResearchRecord:
    """Redact, pseudonymize, generalize and enrich one message into a research record."""
    redaction = anonymize_text(
        source.text,
        keep_handles=source.keep_handles,
        known_names=[name for name in source.author_names if name],
    )
    return ResearchRecord(
        account_label=source.account_label,
        platform=source.platform,
        channel_kind=source.channel_kind,
        time_bucket=hour_bucket(source.created_at),
        language=language(redaction.text),
        redacted_text=redaction.text,
        topics=topics(redaction.text),
        author_pseudonym=pseudonym(pseudonym_key, source.author_key),
    )
