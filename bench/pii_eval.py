"""Personal-data detection quality on the project's labelled customer messages.

    .venv/bin/python bench/pii_eval.py                  # table for all messages
    .venv/bin/python bench/pii_eval.py --lang de --show-errors

Each message of ``tests/data/pii_labelled.jsonl`` (built from ``pii_source.txt``) goes through
``anonymizer.find_entities`` and ``anonymizer.anonymize_text`` with the message's known names
(author name, author handle and its ``known_names``) and ``keep_handles`` (the company's own
handle).

Matching rule, per entity type:

* A prediction is a true positive when it has the same type as a gold span and overlaps it
  (shares at least one character); each gold span is matched at most once, predictions are
  taken in text order and each takes the first unmatched gold span it overlaps.
* A prediction that overlaps only gold spans of its type that are already matched (a second
  piece of one address, say) is a *fragment*: it redacts personal data, so it is no false
  alarm, and it is no second hit either. Fragments count neither as true nor false positives.
* Every other prediction is a false positive (this includes a span of the wrong type: it
  counts as a false positive of its own type while the gold span, unless matched by another
  prediction, is a false negative of the gold type). Unmatched gold spans are false negatives.
* Micro scores add up the counts of all types.

The leak count is the number of gold entity values still present verbatim in the anonymized
text, compared case-insensitively and not inside a longer word (so a redacted "Ana" does not
count as leaked because "Analyse" appears elsewhere). A leak can remain even when the span
was matched, if only part of it was redacted.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from anonymizer import Entity, anonymize_text, find_entities

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pii_labelled.jsonl"
STRUCTURED_TYPES = (
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
ENTITY_TYPES = ("PERSON", *STRUCTURED_TYPES)


@dataclass(frozen=True, slots=True)
class GoldSpan:
    """One labelled entity: type, character offsets into the text (end exclusive), value."""

    type: str
    start: int
    end: int
    value: str


@dataclass(frozen=True, slots=True)
class Record:
    """One labelled message with what the inbox would know about its author."""

    id: str
    lang: str
    text: str
    known_names: tuple[str, ...]
    keep_handles: tuple[str, ...]
    entities: tuple[GoldSpan, ...]


@dataclass(slots=True)
class TypeScore:
    """Counts and scores of one entity type (or of all, for the micro average)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    fragments: int = 0
    leaks: int = 0

    @property
    def support(self) -> int:
        """Number of gold spans."""
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        """Share of (non-fragment) predictions that hit a gold span; 1.0 with none."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Share of gold spans that were matched; 1.0 with none."""
        return self.tp / self.support if self.support else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class Error:
    """A false negative, false positive or leak, with enough to find it in the data."""

    kind: str  # "FN", "FP" or "LEAK"
    record_id: str
    type: str
    start: int
    end: int
    text: str


@dataclass(slots=True)
class Report:
    """Scores per type, micro scores, leak counts and the individual errors."""

    messages: int
    per_type: dict[str, TypeScore]
    micro: TypeScore
    errors: list[Error] = field(default_factory=list, repr=False)

    @property
    def leaks(self) -> int:
        """Gold values of any type still readable after anonymization."""
        return sum(score.leaks for score in self.per_type.values())

    @property
    def structured_leaks(self) -> int:
        """Gold values of the structured types still readable after anonymization."""
        return sum(self.per_type[kind].leaks for kind in STRUCTURED_TYPES)


Detector = Callable[[Record], Sequence[Entity]]
Anonymizer = Callable[[Record], str]


def load(path: Path = DATA) -> list[Record]:
    """Read the labelled messages in file order."""
    records: list[Record] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        names = [raw.get("author_name"), raw.get("author_handle"), *raw["known_names"]]
        records.append(
            Record(
                id=raw["id"],
                lang=raw["lang"],
                text=raw["text"],
                known_names=tuple(name for name in names if name),
                keep_handles=tuple(raw["keep_handles"]),
                entities=tuple(
                    GoldSpan(e["type"], e["start"], e["end"], e["value"]) for e in raw["entities"]
                ),
            )
        )
    return records


def detect_with_anonymizer(record: Record) -> list[Entity]:
    """Run the project's detector as the inbox would for this message."""
    return find_entities(
        record.text, keep_handles=record.keep_handles, known_names=record.known_names
    )


def anonymize_with_anonymizer(record: Record) -> str:
    """Run the project's anonymizer as the inbox would for this message."""
    return anonymize_text(
        record.text, keep_handles=record.keep_handles, known_names=record.known_names
    ).text


def mask(text: str, entities: Iterable[Entity]) -> str:
    """Replace entity spans by ``<TYPE>``, merging overlaps (for detectors that overlap)."""
    merged: list[tuple[int, int, str]] = []
    for entity in sorted(entities, key=lambda e: (e.start, -e.end)):
        if merged and entity.start < merged[-1][1]:
            start, end, kind = merged[-1]
            merged[-1] = (start, max(end, entity.end), kind)
        else:
            merged.append((entity.start, entity.end, entity.type))
    parts: list[str] = []
    cursor = 0
    for start, end, kind in merged:
        parts.append(text[cursor:start])
        parts.append(f"<{kind}>")
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


def is_leaked(value: str, anonymized: str) -> bool:
    """Tell whether ``value`` is still readable in ``anonymized`` (case-insensitive, whole)."""
    pattern = rf"(?<!\w){re.escape(value)}(?!\w)"
    return re.search(pattern, anonymized, re.IGNORECASE) is not None


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Tell whether two half-open spans share a character."""
    return a_start < b_end and b_start < a_end


def _score_record(
    record: Record, predicted: Sequence[Entity], anonymized: str, report: Report
) -> None:
    """Add one message's matches, misses, false alarms and leaks to ``report``."""
    matched: set[int] = set()
    for entity in sorted(predicted, key=lambda e: (e.start, e.end)):
        score = report.per_type.setdefault(entity.type, TypeScore())
        candidates = [
            index
            for index, gold in enumerate(record.entities)
            if gold.type == entity.type
            and _overlaps(gold.start, gold.end, entity.start, entity.end)
        ]
        free = [index for index in candidates if index not in matched]
        if free:
            matched.add(free[0])
            score.tp += 1
        elif candidates:
            score.fragments += 1
        else:
            score.fp += 1
            report.errors.append(
                Error("FP", record.id, entity.type, entity.start, entity.end, record.text)
            )
    for index, gold in enumerate(record.entities):
        score = report.per_type.setdefault(gold.type, TypeScore())
        if index not in matched:
            score.fn += 1
            report.errors.append(
                Error("FN", record.id, gold.type, gold.start, gold.end, record.text)
            )
        if is_leaked(gold.value, anonymized):
            score.leaks += 1
            report.errors.append(
                Error("LEAK", record.id, gold.type, gold.start, gold.end, record.text)
            )


def evaluate(
    records: Sequence[Record],
    *,
    detect: Detector = detect_with_anonymizer,
    anonymize: Anonymizer | None = anonymize_with_anonymizer,
) -> Report:
    """Score a detector (by default the project's) on labelled records.

    ``anonymize`` gives the text whose leaks are counted; without it the detected spans are
    masked with :func:`mask`.
    """
    report = Report(
        messages=len(records),
        per_type={kind: TypeScore() for kind in ENTITY_TYPES},
        micro=TypeScore(),
    )
    for record in records:
        predicted = list(detect(record))
        anonymized = anonymize(record) if anonymize else mask(record.text, predicted)
        _score_record(record, predicted, anonymized, report)
    for score in report.per_type.values():
        report.micro.tp += score.tp
        report.micro.fp += score.fp
        report.micro.fn += score.fn
        report.micro.fragments += score.fragments
        report.micro.leaks += score.leaks
    return report


def format_report(report: Report, title: str = "anonymizer") -> str:
    """Render the per-type table, micro scores and leak counts as text."""
    header = (
        f"{'type':<14}{'prec':>7}{'rec':>7}{'f1':>7}{'support':>9}"
        f"{'tp':>6}{'fp':>6}{'fn':>6}{'frag':>6}{'leaks':>7}"
    )
    lines = [f"{title}: {report.messages} messages", header, "-" * len(header)]

    def row(name: str, score: TypeScore) -> str:
        return (
            f"{name:<14}{score.precision:>7.3f}{score.recall:>7.3f}{score.f1:>7.3f}"
            f"{score.support:>9}{score.tp:>6}{score.fp:>6}{score.fn:>6}"
            f"{score.fragments:>6}{score.leaks:>7}"
        )

    extra = sorted(set(report.per_type) - set(ENTITY_TYPES))
    for kind in (*ENTITY_TYPES, *extra):
        lines.append(row(kind, report.per_type[kind]))
    lines.append("-" * len(header))
    lines.append(row("micro", report.micro))
    lines.append(
        f"LEAK COUNT: {report.leaks} "
        f"(structured types: {report.structured_leaks}, PERSON: {report.per_type['PERSON'].leaks})"
    )
    leaking = [f"{k}={s.leaks}" for k, s in report.per_type.items() if s.leaks]
    if leaking:
        lines.append("leaks per type: " + ", ".join(leaking))
    return "\n".join(lines)


def format_errors(report: Report, width: int = 40) -> str:
    """List false negatives, false positives and leaks with some context around each."""
    lines: list[str] = []
    for kind in ("FN", "FP", "LEAK"):
        errors = [error for error in report.errors if error.kind == kind]
        lines.append(f"== {kind} ({len(errors)})")
        for error in sorted(errors, key=lambda e: (e.type, e.record_id, e.start)):
            before = error.text[max(0, error.start - width) : error.start]
            span = error.text[error.start : error.end]
            after = error.text[error.end : error.end + width]
            shown = f"{before}[{span}]{after}".replace("\n", "⏎")
            lines.append(f"{error.record_id} {error.type:<13} {span!r:<32} …{shown}…")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the evaluation table (and, if asked, the errors) for the labelled set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-errors", action="store_true", help="list FN, FP and leaks")
    parser.add_argument("--lang", choices=("de", "en"), help="only messages in this language")
    parser.add_argument("--data", type=Path, default=DATA, help="labelled JSONL file")
    args = parser.parse_args(argv)
    records = [r for r in load(args.data) if args.lang in (None, r.lang)]
    report = evaluate(records)
    print(format_report(report))
    if args.show_errors:
        print()
        print(format_errors(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
