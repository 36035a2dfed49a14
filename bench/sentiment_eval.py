"""Sentiment quality on the project's labelled customer messages, per split and language.

    .venv/bin/python bench/sentiment_eval.py            # test split and all messages
    .venv/bin/python bench/sentiment_eval.py --dev --errors   # for tuning: dev split only

Thresholds and lexicon supplements are tuned on the dev split; the test split is the figure
to quote.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anonymizer.enrich import language
from anonymizer.sentiment import sentiment

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "sentiment_source.tsv"
LABELS = ("positive", "neutral", "negative")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message."""

    id: int
    lang: str
    label: str
    split: str
    text: str


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Precision, recall, F1 and support of one label."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Report:
    """Accuracy, macro-F1 and per-class scores over some examples."""

    n: int
    accuracy: float
    macro_f1: float
    majority_accuracy: float
    majority_macro_f1: float
    per_class: dict[str, ClassScore]


def load(path: Path = DATA) -> list[Example]:
    """The labelled messages, in file order."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows = [line.split("\t") for line in lines if not line.startswith("#")][1:]
    return [Example(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def score(gold: Sequence[str], predicted: Sequence[str]) -> Report:
    """Accuracy, macro-F1 and per-class figures, with a majority-class baseline."""
    per_class: dict[str, ClassScore] = {}
    for label in LABELS:
        hits = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        claimed = sum(1 for p in predicted if p == label)
        support = sum(1 for g in gold if g == label)
        precision = hits / claimed if claimed else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = ClassScore(precision, recall, f1, support)
    majority = Counter(gold).most_common(1)[0][0]
    share = sum(1 for g in gold if g == majority) / len(gold)
    return Report(
        n=len(gold),
        accuracy=sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / len(gold),
        macro_f1=sum(c.f1 for c in per_class.values()) / len(LABELS),
        majority_accuracy=share,
        # F1 of the majority class is 2s/(1+s); the other two classes score 0.
        majority_macro_f1=(2 * share / (1 + share)) / len(LABELS),
        per_class=per_class,
    )


def evaluate(split: str | None = "test", lang: str | None = None) -> Report:
    """Score the classifier on a split ('dev', 'test' or None for all) and language."""
    examples = [
        e
        for e in load()
        if (split is None or e.split == split) and (lang is None or e.lang == lang)
    ]
    predicted = [sentiment(e.text, language(e.text)).label for e in examples]
    return score([e.label for e in examples], predicted)


def _print(title: str, report: Report) -> None:
    print(
        f"{title:<12} n={report.n:<4} accuracy={report.accuracy:.3f} "
        f"macro-F1={report.macro_f1:.3f}   (majority baseline: accuracy="
        f"{report.majority_accuracy:.3f} macro-F1={report.majority_macro_f1:.3f})"
    )
    for label, c in report.per_class.items():
        print(
            f"{'':<12} {label:<9} P={c.precision:.3f} R={c.recall:.3f} F1={c.f1:.3f} n={c.support}"
        )


def main() -> None:
    """Print the figures; with --dev --errors, list dev mistakes for tuning."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dev", action="store_true", help="report the dev split instead")
    parser.add_argument("--errors", action="store_true", help="list mistakes (dev only)")
    args = parser.parse_args()
    splits: tuple[str | None, ...] = ("dev",) if args.dev else ("test", None)
    for split in splits:
        for lang in (None, "de", "en"):
            _print(f"{split or 'all'}/{lang or 'both'}", evaluate(split, lang))
        print()
    if args.dev and args.errors:
        for e in load():
            if e.split != "dev":
                continue
            result = sentiment(e.text, language(e.text))
            if result.label != e.label:
                print(f"{e.id:>4} {e.label:<8} -> {result.label:<8} {result.score:+.2f} {e.text}")


if __name__ == "__main__":
    main()
