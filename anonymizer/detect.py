"""Find personal data in post text: run every detector, then resolve overlaps by priority."""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterator, Sequence
from operator import itemgetter

from anonymizer.addresses import find_addresses
from anonymizer.digits import digit_runs
from anonymizer.entity import (
    ADDRESS,
    CREDIT_CARD,
    DATE_OF_BIRTH,
    EMAIL,
    ENTITY_TYPES,
    HANDLE,
    IBAN,
    ID_NUMBER,
    IP_ADDRESS,
    PERSON,
    PHONE,
    URL,
    Entity,
)
from anonymizer.names import find_known_names
from anonymizer.numbers import (
    aligned_lower,
    find_birth_dates,
    find_cards,
    find_ibans,
    find_ids,
    find_ips,
    find_phones,
)
from anonymizer.persons import find_people

__all__ = ["ENTITY_TYPES", "Entity", "find_entities"]

# Marks the company's own handles during resolution so that no known-name match can
# claim them; it never leaves this module.
_KEEP = "KEEP"

# Lower rank wins an overlap, then the longer span. Containers come first: an e-mail or
# link is redacted whole rather than leaving its rest readable next to a smaller entity
# inside it. Checksum-validated numbers (IBAN, card) outrank phone-shaped digit runs
# inside them; validated numbers outrank cue-based IDs, dates and addresses, whose
# evidence is weaker; PERSON, found from the loosest evidence, yields to everything.
# A kept company handle ranks just above HANDLE so that no name match can claim it.
_PRIORITY = {
    EMAIL: 0, URL: 1, IBAN: 2, CREDIT_CARD: 3, IP_ADDRESS: 4, PHONE: 5, ID_NUMBER: 6,
    DATE_OF_BIRTH: 7, ADDRESS: 8, _KEEP: 9, HANDLE: 10, PERSON: 11,
}  # fmt: skip


# A label is always followed by '.', which [\w-] cannot match, so it always runs to the end
# of its [\w-] run: taking that run at once (possessively) spares the engine backtracking.
_LABEL = r"[^\W_](?:[\w-]*+(?<=[^\W_]))?"
_HOST = rf"(?:{_LABEL}\.)+[^\W\d_]{{2,24}}"

# The look-behinds keep `@user@instance.social` (and `@jana.m@x.social`) a HANDLE
# instead of an e-mail, while "...jana@x.de" after an ellipsis is still found.
# The local part can only end where its run of [\w%+-] does, so it is taken possessively.
_EMAIL_RE = re.compile(rf"(?<![\w@%+-])(?<![\w@]\.)[\w%+-]++(?:\.[\w%+-]++)*+@{_HOST}(?![\w-])")

_URL_CHARS = r"[\w\-.~:/?#@!$&()*+,;=%\[\]]"
# Bare TLDs that are also words or likely typos ("da.Es", "look.at", "im.Shop") only
# count as a link when a path follows; the rest are accepted on their own.
_TLD_ALONE = "de|com|net|org|eu|io|uk|ch|nl|fr|pl|dk|se|lu|edu|gov"
_TLD_WITH_PATH = (
    "at|be|es|it|ly|me|to|co|gl|gd|tv|ai|so|us|li|cc|ws|info|biz|app|dev|page|link|"
    "shop|store|online|site|social|cloud|xyz|news|blog|club|berlin|koeln|hamburg|bayern"
)
_BARE_HOST = rf"(?:{_LABEL}\.)+"
_URL_RE = re.compile(
    rf"(?<![\w@.\-/])(?:"
    rf"https?://{_URL_CHARS}+"
    rf"|www\.{_HOST}(?:[/?#]{_URL_CHARS}*)?"
    rf"|{_BARE_HOST}(?:{_TLD_WITH_PATH}|{_TLD_ALONE})(?![\w-])[/?#]{_URL_CHARS}*"
    rf"|{_BARE_HOST}(?:{_TLD_ALONE})(?![\w-])"
    rf")",
    re.IGNORECASE,
)
_SPACE_RE = re.compile(r"\s")
_URL_TRAILING = ".,;:!?"
# Every URL form has a dot directly followed by a letter (sentences put a space there),
# or a scheme's "://".
_URL_HINT_RE = re.compile(r"\.[^\W\d_]")
_URL_ANCHOR_RE = re.compile(r"\.[^\W\d_]|://")

# A letter may precede the '@' ("RT@jana_m"); inside an e-mail address the EMAIL match
# outranks this one, so the local part is never reported as a handle.
# The look-behind comes after the '@' so that the engine can jump from '@' to '@'.
_HANDLE_RE = re.compile(rf"@(?<![@./]@)\w(?:[\w.]*\w)?(?:@{_HOST})?(?!\w)")


# Only runs that start with '+', '00' or a trunk '0' and use space, '-', '/' or
# parentheses as separators: dates (dots), prices (commas) and order numbers such as
# 4711-2024 (no leading zero) can never form a candidate. The length cap keeps hostile
# digit floods linear; "+49 (0) 171 / 123 45 67" is 23 characters.
def _strip_url_tail(text: str, start: int, end: int) -> int:
    """Return the end of a URL without trailing sentence punctuation or unbalanced ')'."""
    while end > start:
        last = text[end - 1]
        span = text[start:end]
        if last in _URL_TRAILING or (last == ")" and span.count(")") > span.count("(")):
            end -= 1
        elif last == "]" and span.count("]") > span.count("["):
            end -= 1
        else:
            break
    return end


def _find_emails(text: str) -> Iterator[Entity]:
    """Yield what ``_EMAIL_RE.finditer`` finds, trying the regex only before each '@'."""
    pos = 0
    while (at := text.find("@", pos)) >= 0:
        # The local part is a run of [\w%+.-] right before the '@'; it starts at the run's
        # start or after a '.' in it, since the look-behind rejects any other character.
        start = at
        while start > pos and (text[start - 1].isalnum() or text[start - 1] in "_%+.-"):
            start -= 1
        match = _EMAIL_RE.match(text, start) if start < at else None
        dot = text.find(".", start, at)
        while match is None and dot >= 0:
            match = _EMAIL_RE.match(text, dot + 1)
            dot = text.find(".", dot + 1, at)
        if match is None:
            pos = at + 1
        else:
            yield Entity(EMAIL, match.start(), match.end())
            pos = match.end()


def _find_urls(text: str) -> Iterator[Entity]:
    """Yield URL entities, with or without scheme."""
    # Every link has "://" or a '.' before a letter, and no white space: only the
    # white-space-delimited chunks around such anchors are scanned. A chunk ends before
    # white space, where the look-aheads at its end see what they would see in the text.
    end = 0
    for anchor in _URL_ANCHOR_RE.finditer(text):
        at = anchor.start()
        if at < end:
            continue
        start = max(end, text.rfind(" ", 0, at) + 1, text.rfind("\n", 0, at) + 1)
        space = _SPACE_RE.search(text, at)
        end = len(text) if space is None else space.start()
        for match in _URL_RE.finditer(text, start, end):
            yield Entity(URL, match.start(), _strip_url_tail(text, match.start(), match.end()))


def _normalise_handle(handle: str) -> str:
    """Return a handle without its leading '@', case-folded for comparison."""
    return handle.strip().removeprefix("@").casefold()


# Entity is a named tuple (type, start, end).
_span = itemgetter(1, 2)


def _resolve(candidates: list[Entity]) -> list[Entity]:
    """Pick non-overlapping entities by type priority, then by longer span."""
    # Most posts have no overlap at all: then every candidate is chosen, sorted by start.
    # Two detectors often find the same span (a known name that is also a listed one);
    # the copy would lose anyway, and without it more posts take this fast path.
    by_start = sorted(set(candidates), key=_span)
    end = -1
    for entity in by_start:
        if entity.start < end or entity.start >= entity.end:
            break
        end = entity.end
    else:
        return by_start
    ranked = sorted(by_start, key=lambda e: (_PRIORITY[e.type], e.start - e.end, e.start))
    # Chosen spans never overlap, so sorted by start they are sorted by end as well.
    chosen: list[Entity] = []
    starts: list[int] = []
    for entity in ranked:
        first = max(bisect.bisect_right(starts, entity.start) - 1, 0)
        last = bisect.bisect_left(starts, entity.end)
        blockers = [c for c in chosen[first:last] if c.end > entity.start]
        if not blockers:
            pieces = [entity]
        elif entity.type == URL:
            # An e-mail inside a link wins, but the rest of the link (which may carry a
            # handle or a name in its path or query) must not be left readable.
            edges = [entity.start, *(x for c in blockers for x in (c.start, c.end)), entity.end]
            pieces = [
                Entity(URL, lo, hi)
                for lo, hi in zip(edges[::2], edges[1::2], strict=True)
                if lo < hi
            ]
        else:
            continue
        for piece in pieces:
            at = bisect.bisect_left(starts, piece.start)
            starts.insert(at, piece.start)
            chosen.insert(at, piece)
    return chosen


def find_entities(
    text: str,
    *,
    keep_handles: Collection[str] = (),
    known_names: Collection[str] = (),
    default_region: str = "DE",
    extra_id_patterns: Sequence[str] = (),
) -> list[Entity]:
    """Return non-overlapping personal-data entities in ``text``, sorted by start."""
    candidates: list[Entity] = []
    if "@" in text:
        kept = {_normalise_handle(handle) for handle in keep_handles}
        candidates.extend(_find_emails(text))
        for match in _HANDLE_RE.finditer(text):
            kind = _KEEP if _normalise_handle(match.group()) in kept else HANDLE
            candidates.append(Entity(kind, match.start(), match.end()))
    if _URL_HINT_RE.search(text):
        candidates.extend(_find_urls(text))
    # The runs of decimal digits are found once for all number detectors; only posts
    # without one need the slower test for other digits ("²").
    runs = digit_runs(text)
    if runs or any(map(str.isdigit, text)):
        lower = text.lower()
        lowered = aligned_lower(text, lower)
        candidates.extend(find_ibans(text, runs))
        candidates.extend(find_cards(text, runs))
        candidates.extend(find_ips(text, runs))
        candidates.extend(find_phones(text, default_region))
        candidates.extend(find_ids(text, extra_id_patterns, lowered, runs))
        candidates.extend(find_birth_dates(text, lowered, runs))
        candidates.extend(find_addresses(text, runs, lower))
    else:
        # "fe80::abcd" has no decimal digit, and an account's ID pattern may have none.
        if "::" in text:
            candidates.extend(find_ips(text))
        if extra_id_patterns:
            candidates.extend(find_ids(text, extra_id_patterns))
    candidates.extend(find_known_names(text, known_names))
    candidates.extend(find_people(text))
    return [entity for entity in _resolve(candidates) if entity.type != _KEEP]
