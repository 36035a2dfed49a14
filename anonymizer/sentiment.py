"""Lexicon-based sentiment for German and English customer messages, offline."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

Label = Literal["positive", "neutral", "negative"]

# Tuned on the dev split of tests/data/sentiment_source.tsv only (see docs/sentiment.md).
POSITIVE_FROM = 0.25
NEGATIVE_FROM = -0.15
# Squashes the summed valence into (-1, 1) the way VADER does; larger means flatter.
ALPHA = 1.0

# VADER's empirically chosen factor: a negated word keeps most of its strength, flipped.
NEGATION_FACTOR = -0.74
BOOST = 1.3
DAMPEN = 0.6
CAPS_BOOST = 1.25
ELONGATION_BOOST = 1.15
EXCLAMATION_STEP = 0.075
# Text after "but"/"aber" carries the writer's conclusion, text before it is the concession.
BEFORE_CONTRAST, AFTER_CONTRAST = 0.5, 1.5
NEGATION_WINDOW = 3

NEGATORS = frozenset(
    """nicht kein keine keinen keiner keinem keines nie niemals nichts ohne weder nirgends
    not no never nothing without nor neither none cannot dont cant wont didnt doesnt isnt
    wasnt arent werent havent hasnt couldnt shouldnt wouldnt aint""".split()
)
BOOSTERS = frozenset(
    """sehr total echt mega so richtig wirklich extrem absolut völlig komplett voll besonders
    unglaublich super really very extremely absolutely totally completely incredibly truly
    super so such utterly""".split()
)
DAMPENERS = frozenset(
    """etwas bisschen eher relativ einigermaßen halbwegs ganz slightly somewhat kinda fairly
    bit partly""".split()
)
CONTRASTS = frozenset("aber jedoch allerdings but however".split())
# Suffixes tried longest first so "freundlichen" reaches "freundlich" before "freundliche".
# Superlatives ("schlechtester") first, then case and plural endings.
GERMAN_SUFFIXES = (
    "esten",
    "ester",
    "estem",
    "estes",
    "este",
    "sten",
    "ster",
    "stem",
    "stes",
    "ste",
    "en",
    "em",
    "er",
    "es",
    "st",
    "e",
    "n",
    "s",
)
# Customers' questions ("Kann ich per PayPal bezahlen?") mention loaded words in passing.
QUESTION_FACTOR = 0.5

_URL = re.compile(r"https?://\S+|www\.\S+")
# Applied to lowercased text; alternatives return whole matches so findall yields strings.
_TOKEN = re.compile(
    r"[^\W\d_]+(?:['’][^\W\d_]+)*"
    r"|[:;=][-'^o]?[()\[\]dp/|\\*]|<3"
    r"|[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u2B55]"
    r"|[!.?,;:()\-–]"
)
_CAPS = re.compile(r"\b[A-ZÄÖÜ]{2,}\b")
_LETTERS = re.compile(r"\b[^\W\d_]{2,}\b")
_BOUNDARIES = frozenset(".?,;:()-–")
_ENDS = _BOUNDARIES | {"!"}
_ELONGATED = re.compile(r"(\w)\1{2,}")


@dataclass(frozen=True, slots=True)
class Sentiment:
    """A polarity label and a score in [-1, 1]."""

    label: Label
    score: float


@dataclass(slots=True)
class _Lexicon:
    words: dict[str, float]
    phrases: dict[tuple[str, ...], float]
    # Most tokens start no phrase; checking the first word spares building tuples for them.
    phrase_starts: frozenset[str]
    german: bool
    memo: dict[str, float | None]

    def lookup(self, word: str) -> float | None:
        """Valence of one lowercase word, trying German inflection and compound heads."""
        if word in self.memo:
            return self.memo[word]
        found = self._find(word)
        if found is None and _ELONGATED.search(word):
            # "suuuper", "sooo": try the doubled and the single letter.
            found = self._find(_ELONGATED.sub(r"\1\1", word))
            if found is None:
                found = self._find(_ELONGATED.sub(r"\1", word))
        if len(self.memo) < 50_000:
            self.memo[word] = found
        return found

    def _find(self, word: str) -> float | None:
        value = self.words.get(word)
        if value is not None or not self.german:
            return value
        value = self._stem(word)
        if value is not None or len(word) < 8:
            return value
        # German compounds carry their meaning in the head: "Lieferverspätung" -> "verspätung".
        for start in range(3, len(word) - 3):
            head = word[start:]
            value = self.words.get(head)
            if value is None:
                value = self._stem(head)
            if value is not None:
                return value
        return None

    def _stem(self, word: str) -> float | None:
        for suffix in GERMAN_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                stem = word[: -len(suffix)]
                value = self.words.get(stem)
                if value is None:
                    value = self.words.get(stem + "en")
                if value is not None:
                    return value
        return None


def _read_table(name: str) -> Iterator[list[str]]:
    """Rows of a bundled TSV file, without its comment header and column names."""
    text = files("anonymizer").joinpath("data", name).read_text(encoding="utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    next(rows)
    yield from rows


@cache
def _lexicon(language: str) -> _Lexicon:
    """The merged lexicon for one language ('und' gets both), built once."""
    words: dict[str, float] = {}
    sources = {"de": ("de",), "en": ("en",)}.get(language, ("de", "en"))
    for source in sources:
        for term, value in _read_table(f"sentiment_{source}.tsv"):
            words[term] = float(value)
    # Negators and intensifiers act on their neighbours; their own lexicon valence ("no" is
    # negative in VADER, "wirklich" positive in the German lexicon) would count them twice.
    for word in NEGATORS | BOOSTERS | DAMPENERS:
        words.pop(word, None)
    phrases: dict[tuple[str, ...], float] = {}
    for lang, term, value in _read_table("sentiment_domain.tsv"):
        if lang != "*" and lang not in sources:
            continue
        key = term.lower()
        if " " in key:
            phrases[tuple(key.split())] = float(value)
        else:
            # Emoji lookups use the first code point, dropping variation selectors and joins.
            words[key if key[0].isascii() or key[0].isalpha() else key[0]] = float(value)
    starts = frozenset(phrase[0] for phrase in phrases)
    return _Lexicon(words, phrases, starts, german="de" in sources, memo={})


def _tokens(text: str) -> list[str]:
    """Lowercase words, emoji, emoticons, '!' and clause punctuation; URLs dropped."""
    if "http" in text or "www." in text:
        text = _URL.sub(" ", text)
    return _TOKEN.findall(text.lower())


def _is_word(token: str) -> bool:
    return token[0].isalpha()


def _modifier(tokens: list[str], index: int, lexicon: _Lexicon) -> float:
    """Scale for negators, boosters and dampeners shortly before the token at index."""
    factor = 1.0
    for distance in range(1, NEGATION_WINDOW + 1):
        position = index - distance
        if position < 0 or tokens[position] in _BOUNDARIES:
            break
        word = tokens[position]
        if word in NEGATORS or word.endswith(("n't", "n’t")):
            factor *= NEGATION_FACTOR
        elif distance <= 2 and word in BOOSTERS:
            factor *= BOOST if distance == 1 else (1 + (BOOST - 1) / 2)
        elif distance <= 2 and word in DAMPENERS:
            factor *= DAMPEN
    if factor > 0 and lexicon.german:
        # German puts "nicht" after the verb: "gefällt mir nicht." negates the clause end.
        for position in range(index + 1, min(index + 4, len(tokens))):
            following = tokens[position]
            if following in _BOUNDARIES:
                break
            if following == "nicht" and (
                position + 1 == len(tokens) or tokens[position + 1] in _ENDS
            ):
                factor *= NEGATION_FACTOR
                break
    return factor


def polarity(text: str, language: str = "und") -> float:
    """A score in [-1, 1]: negative below zero, positive above."""
    lexicon = _lexicon(language if language in ("de", "en") else "und")
    tokens = _tokens(text)
    shouted = _shouted(text)
    contrast = -1
    for index, token in enumerate(tokens):
        if token in CONTRASTS:
            contrast = index
    in_question = _question_flags(tokens) if "?" in text else None
    total = 0.0
    skip_until = 0
    for index, token in enumerate(tokens):
        if index < skip_until:
            continue
        value = None
        if token in lexicon.phrase_starts:
            value, width = _phrase(tokens, index, lexicon)
        if value is not None:
            # Phrases carry their own negation ("funktioniert nicht"); only boosters apply.
            value *= abs(_modifier(tokens, index, lexicon))
            skip_until = index + width
        else:
            value = lexicon.lookup(token)
            if not value:
                continue
            if token in BOOSTERS and index + 1 < len(tokens) and lexicon.lookup(tokens[index + 1]):
                # "mega schnell": the booster strengthens its neighbour instead of counting.
                continue
            if _is_word(token):
                value *= _modifier(tokens, index, lexicon)
                if token in shouted:
                    value *= CAPS_BOOST
                if _ELONGATED.search(token):
                    value *= ELONGATION_BOOST
        if in_question is not None and in_question[index]:
            value *= QUESTION_FACTOR
        if contrast >= 0:
            value *= BEFORE_CONTRAST if index < contrast else AFTER_CONTRAST
        total += value
    if total:
        bangs = min(text.count("!"), 4)
        total += math.copysign(EXCLAMATION_STEP * bangs, total)
    return total / math.sqrt(total * total + ALPHA)


def _shouted(text: str) -> frozenset[str]:
    """Lowercased words written in capitals, unless the whole text is (then caps mean nothing)."""
    shouted = _CAPS.findall(text)
    if not shouted or len(shouted) == len(_LETTERS.findall(text)):
        return frozenset()
    return frozenset(word.lower() for word in shouted)


def _question_flags(tokens: list[str]) -> list[bool]:
    """Per token, whether its sentence ends in a question mark."""
    flags = [False] * len(tokens)
    question = False
    for index in range(len(tokens) - 1, -1, -1):
        mark = tokens[index]
        if mark in ("!", "."):
            question = False
        elif mark == "?":
            question = True
        flags[index] = question
    return flags


def _phrase(tokens: list[str], index: int, lexicon: _Lexicon) -> tuple[float | None, int]:
    """The valence and width of a domain phrase starting at index, if any."""
    for width in (3, 2):
        if index + width <= len(tokens):
            key = tuple(tokens[index : index + width])
            if key in lexicon.phrases:
                return lexicon.phrases[key], width
    return None, 0


def label_for(score: float) -> Label:
    """The label a score falls into, using the tuned neutral band."""
    if score >= POSITIVE_FROM:
        return "positive"
    if score <= NEGATIVE_FROM:
        return "negative"
    return "neutral"


def sentiment(text: str, language: str = "und") -> Sentiment:
    """Label and score one message; language is 'de', 'en' or 'und' (both lexicons)."""
    score = round(polarity(text, language), 4)
    return Sentiment(label_for(score), score)
