"""Detect personal data (e-mail, URL, phone, handle, known person names) in post text."""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import phonenumbers

EMAIL = "EMAIL"
URL = "URL"
PHONE = "PHONE"
HANDLE = "HANDLE"
PERSON = "PERSON"

# Marks the company's own handles during resolution so that no known-name match can
# claim them; it never leaves this module.
_KEEP = "KEEP"

# Lower rank wins an overlap: an e-mail or link is redacted as a whole rather than
# leaving the rest of it readable next to a smaller entity found inside it.
_PRIORITY = {EMAIL: 0, URL: 1, PHONE: 2, _KEEP: 3, HANDLE: 4, PERSON: 5}


@dataclass(frozen=True, slots=True)
class Entity:
    """A span of personal data in the original text; ``end`` is exclusive."""

    type: str
    start: int
    end: int


_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_HOST = rf"(?:{_LABEL}\.)+[^\W\d_]{{2,24}}"

# The look-behinds keep `@user@instance.social` (and `@jana.m@x.social`) a HANDLE
# instead of an e-mail, while "...jana@x.de" after an ellipsis is still found.
_EMAIL_RE = re.compile(rf"(?<![\w@%+-])(?<![\w@]\.)[\w%+-]+(?:\.[\w%+-]+)*@{_HOST}(?![\w-])")

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
_URL_TRAILING = ".,;:!?"

# A letter may precede the '@' ("RT@jana_m"); inside an e-mail address the EMAIL match
# outranks this one, so the local part is never reported as a handle.
_HANDLE_RE = re.compile(rf"(?<![@./])@\w(?:[\w.]*\w)?(?:@{_HOST})?(?!\w)")

# Only runs that start with '+', '00' or a trunk '0' and use space, '-', '/' or
# parentheses as separators: dates (dots), prices (commas) and order numbers such as
# 4711-2024 (no leading zero) can never form a candidate. The length cap keeps hostile
# digit floods linear; "+49 (0) 171 / 123 45 67" is 23 characters.
_PHONE_CANDIDATE_RE = re.compile(r"(?<![\w#+.,/\-])(?:\+|0)[\d \-/()]{0,28}\d")
_PHONE_GROUP_END_RE = re.compile(r"\d(?=[ \-/()]|$)")
# Customers mistype their own numbers (a digit short, an old mobile format); such a
# number is still theirs, so a "possible" number counts if it is written the way
# phone numbers are written: a prefix, a separator, then the subscriber digits.
_PHONE_SHAPED_RE = re.compile(
    r"(?:\+|00)[1-9]\d{0,2}[ \-/]?(?:\(0\)[ \-/]?)?\(?\d{1,5}\)?[ \-/]{1,3}\d{3,}(?:[ \-/]\d{2,})*"
    r"|\(?0\d{2,5}\)?[ \-/]{1,3}\d{3,}(?:[ \-/]\d{2,})*"
)
_PHONE_MIN_DIGITS = 7
_PHONE_MAX_DIGITS = 15
_PHONE_FALLBACK_BUDGET = 200

# A surname particle or salutation alone would match ordinary words all over the text.
_NAME_PART_STOPWORDS = frozenset(
    {"von", "van", "der", "den", "dem", "zum", "zur", "del", "della", "les", "los"}
    | {"frau", "herr", "mrs", "miss", "prof", "dipl", "ing"}
)
_MIN_NAME_PART = 3


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


def _find_urls(text: str) -> Iterator[Entity]:
    """Yield URL entities, with or without scheme."""
    for match in _URL_RE.finditer(text):
        yield Entity(URL, match.start(), _strip_url_tail(text, match.start(), match.end()))


def _normalise_handle(handle: str) -> str:
    """Return a handle without its leading '@', case-folded for comparison."""
    return handle.strip().removeprefix("@").casefold()


def _balanced(span: str) -> bool:
    """Tell whether every ')' in a phone span closes an earlier '('."""
    depth = 0
    for char in span:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0


def _valid_phone(candidate: str, region: str) -> bool:
    """Tell whether a candidate is a valid, or a possible and phone-shaped, number."""
    digits = sum(char.isdigit() for char in candidate)
    if not _PHONE_MIN_DIGITS <= digits <= _PHONE_MAX_DIGITS or not _balanced(candidate):
        return False
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    if phonenumbers.is_valid_number(number):
        return True
    return phonenumbers.is_possible_number(number) and bool(_PHONE_SHAPED_RE.fullmatch(candidate))


def _find_phones(text: str, region: str) -> list[Entity]:
    """Return phone entities from phonenumbers, plus fallback hits in gaps it left."""
    found: list[Entity] = []
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    for hit in matcher:
        start, end = hit.start, hit.end
        # The matcher keeps an opening bracket when the number itself sits in brackets.
        while start < end and text[start] == "(" and not _balanced(text[start:end]):
            start += 1
        found.append(Entity(PHONE, start, end))
    # phonenumbers gives up on a whole run it rejected (e.g. an ISO date directly
    # before a number), so a number inside such a run needs a second, narrower look.
    # A parse budget linear in the text length keeps hostile digit floods cheap, as the
    # matcher's own try limit does; ordinary posts need a handful of attempts.
    primary, index, pos = list(found), 0, 0
    budget = _PHONE_FALLBACK_BUDGET + len(text) // 8
    while budget > 0 and (match := _PHONE_CANDIDATE_RE.search(text, pos)):
        start, run = match.start(), match.group()
        pos = start + 1
        while index < len(primary) and primary[index].end <= start:
            index += 1
        if index < len(primary) and primary[index].start <= start:
            pos = primary[index].end
            continue
        ends = [m.end() for m in _PHONE_GROUP_END_RE.finditer(run)]
        for rel_end in reversed(ends):
            budget -= 1
            if _valid_phone(run[:rel_end], region):
                found.append(Entity(PHONE, start, start + rel_end))
                pos = start + rel_end
                break
    return found


def _name_patterns(name: str) -> list[str]:
    """Return regex alternatives for a known name: the whole name and its longer parts."""
    words = name.strip().split()
    if not words:
        return []
    if len(words) == 1:
        bare = words[0].removeprefix("@")
        return [rf"@?{re.escape(bare)}"] if bare else []
    patterns = [r"\s+".join(re.escape(word) for word in words)]
    for word in words:
        part = word.strip(".,;:()\"'")
        if len(part) >= _MIN_NAME_PART and part.casefold() not in _NAME_PART_STOPWORDS:
            patterns.append(re.escape(part))
    # German genitive ("Janas Paket", "Müllers Antwort") would otherwise leave the name.
    return [rf"{pattern}s?" for pattern in patterns]


def _find_people(text: str, known_names: Collection[str]) -> Iterator[Entity]:
    """Yield PERSON (or HANDLE, for '@'-prefixed handle tokens) entities for known names."""
    patterns = sorted(
        {pattern for name in known_names for pattern in _name_patterns(name)},
        key=len,
        reverse=True,
    )
    if not patterns:
        return
    name_re = re.compile(rf"(?<![\w@])(?:{'|'.join(patterns)})(?!\w)", re.IGNORECASE)
    for match in name_re.finditer(text):
        is_handle = match.group().startswith("@") and _HANDLE_RE.fullmatch(match.group())
        yield Entity(HANDLE if is_handle else PERSON, match.start(), match.end())


def _resolve(candidates: list[Entity]) -> list[Entity]:
    """Pick non-overlapping entities by type priority, then by longer span."""
    ranked = sorted(candidates, key=lambda e: (_PRIORITY[e.type], e.start - e.end, e.start))
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
) -> list[Entity]:
    """Return non-overlapping personal-data entities in ``text``, sorted by start."""
    kept = {_normalise_handle(handle) for handle in keep_handles}
    candidates: list[Entity] = [Entity(EMAIL, m.start(), m.end()) for m in _EMAIL_RE.finditer(text)]
    candidates.extend(_find_urls(text))
    candidates.extend(_find_phones(text, default_region))
    for match in _HANDLE_RE.finditer(text):
        kind = _KEEP if _normalise_handle(match.group()) in kept else HANDLE
        candidates.append(Entity(kind, match.start(), match.end()))
    candidates.extend(_find_people(text, known_names))
    return [entity for entity in _resolve(candidates) if entity.type != _KEEP]
