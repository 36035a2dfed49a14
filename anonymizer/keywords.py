"""Keywords of redacted texts for the trend reports: content words without stop words.

Placeholders (``<PERSON>``), hashtags, handles, URLs and anything with a digit are dropped
before words are taken, so a keyword is never part of a redaction, a tag or a number.
Keywords may still be names the detectors missed; the reports therefore list only keywords
used by at least k distinct authors, like hashtags.
"""

from __future__ import annotations

import re

from anonymizer.stopwords import STOP_WORDS

KEYWORD_LENGTH = 200
MIN_LENGTH = 3
# Removed before words are split: placeholders, URLs, hashtags and @handles.
_NOISE = re.compile(
    r"<[A-Z][A-Z0-9_]*>|\[[A-Z][A-Z0-9_]*\]|\b(?:https?://|www\.)\S+|[#@][\w.]+",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+(?:[-'’]\w+)*")


def keywords_of(text: str) -> set[str]:
    """The distinct keywords of one redacted text, lower-cased."""
    found: set[str] = set()
    for match in _WORD.finditer(_NOISE.sub(" ", text)):
        word = match.group().lower()
        letters = re.sub(r"[-'’]", "", word)
        if len(letters) < MIN_LENGTH or not letters.isalpha() or word in STOP_WORDS:
            continue
        found.add(word[:KEYWORD_LENGTH])
    return found
