"""Replace detected personal data by typed placeholders such as ``<EMAIL>``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from operator import itemgetter

from anonymizer.detect import Entity, find_entities

# Entity is a named tuple (type, start, end).
_SPAN = itemgetter(1, 2)


@dataclass(frozen=True)
class Redaction:
    """Redacted text together with the entities found in the original text."""

    text: str
    entities: tuple[Entity, ...]


def redact(text: str, entities: Sequence[Entity]) -> str:
    """Return ``text`` with every entity span replaced by its ``<TYPE>`` placeholder."""
    parts: list[str] = []
    cursor = 0
    for entity in sorted(entities, key=_SPAN):
        # Guessing how to merge bad spans could leave personal data behind, so refuse.
        if not cursor <= entity.start < entity.end <= len(text):
            raise ValueError(f"entity out of range or overlapping: {entity!r}")
        parts.append(text[cursor : entity.start])
        parts.append(f"<{entity.type}>")
        cursor = entity.end
    parts.append(text[cursor:])
    return "".join(parts)


def anonymize_text(
    text: str,
    *,
    keep_handles: Collection[str] = (),
    known_names: Collection[str] = (),
    default_region: str = "DE",
    extra_id_patterns: Sequence[str] = (),
) -> Redaction:
    """Detect personal data in ``text`` and return the redacted text with its entities."""
    entities = find_entities(
        text,
        keep_handles=keep_handles,
        known_names=known_names,
        default_region=default_region,
        extra_id_patterns=extra_id_patterns,
    )
    return Redaction(text=redact(text, entities), entities=tuple(entities))
