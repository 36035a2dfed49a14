"""Throughput of ``anonymizer.anonymize_text`` on typical ~280-character posts.

    .venv/bin/python bench/anonymizer_speed.py                 # ~10 s per engine
    .venv/bin/python bench/anonymizer_speed.py --seconds 20 --rounds 10 --no-presidio

The corpus is built from the labelled messages (``tests/data/pii_labelled.jsonl``): each post
starts at one message and appends the following ones until it reaches about 280 characters,
cut at a word boundary; digits are then changed at random (so numbers differ from post to
post) and some posts are lower-cased. One process, one message at a time, each with the
known names and kept handles of the message it starts with; a warm-up pass precedes a timed
loop over the corpus lasting at least ``--seconds``, split into ``--rounds`` rounds. The
figure printed is the median round, with the slowest and fastest: other processes on the
machine only ever slow a round down.

Comparison with Presidio: if ``presidio_analyzer`` is importable (enable it with
``pip install presidio-analyzer spacy``; it is no dependency of the project), the same run
also times Presidio's pattern-based analysis on the same posts and prints its scores on the
labelled set next to ours. Presidio gets an ``AnalyzerEngine`` whose registry holds only its
predefined pattern recognizers (the spaCy NER recognizer is dropped; the credit-card one is
added for German too, since Presidio ships it for English only), asked only for the types that
map to ours: EMAIL_ADDRESS→EMAIL, PHONE_NUMBER→PHONE, IBAN_CODE→IBAN, CREDIT_CARD, IP_ADDRESS,
URL; it has no PERSON without an NER model. Its NLP engine is ``spacy.blank("de")`` /
``spacy.blank("en")`` saved to a temporary directory and loaded as the model path, so nothing
is downloaded. ``tldextract`` (used by Presidio's e-mail check) would otherwise try to fetch the
public suffix list at first use; it is pointed at its bundled snapshot instead. Where
Presidio's spans overlap each other, the higher-scoring (then longer) one is kept, as an
anonymizer would.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_eval import ENTITY_TYPES, Record, Report, evaluate, load  # noqa: E402

from anonymizer import Entity, anonymize_text  # noqa: E402

POST_LENGTH = 280
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CREDIT_CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "URL": "URL",
}
LANGUAGES = ("de", "en")


@dataclass(frozen=True, slots=True)
class Post:
    """One benchmark post with the context the inbox would pass along."""

    text: str
    lang: str
    known_names: tuple[str, ...]
    keep_handles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Throughput:
    """Messages processed in a timed loop."""

    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds

    @property
    def micros_per_message(self) -> float:
        """Microseconds per message."""
        return 1e6 * self.seconds / self.messages


def build_corpus(records: Sequence[Record], size: int, seed: int = 280) -> list[Post]:
    """Return ``size`` posts of about 280 characters made from the labelled messages."""
    rng = random.Random(seed)
    posts: list[Post] = []
    for index in range(size):
        first = records[index % len(records)]
        text = first.text
        step = 1
        while len(text) < POST_LENGTH:
            text += " " + records[(index + step) % len(records)].text
            step += 1
        cut = text.rfind(" ", 0, POST_LENGTH + 1)
        text = text[: cut if cut > POST_LENGTH // 2 else POST_LENGTH]
        text = re.sub(r"\d", lambda m: str(rng.randrange(10)) if rng.random() < 0.3 else m[0], text)
        if rng.random() < 0.2:
            text = text.lower()
        posts.append(Post(text, first.lang, first.known_names, first.keep_handles))
    return posts


def measure(
    run: Callable[[Post], object], posts: Sequence[Post], seconds: float, rounds: int
) -> list[Throughput]:
    """Warm up on a few posts, then cycle through the corpus in ``rounds`` timed rounds.

    Other processes on the machine only ever slow a round down, so the rounds' median is
    the figure to report and their spread shows how busy the machine was.
    """
    for post in posts[:200]:
        run(post)
    done = 0
    results: list[Throughput] = []
    for _ in range(rounds):
        counted = 0
        started = time.perf_counter()
        elapsed = 0.0
        while elapsed < seconds / rounds:
            # The clock is read once per chunk so that reading it costs nothing measurable.
            for post in posts[done % len(posts) :][:50]:
                run(post)
                done += 1
                counted += 1
            elapsed = time.perf_counter() - started
        results.append(Throughput(counted, elapsed))
    return results


def report(name: str, results: Sequence[Throughput]) -> Throughput:
    """Print the median round of ``results`` with the spread of all rounds; return the median."""
    ordered = sorted(results, key=lambda r: r.per_second)
    median = ordered[len(ordered) // 2]
    messages = sum(r.messages for r in results)
    seconds = sum(r.seconds for r in results)
    print(
        f"{name:<26}: {median.per_second:>9,.0f} msgs/s {median.micros_per_message:>9,.1f} µs/msg"
        f" (median of {len(results)} rounds; slowest {ordered[0].per_second:,.0f},"
        f" fastest {ordered[-1].per_second:,.0f}; {messages} msgs in {seconds:.1f} s)"
    )
    return median


def run_anonymizer(post: Post) -> object:
    """Anonymize one post the way the inbox does."""
    return anonymize_text(post.text, keep_handles=post.keep_handles, known_names=post.known_names)


class PresidioUnavailable(RuntimeError):
    """Why the Presidio comparison cannot run here."""


class Presidio:
    """Presidio's pattern recognizers, offline, mapped to our entity types."""

    def __init__(self) -> None:
        if importlib.util.find_spec("presidio_analyzer") is None:
            raise PresidioUnavailable(
                "presidio_analyzer is not importable; enable the comparison with "
                "`pip install presidio-analyzer spacy`"
            )
        try:
            self._engine = self._build()
        except Exception as error:  # any failure here only disables the comparison
            raise PresidioUnavailable(
                f"Presidio could not be set up offline: {type(error).__name__}: {error}"
            ) from error

    @staticmethod
    def _build() -> Any:
        """Build an AnalyzerEngine from blank spaCy pipelines and pattern recognizers."""
        import spacy
        import tldextract.tldextract
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, SpacyRecognizer

        # The default extractor downloads the public suffix list on first use.
        tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
        model_dir = Path(tempfile.mkdtemp(prefix="presidio-blank-"))
        models = []
        for lang in LANGUAGES:
            spacy.blank(lang).to_disk(model_dir / lang)
            models.append({"lang_code": lang, "model_name": str(model_dir / lang)})
        nlp_engine = NlpEngineProvider(
            nlp_configuration={"nlp_engine_name": "spacy", "models": models}
        ).create_engine()
        registry = RecognizerRegistry(supported_languages=list(LANGUAGES))
        registry.load_predefined_recognizers(languages=list(LANGUAGES), nlp_engine=nlp_engine)
        registry.recognizers = [
            r for r in registry.recognizers if not isinstance(r, SpacyRecognizer)
        ]
        have_card = {
            r.supported_language
            for r in registry.recognizers
            if isinstance(r, CreditCardRecognizer)
        }
        for lang in LANGUAGES:
            if lang not in have_card:
                registry.add_recognizer(CreditCardRecognizer(supported_language=lang))
        return AnalyzerEngine(
            registry=registry, nlp_engine=nlp_engine, supported_languages=list(LANGUAGES)
        )

    def analyze(self, text: str, lang: str) -> list[Entity]:
        """Return non-overlapping entities of our types found by Presidio."""
        results = self._engine.analyze(text=text, language=lang, entities=list(PRESIDIO_TYPES))
        ranked = sorted(results, key=lambda r: (-r.score, r.start - r.end, r.start))
        chosen: list[Entity] = []
        for result in ranked:
            if all(result.end <= c.start or c.end <= result.start for c in chosen):
                chosen.append(Entity(PRESIDIO_TYPES[result.entity_type], result.start, result.end))
        return sorted(chosen, key=lambda e: e.start)


def format_side_by_side(ours: Report, theirs: Report) -> str:
    """Render per-type precision, recall and F1 of both engines next to each other."""
    lines = [
        f"{'':<14}{'anonymizer':^24}  {'presidio (patterns)':^24}",
        f"{'type':<14}{'prec':>8}{'rec':>8}{'f1':>8}  {'prec':>8}{'rec':>8}{'f1':>8}{'support':>9}",
    ]
    for kind in (*ENTITY_TYPES, "micro"):
        a = ours.micro if kind == "micro" else ours.per_type[kind]
        b = theirs.micro if kind == "micro" else theirs.per_type[kind]
        lines.append(
            f"{kind:<14}{a.precision:>8.3f}{a.recall:>8.3f}{a.f1:>8.3f}  "
            f"{b.precision:>8.3f}{b.recall:>8.3f}{b.f1:>8.3f}{a.support:>9}"
        )
    lines.append(
        f"{'LEAK COUNT':<14}{ours.leaks:>24}  {theirs.leaks:>24}"
        f"   (structured: {ours.structured_leaks} vs {theirs.structured_leaks})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Time the anonymizer (and Presidio, when installed) and print both throughputs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed run per engine")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the run is split into")
    parser.add_argument("--posts", type=int, default=3000, help="corpus size")
    parser.add_argument("--no-presidio", action="store_true", help="skip the comparison")
    args = parser.parse_args(argv)

    records = load()
    posts = build_corpus(records, args.posts)
    timing = (args.seconds, max(1, args.rounds))
    mean = sum(len(post.text) for post in posts) / len(posts)
    print(
        f"corpus: {len(posts)} posts, mean {mean:.0f} chars, max {max(len(p.text) for p in posts)}"
        f" | Python {platform.python_version()} on {platform.machine()}, one process"
    )
    ours = report("anonymizer.anonymize_text", measure(run_anonymizer, posts, *timing))
    if args.no_presidio:
        return 0
    try:
        presidio = Presidio()
    except PresidioUnavailable as reason:
        print(f"Presidio comparison skipped: {reason}")
        return 0
    theirs = report(
        "presidio AnalyzerEngine",
        measure(lambda post: presidio.analyze(post.text, post.lang), posts, *timing),
    )
    print(f"speed ratio: anonymizer is {ours.per_second / theirs.per_second:.1f}x Presidio")
    print()
    print(f"scores on the labelled set ({len(records)} messages, matching rule: bench/pii_eval.py)")
    ours_report = evaluate(records)
    theirs_report = evaluate(
        records, detect=lambda r: presidio.analyze(r.text, r.lang), anonymize=None
    )
    print(format_side_by_side(ours_report, theirs_report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
