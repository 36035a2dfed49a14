"""Search text: the words of a query as the index sees them, and safely highlighted snippets."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, literal_column

WORD = re.compile(r"[^\W_]+")
# Inflection endings the German stemmer drops, for marking "Pakete" when "Paket" matched.
_ENDINGS = ("ern", "em", "en", "er", "es", "e", "s")
_SNIPPET = 240


@dataclass(frozen=True, slots=True)
class Term:
    """One word as typed, split the way the index splits it ("e-mail": e, mail)."""

    tokens: tuple[str, ...]
    prefix: bool
    # The word as typed when it holds punctuation ("QM-22414555"), else "".
    typed: str = ""


def fts5_query(terms: Iterable[Term]) -> str:
    """An FTS5 query that ANDs the terms, each a quoted string, so user syntax stays text."""
    quoted = []
    for term in terms:
        string = '"' + " ".join(term.tokens).replace('"', '""') + '"'
        quoted.append(string + ("*" if term.prefix else ""))
    return " AND ".join(quoted)


def tsquery(terms: tuple[Term, ...]) -> Any:
    """Words as quoted websearch phrases, prefixes as `:*` lexemes; tokens are alphanumeric."""
    # The configuration is written out, not bound, so the planner can use the expression index.
    german: Any = literal_column("'german'")
    # Either the word's tokens or, where it holds punctuation, the word as the parser reads it.
    alternatives = [
        func.websearch_to_tsquery(german, '"' + " ".join(term.tokens) + '"').op("||")(
            func.websearch_to_tsquery(german, '"' + term.typed + '"')
        )
        for term in terms
        if term.typed and not term.prefix
    ]
    plain = " ".join(
        '"' + " ".join(term.tokens) + '"' for term in terms if not term.prefix and not term.typed
    )
    prefixed = " & ".join(
        "(" + " <-> ".join(f"'{token}'" for token in term.tokens) + ":*)"
        for term in terms
        if term.prefix
    )
    parts: list[Any] = [func.websearch_to_tsquery(german, plain)] if plain else []
    parts += [alternative.self_group() for alternative in alternatives]
    if prefixed:
        parts.append(func.to_tsquery(german, prefixed))
    combined: Any = parts[0]
    for part in parts[1:]:
        combined = combined.op("&&")(part)
    return combined


def trigram_phrase(needle: str) -> str:
    """An FTS5 string that a trigram index matches wherever needle occurs, case ignored."""
    return '"' + needle.replace('"', '""') + '"'


@lru_cache(maxsize=8192)
def fold(word: str) -> str:
    """A word as the index compares it: case and diacritics gone (ä → a, ß → ss)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _stem(word: str) -> str:
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def highlight(text: str, terms: Iterable[Term], *, stemmed: bool = False) -> Markup:
    """A snippet of text around the first match, escaped, with each matched word in <mark>."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for term in terms:
        words = [fold(token) for token in term.tokens]
        exact.update(_stem(w) if stemmed else w for w in words)
        if term.prefix:
            prefixes.append(_stem(words[-1]) if stemmed else words[-1])
    spans = []
    for found in WORD.finditer(text):
        word = fold(found.group())
        key = _stem(word) if stemmed else word
        if key in exact or any(word.startswith(p) or key.startswith(p) for p in prefixes):
            spans.append(found.span())
    first = spans[0][0] if spans else 0
    start = max(0, first - _SNIPPET // 3)
    if start:
        # Begin and end at spaces where there are any, so the snippet shows whole words.
        space = text.find(" ", start, first)
        start = space + 1 if space >= 0 else first
    end = min(len(text), start + _SNIPPET)
    if end < len(text):
        space = text.rfind(" ", first + 1, end)
        end = space if space > 0 else end
    return _marked(text, [s for s in spans if s[0] >= start and s[1] <= end], start, end)


def highlight_substring(value: str, needle: str) -> Markup:
    """Value escaped, with the first case-insensitive occurrence of needle in <mark>."""
    wanted = needle.lower()
    # Lower case can be longer ("İ" → "i̇"): map each lowered character back to its source.
    lowered = [(char.lower(), index) for index, char in enumerate(value)]
    text = "".join(low for low, _ in lowered)
    source = [index for low, index in lowered for _ in low]
    at = text.find(wanted) if wanted else -1
    if at < 0:
        return _marked(value, [], 0, len(value))
    return _marked(value, [(source[at], source[at + len(wanted) - 1] + 1)], 0, len(value))


def _marked(text: str, spans: list[tuple[int, int]], start: int, end: int) -> Markup:
    pieces = [Markup("…")] if start > 0 else []
    cursor = start
    for left, right in spans:
        pieces.append(Markup.escape(text[cursor:left]))
        pieces.append(Markup("<mark>{}</mark>").format(text[left:right]))
        cursor = right
    pieces.append(Markup.escape(text[cursor:end]))
    if end < len(text):
        pieces.append(Markup("…"))
    return Markup("").join(pieces)
