"""Enrichment of redacted text: language, sentiment, topics and hashtags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from anonymizer.sentiment import Sentiment, sentiment
from anonymizer.topics import DEFAULT, Taxonomy

SUPPORTED_LANGUAGES = ("de", "en")

_WORD = re.compile(r"\w+", re.UNICODE)
# "#123456" is an order number, not a hashtag; "&#39;" is an HTML entity.
_HASHTAG = re.compile(r"(?<![\w&#])#(\w+)")
# Function words that are frequent in one language and rare or absent in the other; words both
# share ("in", "was", "will", "also", "an") are left out on purpose.
_GERMAN = frozenset(
    """der die das und ist nicht ich mein meine meinen mir mich ein eine einen einem auf mit
    für von zu wie wann warum bei ihr euch euer eure wir sie es habe hab hat sind noch schon
    auch aber oder kein keine keinen wird kann nach seit bitte danke den dem des sich bin
    bis jetzt wieder nur mal""".split()
)
_ENGLISH = frozenset(
    """the and is not my me with for of to how what when why at you your we they it have
    has are still already but or no can after since please thanks thank this that been
    just do does did i get got from""".split()
)


@dataclass(frozen=True, slots=True)
class Enrichment:
    """What the research store learns about a redacted message besides its text."""

    language: str
    sentiment: Sentiment
    topics: list[str]
    hashtags: list[str]


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED_LANGUAGES))
    return identifier


def language(text: str) -> str:
    """Tell German from English; 'und' where the text has too few words to say."""
    words = _WORD.findall(text.lower())
    if len(words) < 2:
        return "und"
    # Counting function words is ten times faster than py3langid's byte n-grams and settles
    # the clear cases; the model decides the rest.
    german = sum(1 for word in words if word in _GERMAN)
    english = sum(1 for word in words if word in _ENGLISH)
    if german >= 2 and german >= 3 * english:
        return "de"
    if english >= 2 and english >= 3 * german:
        return "en"
    code, _probability = _identifier().classify(text)
    return str(code)


def hashtags(text: str) -> list[str]:
    """Lowercased hashtags without '#', in order of appearance, order numbers left out."""
    found = (tag.lower() for tag in _HASHTAG.findall(text))
    return list(dict.fromkeys(tag for tag in found if not tag.isdigit()))


def topics(text: str, *, taxonomy: Taxonomy = DEFAULT) -> list[str]:
    """Name the taxonomy topics whose rules hold for the text."""
    return taxonomy.topics(text)


def enrich(text: str, *, taxonomy: Taxonomy = DEFAULT) -> Enrichment:
    """Language, sentiment, topics and hashtags of one redacted message."""
    detected = language(text)
    return Enrichment(
        language=detected,
        sentiment=sentiment(text, detected),
        topics=taxonomy.topics(text),
        hashtags=hashtags(text),
    )
