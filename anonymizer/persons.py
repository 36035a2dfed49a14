"""Detect person names by combining list hits, capitalisation, titles and context cues."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from itertools import accumulate

from anonymizer.cues import (
    AFTER_CUES,
    CLOSING_BEFORE_RE,
    CLOSING_RE,
    COLON_CUES,
    CUE_GAP_RE,
    CUE_LAST_WORDS,
    CUE_TAILS,
    CUES,
    INITIALS_RE,
    LINE,
    MAX_CUE_WORDS,
    STRONG,
    WEAK,
    WORD_GAP_RE,
)
from anonymizer.entity import PERSON, Entity
from anonymizer.names import AMBIGUOUS, PARTICLES, STOP, TITLES, lexicon

# Possessive: a run of letters is never followed by a letter, so nothing is given back.
# The group makes split() keep the words between the gaps.
_TOKEN_SPLIT_RE = re.compile(r"([^\W\d_]++(?:['’\-][^\W\d_]++)*+)")
# Endings that mark an unlisted word as a likely surname after a first name
# ("Jana Kowalczyk", "Olga Smirnowa"); German nouns rarely follow a first name directly.
_SURNAME_SHAPE_RE = re.compile(
    r"(?:mann|ski|ska|cki|cka|wicz|icz|czyk|ow|owa|ew|ewa|ev|eva|ova|ko|enko|oğlu|oglu|ić|"
    r"vić|ovic|sen|son|berg|stein|feld|meier|mayer|maier|huber|ler|ner|tz|ke|er|el|us|is|"
    r"ez|es|ini|ano|elli|ak|an|in|yılmaz|demir|kaya|çelik)$"
)
_MODEL_WORDS = frozenset({"pro", "plus", "ultra", "mini", "lite", "air", "note", "edition"})
_INLINE_GAP_RE = re.compile(r"[ \t]{1,3}|[ \t]*-[ \t]*")
_TITLE_GAP_RE = re.compile(r"\.?[ \t]{0,3}")
_LINE_NAME_RE = re.compile(
    r"(?m)^[ \t\-~–—]*(?P<name>[^\W\d_][\w'’\-]*(?:[ \t]+[^\W\d_][\w'’\-]*\.?){0,2})[ \t.!]*$"
)

_NONE, _WEAK, _LINE, _STRONG = 0, WEAK, LINE, STRONG
_Token = tuple[int, int, str]
_Lists = tuple[frozenset[str], frozenset[str], frozenset[str]]


def _tokens(text: str) -> tuple[list[_Token], list[str]]:
    """Return the word tokens of ``text`` with their offsets, and the words lower-cased."""
    # split() alternates gaps and words at C speed; the running sum of their lengths gives
    # every offset without a match object or a str.find per word.
    parts = _TOKEN_SPLIT_RE.split(text)
    if len(parts) == 1:
        return [], []
    offsets = list(accumulate(map(len, parts)))
    words = parts[1::2]
    tokens = list(zip(offsets[0::2], offsets[1::2], words, strict=False))
    # One lower() call for all words: a space between them is, like the end of a word,
    # no letter, so even a final sigma comes out as it does for the word alone.
    return tokens, " ".join(words).lower().split(" ")


def _cue_before(text: str, tokens: list[_Token], keys: list[str], index: int) -> int:
    """Return the level of the cue phrase that ends right before token ``index``."""
    last = index - 1
    gap = CUE_GAP_RE.fullmatch(text, tokens[last][1], tokens[index][0])
    if gap is None:
        return _NONE
    if keys[last] in COLON_CUES and ":" not in gap.group():
        return _NONE
    level = _NONE
    first = last
    while True:
        level = max(level, CUES.get(tuple(keys[first : last + 1]), _NONE))
        first -= 1
        if (
            first < 0
            or last - first >= MAX_CUE_WORDS
            # A phrase that ends no cue cannot grow into one: skip the gap test then.
            or tuple(keys[first : last + 1]) not in CUE_TAILS
            or not WORD_GAP_RE.fullmatch(text, tokens[first][1], tokens[first + 1][0])
        ):
            break
    return level


def _evidence(text: str, tokens: list[_Token], keys: list[str]) -> dict[int, int]:
    """Map token indexes to the strongest context cue around them."""
    found: dict[int, int] = {}
    count = len(tokens)
    # Set tests find the posts without any cue word at C speed.
    if not CUE_LAST_WORDS.isdisjoint(keys):
        for index in [at for at, key in enumerate(keys[:-1], 1) if key in CUE_LAST_WORDS]:
            level = _cue_before(text, tokens, keys, index)
            if level:
                found[index] = level
    if not AFTER_CUES.isdisjoint(keys):
        for index in range(count - 1):
            if (
                keys[index + 1] in AFTER_CUES
                and text[tokens[index][1] : tokens[index + 1][0]] == " "
            ):
                found[index] = max(found.get(index, _NONE), _WEAK)
    last_start, last_end, _ = tokens[-1]
    before = tokens[-2][1] if count > 1 else 0
    if CLOSING_RE.fullmatch(text, last_end) and (
        count == 1 or CLOSING_BEFORE_RE.fullmatch(text, before, last_start)
    ):
        found[count - 1] = max(found.get(count - 1, _NONE), _LINE)
    lines = _LINE_NAME_RE.finditer(text) if "\n" in text else ()
    starts: dict[int, int] = {}
    for match in lines:
        if not starts:
            starts = {start: index for index, (start, _, _) in enumerate(tokens)}
        line_index = starts.get(match.start("name"))
        if line_index is not None:
            found[line_index] = max(found.get(line_index, _NONE), _LINE)
    return found


@lru_cache(maxsize=1)
def _first_names_or_genitives() -> frozenset[str]:
    """Return the listed first names, with and without a genitive 's' ("Janas")."""
    first = lexicon()[0]
    return first | frozenset(name + "s" for name in first)


def _start_ok(word: str, key: str, level: int, titled: bool, lists: _Lists) -> bool:
    """Tell whether a token may begin a name, given the evidence around it."""
    first, surnames, common = lists
    cap = word[0].isupper()
    if key in STOP or key in TITLES or key in PARTICLES:
        return False
    listed = key in first or (key.endswith("s") and key[:-1] in first)
    if titled:
        return cap or key in surnames or listed
    if level == _STRONG:
        # "Many thanks, Will": a listed name after a sign-off counts even if it is a word.
        return (cap and (key not in common or listed)) or (
            (listed or key in surnames) and key not in common
        )
    if level == _LINE:
        return cap and (listed or key in surnames) and key not in common
    if level == _WEAK:
        return listed and (cap or key not in AMBIGUOUS) and key not in common
    return cap and listed and key not in AMBIGUOUS and key not in common


def _continues(word: str, key: str, strong: bool, lists: _Lists) -> bool:
    """Tell whether a token directly after a name start is part of the same name."""
    first, surnames, common = lists
    if key in STOP or key in TITLES:
        return False
    if not word[0].isupper():
        # Customers who type in lower case do so for the surname too ("lg olga smirnowa").
        return strong and key in surnames and key not in common
    if key in surnames or key in first or len(word) == 1:
        return True
    return key not in common and (strong or bool(_SURNAME_SHAPE_RE.search(key)))


def find_people(text: str) -> Iterator[Entity]:
    """Yield names found from evidence: a title, a cue, a signature line or a listed name."""
    if "^" in text:
        for match in INITIALS_RE.finditer(text):
            yield Entity(PERSON, match.start("initials"), match.end("initials"))
    tokens, keys = _tokens(text)
    if not tokens:
        return
    evidence = _evidence(text, tokens, keys)
    lists = lexicon()
    first, surnames, _ = lists
    count = len(tokens)
    # Most tokens are lower-case words without a cue or a title before them: nothing can
    # make them a name, so only the others are visited.
    # A capitalised word with neither needs to be a listed first name (see _start_ok and
    # the "Mark Weber" rule below).
    listed = _first_names_or_genitives().intersection(keys)
    todo = {at for at, key in enumerate(keys) if key in listed and tokens[at][2][0].isupper()}
    todo.update(evidence)
    # Titles are compared case-folded below ("Mſ") and lower-cased above.
    # Case-folding differs from lower-casing only for a few characters such as 'ß' and 'ſ'.
    plain = text.isascii() or text.casefold() == text.lower()
    folded = keys if plain else [word.casefold() for _, _, word in tokens]
    for words in (keys, folded):
        if not TITLES.isdisjoint(words):
            todo.update(at for at, key in enumerate(words[:-1], 1) if key in TITLES)
    index = 0
    for candidate in sorted(todo):
        if candidate < index:
            continue
        index = candidate
        start, end, word = tokens[index]
        key = keys[index]
        level = evidence.get(index, _NONE)
        titled = False
        if index > 0:
            prev_start, prev_end, prev_word = tokens[index - 1]
            titled = prev_word.casefold() in TITLES and bool(
                _TITLE_GAP_RE.fullmatch(text, prev_end, start)
            )
        # "iPhone 15 Pro Max", "Galaxy Note Max": a model suffix, not a person.
        if not level and not titled and index > 0 and keys[index - 1] in _MODEL_WORDS:
            continue
        if not _start_ok(word, key, level, titled, lists):
            # An ambiguous first name counts when a listed surname follows ("Mark Weber").
            nxt = index + 1
            if not (
                word[0].isupper()
                and key in first
                and key not in STOP
                and nxt < count
                and tokens[nxt][2][0].isupper()
                and tokens[nxt][2].casefold() in surnames
                and tokens[nxt][2].casefold() not in STOP
                and _INLINE_GAP_RE.fullmatch(text, end, tokens[nxt][0])
            ):
                continue
        strong = titled or level >= _STRONG
        last = index
        while last + 1 < count and last - index < 3:
            n_start, n_end, n_word = tokens[last + 1]
            if not _INLINE_GAP_RE.fullmatch(text, tokens[last][1], n_start):
                break
            n_key = n_word.casefold()
            if n_key in PARTICLES and last + 2 < count and tokens[last + 2][2][0].isupper():
                last += 1
                continue
            if not _continues(n_word, n_key, strong, lists):
                break
            last += 1
        # A trailing particle ("Jana von") is not part of the name.
        while last > index and tokens[last][2].casefold() in PARTICLES:
            last -= 1
        yield Entity(PERSON, start, tokens[last][1])
        index = last + 1
