"""Detect postal addresses: street and house number, postcode and city, or both."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib import resources

from anonymizer.digits import Run, digit_runs, is_letter
from anonymizer.entity import ADDRESS, Entity
from anonymizer.patterns import group_by_first_letter

_UPPER = "A-ZÄÖÜ"
_WORD = r"[^\W\d_][\w\-]*"
# Suffixes glued to the street name ("Hauptstraße", "kastanienweg") or standing as the
# last word ("Berliner Str.", "Alte Allee").
_SUFFIX_ALTERNATIVES = (
    r"stra(?:ß|ss|s)e", r"str\.?", "weg", "allee", "platz", r"pl\.", "gasse", "ring", "damm",
    "ufer", "chaussee", "steig", "stieg", "pfad", "promenade", "twiete", "kamp", "graben", "wall",
    "zeile", "hang", "park", "markt", "gässchen", "brücke",
)  # fmt: skip
# The look-ahead holds the suffixes' first letters: one class test at each character of
# a word instead of trying every suffix there.
_SUFFIX_START = "(?=[" + "".join(sorted({alt[0] for alt in _SUFFIX_ALTERNATIVES})) + "])"
_STREET_WORD = (
    rf"(?i:(?:[^\W\d_][\w\-]*?)?{_SUFFIX_START}(?:{group_by_first_letter(_SUFFIX_ALTERNATIVES)}))"
)
_STREET_PREFIX = (
    r"(?:Am|An\s+der|An\s+den|Auf\s+der|Auf\s+dem|Im|In\s+der|Zum|Zur|Hinter\s+der|"
    r"Unter\s+den|Alte[rn]?)"
)
_HOUSE_NUMBER = r"\d{1,4}(?:\s?[a-zA-Z](?![\w]))?(?:\s?[-/]\s?\d{1,4}[a-z]?)?"
# A street name may have up to two leading words, adjectives of place or age ("Berliner
# Str.", "Alte Allee", "Bad Homburger Weg"); any other word before it is the sentence's.
_LEAD = (
    r"(?:[A-ZÄÖÜ][\w\-]*er|Alte|Neue|Gro(?:ß|ss)e|Kleine|Obere|Untere|Hohe|Lange|Bad|St\.|Sankt)"
)
_STREET = (
    rf"(?:(?:{_LEAD}[ \t]+){{0,2}}{_STREET_WORD}"
    rf"|{_STREET_PREFIX}\s+[{_UPPER}][\w\-]+(?:\s+[{_UPPER}][\w\-]+)?)"
)
# A number of units is a duration, a price or a quantity, not a house number.
_NOT_UNIT = (
    r"(?!\s*(?:%|€|\$|euro|eur\b|cent|ct\b|min|std|stunden|tage|tagen|wochen|monate|jahre|"
    r"mal\b|x\b|km|kg|gb|mb|mbit|uhr|h\b|m\b|minuten|sekunden|stück|stk|pakete|days|hours|"
    r"minutes|weeks|times|[.:,]\d))"
)
_STREET_RE = re.compile(
    rf"(?<![\w@/.])(?P<street>{_STREET})\s*(?P<no>{_HOUSE_NUMBER}){_NOT_UNIT}(?!\w)"
)
_POSTCODE_CITY_RE = re.compile(
    rf"(?<![\w.,/\-])(?:D-|DE-|A-|CH-)?(?P<plz>\d{{5}}|\d{{4}})\s+"
    rf"(?P<city>[{_UPPER}a-zäöü][\wäöüß]+"
    rf"(?:[ \t\-](?:am|an\s+der|im|bei|ob|/)?\s?[{_UPPER}][\wäöüß.]+)?)"
)
# British and Dutch addresses: number before the street, postcodes with letters.
# "(?<![\w.])(?:Flat\s+\d+[a-z]?,?\s+)?\d{1,4}...", written to start with a character class
# so that the engine jumps between 'F' and digits instead of trying every position.
_UK_STREET_RE = re.compile(
    r"[F\d](?<![\w.][F\d])(?:(?<=F)lat\s+\d+[a-z]?,?\s+\d|(?<=\d))\d{0,3}[a-z]?,?\s+"
    r"(?:[A-Z][a-z]+\s+){1,2}"
    r"(?:Road|Rd|Street|St|Close|Lane|Ln|Avenue|Ave|Drive|Dr|Way|Court|Ct|Place|Pl|Gardens|"
    r"Crescent|Terrace|Grove|Square|Sq|Hill|Row|Walk|Mews|Park|Rise|Vale)\b\.?"
)
_FOREIGN_POSTCODE_RE = re.compile(
    r"(?<![\w-])(?:(?P<pre>[A-Z][a-z]+)\s+)?(?P<uk>[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})(?![\w])"
    r"|(?<![\w-])\d{4}\s?[A-Z]{2}\s+[A-Z][a-z]+"
)
_SUFFIXES = (
    "straße", "strasse", "strase", "str", "weg", "allee", "platz", "pl", "gasse", "ring", "damm",
    "ufer", "chaussee", "steig", "stieg", "pfad", "promenade", "twiete", "kamp", "graben", "wall",
    "zeile", "hang", "park", "markt", "gässchen", "brücke",
)  # fmt: skip
_PREFIX_HINT_RE = re.compile(
    r"\b(?:Am|An|Auf|Im|In|Zum|Zur|Hinter|Unter|Alte[rn]?)(?:[ \t]+d(?:er|en|em))?"
    r"[ \t]+[A-ZÄÖÜ][\w\-]*(?:[ \t]+[A-ZÄÖÜ][\w\-]*)?[ \t]*$"
)
# Every match of _PREFIX_HINT_RE starts with one of these.
_PREFIX_WORD_RE = re.compile("Am|An|Auf|Im|In|Zum|Zur|Hinter|Unter|Alte")
_UK_HINTS = (
    "Road", "Rd", "Street", "St", "Close", "Lane", "Ln", "Avenue", "Ave", "Drive", "Dr", "Way",
    "Court", "Ct", "Place", "Pl", "Gardens", "Crescent", "Terrace", "Grove", "Square", "Sq",
    "Hill", "Row", "Walk", "Mews", "Park", "Rise", "Vale",
)  # fmt: skip


# The street type ends a word in _UK_STREET_RE too: "Stunden" and "Straße" are no hint.
# Grouped by first letter, so that at each capital the engine tries a few branches, not all.
_UK_HINT_RE = re.compile(f"(?:{group_by_first_letter(_UK_HINTS)})\\b")
# Every match of _FOREIGN_POSTCODE_RE contains a match of _UK_POSTCODE_HINT_RE or a Dutch
# postcode (four digits, two capitals, then _NL_POSTCODE_TAIL_RE), both of which start next
# to a run of digits: see _foreign_postcode_hint.
_UK_POSTCODE_HINT_RE = re.compile(r"[A-Z]\d[A-Z\d]?\s?\d[A-Z]{2}")
_NL_POSTCODE_TAIL_RE = re.compile(r"\s+[A-Z][a-z]")
_JOIN_RE = re.compile(r"[ \t]*(?:,|\n|\r\n?)?[ \t]*(?:\n[ \t]*)?")


# Capitalised words that may stand before a British postcode without being its town.
_NOT_CITY = frozenset({"To", "In", "At", "From", "Near", "The", "My", "Postcode", "Code"})


@lru_cache(maxsize=1)
def _cities() -> frozenset[str]:
    """Return the bundled place names, case-folded."""
    text = resources.files("anonymizer.data").joinpath("cities.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line and line[0] != "#"
    )


def cities() -> frozenset[str]:
    """Return the bundled German, Austrian and Swiss place names, case-folded."""
    return _cities()


def _city_span(match: re.Match[str], after_street: bool) -> tuple[int, int] | None:
    """Return the span of a postcode and city, trimmed to a known or vouched-for city."""
    city = match.group("city")
    words = city.split()
    known = cities()
    if city.casefold() in known:
        return match.span()
    if words[0].casefold() in known or after_street:
        end = match.start("city") + (
            len(city) if after_street and len(words) > 1 else len(words[0])
        )
        # A second word after a vouched-for postcode is only kept when capitalised.
        return match.start(), end
    return None


def _word_end_before(text: str, start: int) -> int:
    """Return where the word before a digit run ends, or -1 if no word comes right before it.

    A house number follows its street's last word directly, or after one '.', space or
    tab, or after '.' and a space or tab ("Hauptstr. 5"); the longest gap wins.
    """
    before = text[start - 1] if start else ""
    if before in (" ", "\t"):
        if start >= 3 and text[start - 2] == "." and is_letter(text[start - 3]):
            return start - 2
        return start - 1 if start >= 2 and is_letter(text[start - 2]) else -1
    if before == ".":
        return start - 1 if start >= 2 and is_letter(text[start - 2]) else -1
    # A letter, or (for "²" and the like) a numeral that is no decimal digit.
    return start if before.isalpha() or (before and is_letter(before)) else -1


def _postcode_hint(text: str, runs: Sequence[Run]) -> bool:
    """Tell whether a German (four or five digits) or British ("SW1A 1AA") postcode may be here.

    A German postcode is four digits in a row; a British one has a capital before a digit.
    """
    return any(end - start >= 4 or "A" <= text[start - 1 : start] <= "Z" for start, end in runs)


def _plz_hint(text: str, runs: Sequence[Run]) -> bool:
    """Tell whether four digits are followed by spaces or tabs and a letter ("12345 Köln")."""
    for start, end in runs:
        if end - start < 4:
            continue
        gap = end
        while text[gap : gap + 1] in (" ", "\t"):
            gap += 1
        if gap > end and gap < len(text) and is_letter(text[gap]):
            return True
    return False


def _foreign_postcode_hint(text: str, runs: Sequence[Run]) -> bool:
    """Tell whether a British or Dutch postcode may be here; _FOREIGN_POSTCODE_RE confirms it.

    Both start next to a run of digits, so they are looked for only there instead of
    searching the whole post: a British postcode's first digit starts a run right after a
    capital ("SW1A 1AA"), a Dutch postcode's two capitals follow a run of four or more digits
    directly or after one white-space character ("1234 AB Amsterdam").
    """
    for start, end in runs:
        if "A" <= text[start - 1 : start] <= "Z" and _UK_POSTCODE_HINT_RE.match(text, start - 1):
            return True
        if end - start >= 4:
            after = end + 1 if text[end : end + 1].isspace() else end
            if (
                "A" <= text[after : after + 1] <= "Z"
                and "A" <= text[after + 1 : after + 2] <= "Z"
                and _NL_POSTCODE_TAIL_RE.match(text, after + 2)
            ):
                return True
    return False


def _postcode_matches(text: str, runs: Sequence[Run]) -> Iterator[re.Match[str]]:
    """Yield what ``_POSTCODE_CITY_RE.finditer`` yields, trying it only near postcodes."""
    # A postcode is a whole run of four or five digits before white space, perhaps after a
    # two- or three-character country prefix; the match is tried at the three places where
    # it can then start, leftmost first.
    pos = 0
    for digits, end in runs:
        if not (4 <= end - digits <= 5 and text[end : end + 1].isspace()):
            continue
        for start in (digits - 3, digits - 2, digits):
            if start >= pos and (match := _POSTCODE_CITY_RE.match(text, start)):
                pos = match.end()
                yield match
                break


def find_addresses(
    text: str, runs: Sequence[Run] | None = None, lowered: str | None = None
) -> Iterator[Entity]:
    """Yield street addresses and postcode-city pairs; a street followed by its city is one span.

    ``runs`` and ``lowered`` are what ``digit_runs(text)`` and ``text.lower()`` return, if
    the caller has them already.
    """
    if runs is None:
        runs = digit_runs(text)
    # Substring tests gate the costly scans: most posts name no street at all.
    streets: list[tuple[int, int]] = []
    # A house number follows a word; the full street regex only looks at the words before
    # such numbers, since scanning the whole post with it costs most of the time budget.
    for number, _ in runs:
        word_end = _word_end_before(text, number)
        if word_end < 0:
            continue
        # Lower-cased whole, as str.lower() may change the length of a single character.
        if lowered is None:
            lowered = text.lower()
        head = lowered[max(0, word_end - 12) : word_end].rstrip(".")
        if head.endswith(_SUFFIXES) or (
            _PREFIX_WORD_RE.search(text, max(0, word_end - 40), word_end)
            and _PREFIX_HINT_RE.search(text, max(0, word_end - 40), word_end)
        ):
            window = max(0, word_end - 60)
            for match in _STREET_RE.finditer(text, window, min(len(text), number + 13)):
                # "SPRING20" is a promo code: capitals glued to digits are no street.
                if match.group("street").isupper() or match.end() < word_end:
                    continue
                if (match.start(), match.end()) not in streets:
                    streets.append((match.start(), match.end()))
    if _UK_HINT_RE.search(text):
        streets.extend((m.start(), m.end()) for m in _UK_STREET_RE.finditer(text))
    streets.sort()
    if not streets and not _postcode_hint(text, runs):
        return
    used_street_ends: set[int] = set()
    spans: list[tuple[int, int]] = []
    postcodes = _postcode_matches(text, runs) if _plz_hint(text, runs) else ()
    for match in postcodes:
        before = next((s for s in streets if _JOIN_RE.fullmatch(text, s[1], match.start())), None)
        # A four-digit postcode is an Austrian or Swiss one only with a known city or street.
        if (
            len(match.group("plz")) == 4
            and before is None
            and match.group("city").casefold() not in cities()
        ):
            continue
        span = _city_span(match, before is not None)
        if span is None:
            continue
        if before is not None:
            used_street_ends.add(before[1])
            span = (before[0], span[1])
        spans.append(span)
    foreign = _FOREIGN_POSTCODE_RE.finditer(text) if _foreign_postcode_hint(text, runs) else ()
    for match in foreign:
        start = (
            match.start()
            if match.group("pre") is None or match.group("pre") not in _NOT_CITY
            else match.start("uk")
        )
        before = next((s for s in streets if _JOIN_RE.fullmatch(text, s[1], start)), None)
        if before is not None:
            used_street_ends.add(before[1])
            start = before[0]
        spans.append((start, match.end()))
    spans.extend(s for s in streets if s[1] not in used_street_ends)
    for start, end in spans:
        yield Entity(ADDRESS, start, end)
