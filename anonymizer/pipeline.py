"""Turn one customer message into a research record that cannot point back to a person."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from anonymizer.enrich import enrich
from anonymizer.redact import anonymize_text
from anonymizer.store import ResearchRecord
from anonymizer.topics import DEFAULT, Taxonomy


class LeakDetected(Exception):
    """A known identifier of the author survived redaction: the record must not be stored."""

    def __init__(self, kinds: Sequence[str]) -> None:
        # Only the kinds, never the values: this message ends up in logs and audit events.
        super().__init__(f"identifier left in the redacted text: {', '.join(kinds)}")
        self.kinds = tuple(kinds)


@dataclass(frozen=True, slots=True)
class Identifier:
    """Something that identifies the author, and what kind of thing it is."""

    kind: str
    value: str


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
    # Names of other known people (contacts, agents) that may turn up in the text.
    known_names: Sequence[str] = ()
    # The author's identifiers the leak guard checks for: names, handle, e-mail, phone.
    identifiers: Sequence[Identifier] = ()
    # The account's topic taxonomy (its admin edits it); the default service topics otherwise.
    taxonomy: Taxonomy = DEFAULT
    # The account's own ID formats (regular expressions), e.g. its contract number scheme.
    id_patterns: Sequence[str] = ()


def pseudonym(key: bytes | None, author_key: str) -> str:
    """A keyed one-way pseudonym: stable per author and month while the month's key exists.

    Without a key (the month's key was destroyed) the pseudonym is random: such a late record
    counts as an author of its own and can never be linked to anyone.
    """
    if key is None:
        return secrets.token_hex(16)
    return hmac.new(key, author_key.encode(), hashlib.sha256).hexdigest()[:32]


def hour_bucket(moment: datetime) -> datetime:
    """The UTC hour a moment falls in, as a naive UTC datetime for the store."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)


def leaks(redacted: str, identifiers: Sequence[Identifier]) -> list[str]:
    """The kinds of the author's identifiers still present in the redacted text."""
    found = []
    for identifier in identifiers:
        value = identifier.value.strip().lstrip("@")
        if len(value) < 2:
            continue
        digits = re.sub(r"\D", "", value)
        if identifier.kind == "phone" and len(digits) >= 6:
            # Phones come in many spellings: compare the digits alone.
            if digits[-6:] in re.sub(r"\D", "", redacted):
                found.append(identifier.kind)
            continue
        pattern = r"(?<!\w)" + re.escape(value) + r"(?!\w)"
        if re.search(pattern, redacted, re.IGNORECASE):
            found.append(identifier.kind)
    return found


def anonymize_message(source: SourceMessage, *, pseudonym_key: bytes | None) -> ResearchRecord:
    """Redact, check for leaks, pseudonymize, generalize and enrich one message."""
    redaction = anonymize_text(
        source.text,
        keep_handles=source.keep_handles,
        known_names=[name for name in (*source.author_names, *source.known_names) if name],
        extra_id_patterns=source.id_patterns,
    )
    leaked = leaks(redaction.text, source.identifiers)
    if leaked:
        raise LeakDetected(sorted(set(leaked)))
    found = enrich(redaction.text, taxonomy=source.taxonomy)
    return ResearchRecord(
        account_label=source.account_label,
        platform=source.platform,
        channel_kind=source.channel_kind,
        time_bucket=hour_bucket(source.created_at),
        language=found.language,
        redacted_text=redaction.text,
        topics=list(found.topics),
        hashtags=list(found.hashtags),
        sentiment_label=found.sentiment.label,
        sentiment_score=round(found.sentiment.score, 4),
        author_pseudonym=pseudonym(pseudonym_key, source.author_key),
    )
