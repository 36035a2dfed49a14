"""The `socialcare anonymize` contract: JSON lines in, JSON lines out, one at a time.

Each input line is `{"id", "text"}` with optional `"lang"`, `"author_name"`, `"author_handle"`;
each output line is `{"id", "text", "entities": [{"type", "start", "end"}]}` with offsets into
the input text, plus `"language"`, `"sentiment"`, `"topics"` and `"hashtags"` with enrichment.
A line that cannot be read yields `{"id", "error"}` and the stream goes on. No database and no
configuration are needed, and memory stays constant however long the stream is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from anonymizer.redact import anonymize_text


def anonymize_line(line: str, *, enrich: bool = False) -> tuple[str, bool]:
    """The output line for one input line, and whether the input was good."""
    ident: Any = None
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("each line must be a JSON object")
        ident = record.get("id")
        text = record.get("text")
        if not isinstance(text, str):
            raise ValueError("'text' must be a string")
        names = [record.get(key) for key in ("author_name", "author_handle")]
        redaction = anonymize_text(text, known_names=[n for n in names if isinstance(n, str)])
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return json.dumps({"id": ident, "error": str(exc)}, ensure_ascii=False), False
    out: dict[str, Any] = {
        "id": ident,
        "text": redaction.text,
        "entities": [{"type": e.type, "start": e.start, "end": e.end} for e in redaction.entities],
    }
    if enrich:
        out.update(_enrichment(redaction.text))
    return json.dumps(out, ensure_ascii=False), True


def _enrichment(text: str) -> dict[str, Any]:
    from anonymizer.enrich import enrich

    found = enrich(text)
    return {
        "language": found.language,
        "sentiment": {"label": found.sentiment.label, "score": round(found.sentiment.score, 4)},
        "topics": list(found.topics),
        "hashtags": list(found.hashtags),
    }


def anonymize_lines(lines: Iterable[str], *, enrich: bool = False) -> Iterator[tuple[str, bool]]:
    """Anonymize a stream line by line, skipping blank lines."""
    for line in lines:
        if line.strip():
            yield anonymize_line(line, enrich=enrich)
