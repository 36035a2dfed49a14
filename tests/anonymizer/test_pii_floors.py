"""The quality floors for personal-data detection, measured on the labelled message set.

The scores come from ``bench/pii_eval.py`` (its matching rule is documented there) on
``tests/data/pii_labelled.jsonl``; the data tests make sure that file is a faithful, current
build of ``tests/data/pii_source.txt`` and large enough for the floors to mean something.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

STRUCTURED_RECALL_FLOOR = 0.98
PERSON_RECALL_FLOOR = 0.90
PRECISION_FLOOR = 0.90
MIN_MESSAGES = 400
MIN_STRUCTURED_SPANS = 25
MIN_PERSON_SPANS = 80

# Look-alikes the detectors must leave alone; the set has to keep offering them.
HARD_NEGATIVES = (
    "ICE 578",
    "Gleis 7",
    "RE 5",
    "49,99 €",
    "€12.50",
    "14:30",
    "12.03.2024",
    "iPhone 15",
    "Galaxy S23",
    "Tarif Mobil M",
    "in Köln",
    "in der Hauptstraße",
    "2.4.1",
    "20%",
    "3 Pakete",
    "LH 1234",
)


def _load(name: str, path: Path) -> ModuleType:
    """Import a script that is not part of an installed package."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


pii_eval = _load("bench_pii_eval", ROOT / "bench" / "pii_eval.py")
build = _load("build_pii_set", ROOT / "tests" / "data" / "build_pii_set.py")


@pytest.fixture(scope="module")
def records() -> list[Any]:
    """The labelled messages as the evaluation reads them."""
    loaded: list[Any] = pii_eval.load()
    return loaded


@pytest.fixture(scope="module")
def report(records: list[Any]) -> Any:
    """The evaluation of the project's anonymizer on the labelled messages."""
    return pii_eval.evaluate(records)


# ------------------------------------------------------------------------------ the data


def test_labelled_jsonl_is_the_current_build_of_the_source() -> None:
    rebuilt = build.render_jsonl(build.build_records())
    current = (ROOT / "tests" / "data" / "pii_labelled.jsonl").read_text(encoding="utf-8")
    assert current == rebuilt, "run: .venv/bin/python tests/data/build_pii_set.py"


def test_set_is_large_enough_for_every_type(records: list[Any]) -> None:
    counts = dict.fromkeys(pii_eval.ENTITY_TYPES, 0)
    for record in records:
        for span in record.entities:
            counts[span.type] += 1
    assert len(records) >= MIN_MESSAGES
    assert counts["PERSON"] >= MIN_PERSON_SPANS
    short = {k: n for k, n in counts.items() if k != "PERSON" and n < MIN_STRUCTURED_SPANS}
    assert not short, f"types below {MIN_STRUCTURED_SPANS} examples: {short}"


def test_set_is_mostly_german_with_a_large_english_share(records: list[Any]) -> None:
    german = sum(record.lang == "de" for record in records) / len(records)
    assert 0.55 <= german <= 0.75


def test_every_span_is_exact_and_checksum_valid(records: list[Any]) -> None:
    for record in records:
        previous_end = 0
        for span in record.entities:
            assert record.text[span.start : span.end] == span.value, record.id
            assert span.start >= previous_end, f"{record.id}: overlapping spans"
            previous_end = span.end
            if span.type == "IBAN":
                assert build.iban_valid(span.value), record.id
            if span.type == "CREDIT_CARD":
                assert build.luhn_valid(span.value), record.id


def test_hard_negatives_are_present_and_unlabelled(records: list[Any]) -> None:
    for phrase in HARD_NEGATIVES:
        unlabelled = [
            record
            for record in records
            if (at := record.text.find(phrase)) >= 0
            and not any(s.start < at + len(phrase) and at < s.end for s in record.entities)
        ]
        assert unlabelled, f"no unlabelled example of {phrase!r}"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("Hallo [[PERSON|Jana]]", "metadata"),
        ("{lang=fr} Bonjour", "lang"),
        ("{lang=de colour=red} Hallo", "unknown metadata key"),
        ("{lang=de} Hallo [[PERSN|Jana]]", "unknown entity type"),
        ("{lang=de} Hallo [[PERSON|Jana]", "markup"),
        ("{lang=de} Hallo [[PERSON| Jana]]", "whitespace"),
        ("{lang=de} IBAN [[IBAN|DE00 1234 5678 9012 3456 78]]", "IBAN"),
        ("{lang=de} Karte [[CREDIT_CARD|4111 1111 1111 1112]]", "Luhn"),
        ("{lang=de} Mail [[EMAIL|jana@gmail.com]]", "example domains"),
        ("{lang=de} [[HANDLE|@quendelmarkt_hilft]] hallo", "ours"),
    ],
)
def test_builder_refuses_malformed_lines(line: str, problem: str) -> None:
    with pytest.raises(build.SourceError, match=problem):
        build.parse_line(1, line, 1)


def test_builder_turns_markup_into_offsets() -> None:
    record = build.parse_line(
        1, '{lang=de author_name="Jana M"} Gruß\\n[[PERSON|Jana]], [[PHONE|0171 2345678]]', 7
    )
    assert record["text"] == "Gruß\nJana, 0171 2345678"
    assert record["id"] == "m0007"
    assert record["keep_handles"] == ["@quendelmarkt_hilft"]
    assert [(e["type"], e["start"], e["end"]) for e in record["entities"]] == [
        ("PERSON", 5, 9),
        ("PHONE", 11, 23),
    ]


# ---------------------------------------------------------------------------- the floors


@pytest.mark.parametrize("kind", pii_eval.STRUCTURED_TYPES)
def test_structured_type_recall_floor(report: Any, kind: str) -> None:
    score = report.per_type[kind]
    assert score.recall >= STRUCTURED_RECALL_FLOOR, (
        f"{kind}: recall {score.recall:.3f} ({score.fn} of {score.support} missed)"
    )


def test_person_recall_floor(report: Any) -> None:
    score = report.per_type["PERSON"]
    assert score.recall >= PERSON_RECALL_FLOOR, (
        f"PERSON: recall {score.recall:.3f} ({score.fn} of {score.support} missed)"
    )


def test_overall_precision_floor(report: Any) -> None:
    assert report.micro.precision >= PRECISION_FLOOR, (
        f"micro precision {report.micro.precision:.3f} ({report.micro.fp} false positives)"
    )


@pytest.mark.parametrize("kind", pii_eval.STRUCTURED_TYPES)
def test_no_structured_value_leaks(report: Any, kind: str) -> None:
    leaked = [e for e in report.errors if e.kind == "LEAK" and e.type == kind]
    values = [e.text[e.start : e.end] for e in leaked]
    assert not leaked, f"{kind}: {len(leaked)} values readable after anonymization: {values}"
