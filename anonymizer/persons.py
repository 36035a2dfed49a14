"""Detect person names by combining list hits, capitalisation, titles and context cues."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from functools import lru_cache
from itertools import accumulate, compress

from anonymizer.cues import (
    AFTER_CUES,
    CLOSING_BEFORE_RE,
    CLOSING_RE,
    COLON_CUES,
    CUE_GAP_RE,
    CUE_LAST_WORDS,
    CUE_PREVIOUS,
    CUE_TAILS,
    CUE_TOP_LEVELS,
    CUE_WORD_LEVELS,
    CUES,
    INITIALS_RE,
    LINE,
    MAX_CUE_WORDS,
    STRONG,
    WEAK,
    WORD_GAP_RE,
)
from anonymizer.entity import PERSON, Entity
from anonymizer.names import AMBIGUOUS, FOLDED_TITLES, PARTICLES, STOP, TITLES, lexicon
from anonymizer.patterns import bmp_class, is_bmp, wide_members

# Possessive: a run of letters is never followed by a letter, so nothing is given back.
# The group makes split() keep the words between the gaps. The first letter is matched on
# its own so that the pattern starts with a character class: the engine then skips the
# gaps in a tight loop instead of trying a match at each of their characters.
_TOKEN_SPLIT_RE = re.compile(r"([^\W\d_][^\W\d_]*+(?:['’\-][^\W\d_]++)*+)")
# The same, faster, for the texts in which _WIDE_LETTER_RE finds nothing: see bmp_class.
_LETTER = bmp_class(r"^\W\d_")
_WIDE_LETTER_RE = wide_members(r"^\W\d_")
_BMP_TOKEN_SPLIT_RE = re.compile(rf"([{_LETTER}][{_LETTER}]*+(?:['’\-][{_LETTER}]++)*+)")
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
# Possessive: what a quantifier could give back never matches what follows it (a letter
# ends no run of word characters, a word ends no gap), so backtracking would only fail
# again, character by character, on every longer line.
_LINE_NAME_RE = re.compile(
    r"(?m)^[ \t\-~–—]*+"
    r"(?P<name>[^\W\d_][\w'’\-]*+(?:[ \t]++[^\W\d_][\w'’\-]*+\.?){0,2}+)[ \t.!]*+$"
)

_NONE, _WEAK, _LINE, _STRONG = 0, WEAK, LINE, STRONG
_Lists = tuple[frozenset[str], frozenset[str], frozenset[str]]
_ANY_TITLES = TITLES | FOLDED_TITLES
# Words that never begin a name.
_NO_START = STOP | TITLES | PARTICLES


def _tokens(text: str) -> tuple[list[str], list[str], list[str]]:
    """Split ``text`` into alternating gaps and words; return them, the words and the keys.

    ``parts`` starts and ends with a gap (maybe empty): word ``i`` is ``parts[2 * i + 1]``
    and the gap before it ``parts[2 * i]``. The keys are the words lower-cased. Offsets
    are summed up from the part lengths only where an entity needs them.
    """
    # split() alternates gaps and words at C speed, without a match object per word.
    narrow = is_bmp(text) or not _WIDE_LETTER_RE.search(text)
    parts = (_BMP_TOKEN_SPLIT_RE if narrow else _TOKEN_SPLIT_RE).split(text)
    if len(parts) == 1:
        return parts, [], []
    words = parts[1::2]
    return parts, words, list(map(str.lower, words))


def _cue_level(parts: list[str], keys: list[str], last: int) -> int:
    """Return the level of the cue phrase that ends with word ``last``, a cue word."""
    key = keys[last]
    level = CUE_WORD_LEVELS[key]
    # Most cue words ("ist", "an") end no longer cue after the word before them.
    if last > 0 and keys[last - 1] in CUE_PREVIOUS[key]:
        first = last
        while first > 0 and last - first < MAX_CUE_WORDS - 1:
            first -= 1
            phrase = tuple(keys[first : last + 1])
            # A phrase that ends no cue cannot grow into one: the gap test is skipped then.
            if phrase not in CUE_TAILS:
                break
            gap = parts[2 * first + 2]
            if gap != " " and not WORD_GAP_RE.fullmatch(gap):
                break
            level = max(level, CUES.get(phrase, _NONE))
    if not level:
        return _NONE
    # parts[2 * last + 2] is the gap between the cue and the next word; a single space is
    # by far the most common one, and a valid one.
    gap = parts[2 * last + 2]
    if gap != " " and not CUE_GAP_RE.fullmatch(gap):
        return _NONE
    if key in COLON_CUES and ":" not in gap:
        return _NONE
    return level


def _evidence(
    text: str, parts: list[str], keys: list[str], hits: list[int], listed: frozenset[str]
) -> dict[int, int]:
    """Map word indexes to the strongest context cue around them.

    ``hits`` holds the indexes of the words in ``_watched_words()``, among them every cue.
    A weak cue is of use only before a ``listed`` word (see find_people), so the weak cues
    before other words are not looked at.
    """
    found: dict[int, int] = {}
    count = len(keys)
    for at in hits:
        key = keys[at]
        if (
            key in CUE_LAST_WORDS
            and at + 1 < count
            and (CUE_TOP_LEVELS[key] > _WEAK or keys[at + 1] in listed)
        ):
            level = _cue_level(parts, keys, at)
            if level:
                found[at + 1] = max(found.get(at + 1, _NONE), level)
        # "Ola here": parts[2 * at] is the gap before the cue.
        if key in AFTER_CUES and at > 0 and parts[2 * at] == " ":
            found[at - 1] = max(found.get(at - 1, _NONE), _WEAK)
    # parts[-1] is the gap after the last word, parts[-3] the one before it: mostly a
    # single space, which ends no sentence.
    before = count == 1 or (parts[-3] != " " and CLOSING_BEFORE_RE.fullmatch(parts[-3]))
    if before and CLOSING_RE.fullmatch(parts[-1]):
        found[count - 1] = max(found.get(count - 1, _NONE), _LINE)
    if "\n" in text:
        _line_evidence(text, parts, found)
    return found


def _line_evidence(text: str, parts: list[str], found: dict[int, int]) -> None:
    """Add the words that begin a line holding nothing but a short name to ``found``."""
    offsets: list[int] = []
    line_start = 0
    # A name line matches from its start and never spans a line break, so trying the
    # line starts alone finds what finditer() would, without trying every position.
    while line_start >= 0:
        match = _LINE_NAME_RE.match(text, line_start)
        line_start = text.find("\n", line_start)
        if line_start >= 0:
            line_start += 1
        if match is None:
            continue
        if not offsets:
            # The running sum of the part lengths ends where the next part starts: word
            # ``i`` starts at offsets[2 * i]. Only the two outer gaps may be empty, so the
            # offsets below the text's length are unique.
            offsets = list(accumulate(map(len, parts)))
        name_start = match.start("name")
        at = bisect_left(offsets, name_start)
        if at % 2 == 0 and offsets[at] == name_start:
            found[at // 2] = max(found.get(at // 2, _NONE), _LINE)


@lru_cache(maxsize=1)
def _watched_words() -> tuple[frozenset[str], frozenset[str]]:
    """Return the listed first names with and without a genitive 's' ("Janas"), and those
    together with every cue and title: the only words that can make a word a candidate."""
    first = lexicon()[0]
    first_or_genitive = first | frozenset(name + "s" for name in first)
    return first_or_genitive, first_or_genitive | CUE_LAST_WORDS | AFTER_CUES | _ANY_TITLES


def _start_ok(word: str, key: str, level: int, titled: bool, lists: _Lists) -> bool:
    """Tell whether a token may begin a name, given the evidence around it."""
    first, surnames, common = lists
    cap = word[0].isupper()
    if key in _NO_START:
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


def _title_positions(text: str, words: list[str], keys: list[str], hits: list[int]) -> list[int]:
    """Return the indexes of the words right after a title ("Herr", "Dr", "Mſ")."""
    titles = [at for at in hits if keys[at] in _ANY_TITLES]
    if not titles:
        return []
    # A title as the last word has no word after it.
    positions = [at + 1 for at in titles if keys[at] in TITLES and at + 1 < len(words)]
    # Titles are compared case-folded too, but a word that case-folds to a title and does
    # not lower-case to one lower-cases to one of FOLDED_TITLES: only then is it worth
    # folding the words. Folding differs from lower-casing only for a few characters.
    if any(keys[at] in FOLDED_TITLES for at in titles) and not (
        text.isascii() or text.casefold() == text.lower()
    ):
        folded = [word.casefold() for word in words]
        positions += [at for at, key in enumerate(folded[:-1], 1) if key in TITLES]
    return positions


def find_people(text: str) -> Iterator[Entity]:
    """Yield names found from evidence: a title, a cue, a signature line or a listed name."""
    if "^" in text:
        for match in INITIALS_RE.finditer(text):
            yield Entity(PERSON, match.start("initials"), match.end("initials"))
    parts, words, keys = _tokens(text)
    if not keys:
        return
    first_or_genitive, watched = _watched_words()
    # One pass finds the few words that any rule below looks at; compress() and map() make
    # it without a bytecode loop over the words.
    hits = list(compress(range(len(keys)), map(watched.__contains__, keys)))
    evidence = _evidence(text, parts, keys, hits, first_or_genitive)
    lists = lexicon()
    first, surnames, _ = lists
    count = len(words)
    # Most words are lower-case words without a cue or a title before them: nothing can
    # make them a name, so only the others are visited.
    # A capitalised word with neither needs to be a listed first name (see _start_ok and
    # the "Mark Weber" rule below), and so does one after a weak cue ("Hallo zusammen").
    # Directly after a title, the cue level does not matter (see _start_ok), and the word
    # is among the title positions; after a title and a wider gap, a word with a weak cue
    # or none needs to be a listed first name as well.
    todo = {at for at, level in evidence.items() if level != _WEAK or keys[at] in first_or_genitive}
    todo.update([at for at in hits if keys[at] in first_or_genitive and words[at][0].isupper()])
    todo.update(_title_positions(text, words, keys, hits))
    # Offsets are summed up from the part lengths, each entity from the previous one on:
    # ``offset`` is where parts[done] starts.
    offset = done = 0
    index = 0
    for candidate in sorted(todo):
        if candidate < index:
            continue
        index = candidate
        word = words[index]
        key = keys[index]
        level = evidence.get(index, _NONE)
        # parts[2 * index] is the gap before word ``index``.
        # Only a word that lower-cases to a title or to one of FOLDED_TITLES can case-fold
        # to a title: the set test spares most words the casefold() call.
        titled = (
            index > 0
            and keys[index - 1] in _ANY_TITLES
            and words[index - 1].casefold() in TITLES
            and bool(_TITLE_GAP_RE.fullmatch(parts[2 * index]))
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
                and words[nxt][0].isupper()
                and words[nxt].casefold() in surnames
                and words[nxt].casefold() not in STOP
                and _INLINE_GAP_RE.fullmatch(parts[2 * nxt])
            ):
                continue
        strong = titled or level >= _STRONG
        last = index
        while last + 1 < count and last - index < 3:
            n_word = words[last + 1]
            gap = parts[2 * last + 2]
            if gap != " " and not _INLINE_GAP_RE.fullmatch(gap):
                break
            n_key = n_word.casefold()
            if n_key in PARTICLES and last + 2 < count and words[last + 2][0].isupper():
                last += 1
                continue
            if not _continues(n_word, n_key, strong, lists):
                break
            last += 1
        # A trailing particle ("Jana von") is not part of the name.
        while last > index and words[last].casefold() in PARTICLES:
            last -= 1
        # Joining the parts in between is quicker than adding up their lengths one by one.
        start = offset + len("".join(parts[done : 2 * index + 1]))
        offset = start + len("".join(parts[2 * index + 1 : 2 * last + 2]))
        done = 2 * last + 2
        yield Entity(PERSON, start, offset)
        index = last + 1
