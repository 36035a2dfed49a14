"""Build ``pii_labelled.jsonl`` from the hand-labelled ``pii_source.txt``.

The source holds one message per line with inline ``[[TYPE|value]]`` markup (its header
documents the format). This script strips the markup, computes character offsets into
the plain text, validates every span (value matches the text, no overlaps, IBAN check
digits, Luhn check for cards, only reserved e-mail domains) and fails loudly with the
source line number on anything malformed.

Usage: ``python tests/data/build_pii_set.py`` (writes the JSONL next to this file and
prints counts per type and language), or ``--check`` to only compare.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "pii_source.txt"
TARGET = HERE / "pii_labelled.jsonl"

COMPANY_HANDLE = "@quendelmarkt_hilft"
ENTITY_TYPES = (
    "PERSON",
    "HANDLE",
    "EMAIL",
    "URL",
    "IP_ADDRESS",
    "PHONE",
    "IBAN",
    "CREDIT_CARD",
    "ADDRESS",
    "ID_NUMBER",
    "DATE_OF_BIRTH",
)
LANGUAGES = ("de", "en")
META_KEYS = frozenset({"lang", "kind", "author_name", "author_handle", "known_names"})
KINDS = frozenset({"mention", "comment", "dm", "reply"})
# RFC 2606 reserves these for documentation; nothing else may appear as a mail domain.
EMAIL_DOMAIN_RE = re.compile(r"@(?:[\w-]+\.)*(?:example\.(?:com|org|net)|[\w-]+\.example)$")

_LINE_RE = re.compile(r"^\{(?P<meta>[^{}]*)\}[ ]?(?P<body>.*)$")
_META_ITEM_RE = re.compile(r'\s*(?P<key>\w+)=(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s"]+))\s*')
_MARK_RE = re.compile(r"\[\[(?P<type>[^|\[\]]*)\|(?P<value>[^|\[\]]*)\]\]")


class SourceError(ValueError):
    """A malformed line in the labelled source."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"{SOURCE.name}:{line_no}: {message}")


def iban_valid(value: str) -> bool:
    """Tell whether an IBAN (spaces allowed) has valid ISO 13616 check digits."""
    compact = value.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def luhn_valid(value: str) -> bool:
    """Tell whether a card number (spaces or dashes allowed) passes the Luhn check."""
    digits = re.sub(r"[ -]", "", value)
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char) * (2 if index % 2 else 1)
        total += number - 9 if number > 9 else number
    return total % 10 == 0


def _parse_meta(line_no: int, meta: str) -> dict[str, str]:
    """Parse the ``{key=value ...}`` block of one line."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(meta):
        match = _META_ITEM_RE.match(meta, pos)
        if not match or match.end() == pos:
            raise SourceError(line_no, f"bad metadata near {meta[pos:]!r}")
        key = match["key"]
        if key not in META_KEYS:
            raise SourceError(line_no, f"unknown metadata key {key!r}")
        if key in fields:
            raise SourceError(line_no, f"duplicate metadata key {key!r}")
        fields[key] = match["quoted"] if match["quoted"] is not None else match["bare"]
        pos = match.end()
    if fields.get("lang") not in LANGUAGES:
        raise SourceError(line_no, f"lang must be one of {LANGUAGES}")
    if "kind" in fields and fields["kind"] not in KINDS:
        raise SourceError(line_no, f"unknown kind {fields['kind']!r}")
    return fields


def _check_value(line_no: int, kind: str, value: str) -> None:
    """Validate one labelled value beyond its offsets."""
    if kind not in ENTITY_TYPES:
        raise SourceError(line_no, f"unknown entity type {kind!r}")
    if not value or value != value.strip():
        raise SourceError(line_no, f"empty value or surrounding whitespace: {value!r}")
    if kind == "IBAN" and not iban_valid(value):
        raise SourceError(line_no, f"IBAN check digits wrong: {value!r}")
    if kind == "CREDIT_CARD" and not luhn_valid(value):
        raise SourceError(line_no, f"card number fails the Luhn check: {value!r}")
    if kind == "EMAIL" and not EMAIL_DOMAIN_RE.search(value):
        raise SourceError(line_no, f"e-mail outside the reserved example domains: {value!r}")
    if kind == "HANDLE" and (not value.startswith("@") or value == COMPANY_HANDLE):
        raise SourceError(line_no, f"handle must start with '@' and not be ours: {value!r}")


def parse_line(line_no: int, line: str, index: int) -> dict[str, Any]:
    """Turn one source line into a labelled record."""
    match = _LINE_RE.match(line)
    if not match:
        raise SourceError(line_no, "line must start with a {lang=...} metadata block")
    meta = _parse_meta(line_no, match["meta"])
    body = match["body"].replace("\\n", "\n")
    if "\\" in body:
        raise SourceError(line_no, "only the escape \\n is defined")
    text_parts: list[str] = []
    entities: list[dict[str, Any]] = []
    cursor = length = 0
    for mark in _MARK_RE.finditer(body):
        plain = body[cursor : mark.start()]
        text_parts.append(plain)
        length += len(plain)
        kind, value = mark["type"], mark["value"]
        _check_value(line_no, kind, value)
        entities.append({"type": kind, "start": length, "end": length + len(value), "value": value})
        text_parts.append(value)
        length += len(value)
        cursor = mark.end()
    text_parts.append(body[cursor:])
    text = "".join(text_parts)
    leftover = _MARK_RE.sub("", body)
    if "[[" in leftover or "]]" in leftover:
        raise SourceError(line_no, "unbalanced or malformed [[...]] markup")
    if not text.strip():
        raise SourceError(line_no, "empty message")
    if text != text.strip():
        raise SourceError(line_no, "message has leading or trailing whitespace")
    previous_end = 0
    for entity in entities:
        if text[entity["start"] : entity["end"]] != entity["value"]:
            raise SourceError(line_no, f"offsets do not match value {entity['value']!r}")
        if entity["start"] < previous_end:
            raise SourceError(line_no, f"overlapping spans at {entity['value']!r}")
        previous_end = entity["end"]
    if COMPANY_HANDLE in {e["value"] for e in entities}:
        raise SourceError(line_no, "the company's own handle is never an entity")
    record: dict[str, Any] = {"id": f"m{index:04d}", "lang": meta["lang"]}
    if "kind" in meta:
        record["kind"] = meta["kind"]
    record["text"] = text
    if "author_name" in meta:
        record["author_name"] = meta["author_name"]
    if "author_handle" in meta:
        record["author_handle"] = meta["author_handle"]
    known = meta.get("known_names", "")
    record["known_names"] = [name.strip() for name in known.split(";") if name.strip()]
    record["keep_handles"] = [COMPANY_HANDLE]
    record["entities"] = entities
    return record


def build_records(source: Path = SOURCE) -> list[dict[str, Any]]:
    """Parse the whole source file into labelled records."""
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line_no, raw in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        record = parse_line(line_no, line, len(records) + 1)
        if record["text"] in seen:
            raise SourceError(line_no, f"duplicate of the message on line {seen[record['text']]}")
        seen[record["text"]] = line_no
        records.append(record)
    return records


def render_jsonl(records: list[dict[str, Any]]) -> str:
    """Serialise records as JSON Lines, one message per line."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def summary(records: list[dict[str, Any]]) -> str:
    """Return a table of message and span counts per type and language."""
    messages = Counter(record["lang"] for record in records)
    spans: Counter[tuple[str, str]] = Counter(
        (entity["type"], record["lang"]) for record in records for entity in record["entities"]
    )
    lines = [f"messages: {len(records)} (" + ", ".join(f"{k}={messages[k]}" for k in LANGUAGES)]
    lines[0] += ")"
    lines.append(f"{'type':<14}{'de':>6}{'en':>6}{'total':>7}")
    for kind in ENTITY_TYPES:
        de, en = spans[(kind, "de")], spans[(kind, "en")]
        lines.append(f"{kind:<14}{de:>6}{en:>6}{de + en:>7}")
    total_de = sum(v for (_, lang), v in spans.items() if lang == "de")
    total_en = sum(v for (_, lang), v in spans.items() if lang == "en")
    lines.append(f"{'all':<14}{total_de:>6}{total_en:>6}{total_de + total_en:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build (or with ``--check`` verify) the JSONL file and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSONL is stale")
    args = parser.parse_args(argv)
    try:
        records = build_records()
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    rendered = render_jsonl(records)
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != rendered:
            print(f"{TARGET.name} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
    else:
        TARGET.write_text(rendered, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(HERE.parent.parent)}")
    print(summary(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
