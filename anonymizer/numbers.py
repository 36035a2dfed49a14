"""Detect phone numbers, IBANs, card numbers, IP addresses, reference numbers and birth dates."""

from __future__ import annotations

import ipaddress
import itertools
import re
import string
from collections.abc import Iterator, Sequence
from functools import lru_cache

import phonenumbers

from anonymizer.digits import Run, digit_runs
from anonymizer.entity import (
    CREDIT_CARD,
    DATE_OF_BIRTH,
    IBAN,
    ID_NUMBER,
    IP_ADDRESS,
    PHONE,
    Entity,
)
from anonymizer.patterns import group_by_first_letter

# Only runs that start with '+', '00' or a trunk '0' (optionally bracketed) and use
# space, '-', '/' or parentheses as separators: dates (dots), prices (commas) and order
# numbers such as 4711-2024 can never form a candidate, so phonenumbers, which is slow,
# only ever sees a handful of strings. The length cap keeps digit floods linear.
# Written so that every branch starts with its first character and checks what precedes
# it afterwards: the engine then jumps between '(', '+' and '0' instead of trying every
# position. The same holds for the card, IPv4 and IBAN patterns below.
_PHONE_CANDIDATE_RE = re.compile(
    r"(?:\((?<![\w#+.,/\-]\()(?:\+|0)|\+(?<![\w#+.,/\-]\+)|0(?<![\w#+.,/\-]0))[\d \-/()]{0,28}\d"
)
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
_PHONE_BUDGET = 200

# Country code -> IBAN length for the countries whose customers write to EU companies;
# the rest of the world's IBANs are still caught when a checksum fits any length 15-34.
_IBAN_LENGTHS = {
    "DE": 22, "AT": 20, "CH": 21, "NL": 18, "BE": 16, "FR": 27, "IT": 27, "ES": 24,
    "PL": 28, "LU": 20, "DK": 18, "SE": 24, "FI": 18, "IE": 22, "GB": 22, "PT": 25,
    "CZ": 24, "SK": 24, "HU": 28, "RO": 24, "BG": 22, "HR": 21, "SI": 19, "GR": 27,
    "TR": 26, "LI": 21, "NO": 15, "EE": 20, "LV": 21, "LT": 20, "MT": 31, "CY": 28,
}  # fmt: skip
_IBAN_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}")
_ALNUM_RE = re.compile(r"[A-Za-z0-9]")
_ASCII_LETTERS = frozenset(string.ascii_letters)
# ISO 7064 turns each letter into two digits: A = 10 ... Z = 35.
_IBAN_LETTER_VALUES = str.maketrans({char: str(int(char, 36)) for char in string.ascii_uppercase})

# Issuer prefixes keep 13-19 digit order and tracking numbers, a tenth of which pass
# Luhn by chance, out: Visa, Mastercard, Amex, Diners, Discover/Maestro, JCB, UnionPay.
_CARD_RE = re.compile(
    r"[2-6](?<![\d\-/.,+][2-6])(?:(?<=4)|(?<=5)[0-8]|(?<=2)[2-7]|(?<=3)[0-8]|(?<=6))"
    r"\d(?:[ \-]?\d){11,17}(?![\d\-/.,]\d)"
)

_CARD_SPLIT_RE = re.compile(r"[ \-]")
# How issuers print numbers: 4-4-4-4 (and longer), Amex and Diners 4-6-5 / 4-6-4.
_CARD_GROUPINGS = frozenset(
    {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 6, 5), (4, 6, 4), (4, 4, 4, 3)}
)

# Four dotted octets; what precedes or follows must not continue the run, so a version
# like 1.2.3 or a date never forms one, and "Version 10.0.0.1" is excluded below.
_IPV4_RE = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)")
_IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}|:)?(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_VERSION_CUE_RE = re.compile(r"(?i)(?:version|vers\.|ver\.|\bv|firmware|update|build)\s*$")

# Reference numbers only count next to a cue: a bare number is a price, a train or a
# quantity far more often than a customer number.
_ID_CUE_WORDS = (
    "kunde?n?", "anschluss", r"kd\.?-?", "kd", "vertrags", "vertrag", "bestell", "auftrags",
    "auftrag", "sendungs", "sendung", "sendungsverfolgungs", "tracking", "rechnungs", "ticket",
    "vorgangs", "referenz", "mitglieds", "versicherungs", "zähler", "paket", "retouren",
    "reklamations", "antrags", "kunden-", "service", "buchungs", "konto", "fall", "storno", "abo",
    "order", "customer", "account", "member", "booking", "reference", "invoice", "contract",
    "case", "ref",
)  # fmt: skip
_ID_CUE = (
    rf"(?:{group_by_first_letter(_ID_CUE_WORDS)})"
    r"(?:[ .-]?(?:nummer|nr\.?|no\.?|number|num\.?|id|code|#))?"
    r"|bestellung|rechnung|ticket|tracking|order|case|auftrag|sendung|vertrag|invoice"
)
_ID_RE = re.compile(
    rf"(?i)(?<![\w-])(?:{_ID_CUE})(?![\w])(?:\s*(?:[:#=]|-|,|ist|is|lautet|wäre|war|number|nummer|no\.|nr\.)){{0,2}}"
    r"(?:(?:\s+[a-zäöüß]+){1,3}\s*:)?\s*#?"
    r"(?P<id>(?=[A-Za-z\-/]*\d)[A-Za-z0-9](?:[A-Za-z0-9\-/_]|\.(?=\w)|\s(?=\d{3}))*[A-Za-z0-9])"
)
# Every cue above starts with one of these (in lower case); a post without any skips the
# regex scan, and a post with some only tries the regex where one starts.
_ID_HINTS = (
    "kund", "anschluss", "kd", "vertrag", "bestell", "auftrag", "sendung", "tracking",
    "rechnung", "ticket", "vorgang", "referenz", "mitglied", "versicherung", "zähler", "paket",
    "retour", "reklamation", "antrag", "service", "buchung", "konto", "fall", "storno", "abo",
    "order", "customer", "account", "member", "booking", "ref", "invoice", "contract", "case",
)  # fmt: skip


def _word_starts(words: Sequence[str]) -> str:
    """Return an alternation of words, each not preceded by [\\w-], grouped by first letter.

    Every branch starts with a literal, so the engine jumps between those letters. The
    look-behind comes after the whole word: testing the character before a word for [\\w-]
    looks it up in the Unicode tables, which costs more than comparing the word's letters,
    and most of the letters the engine stops at begin no word of the list.
    """
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word)
    return "|".join(
        f"{re.escape(head)}(?:"
        + "|".join(f"{re.escape(w[1:])}(?<![\\w-]{re.escape(w)})" for w in group)
        + ")"
        for head, group in groups.items()
    )


# Lower-casing keeps what is and is not [\w-], so this finds the cue starts in the
# lower-cased text.
_ID_HINT_RE = re.compile(_word_starts(_ID_HINTS))
_DOB_HINTS = ("geb", "born", "dob", "birth", "d.o.b", "jahrgang")
_DOB_HINT_RE = re.compile("|".join(re.escape(hint) for hint in _DOB_HINTS))
# Where a match of _DOB_RE can start (each cue begins with one of these), and what a
# match of _DOB_AFTER_RE must contain (in lower case): every date ends with a digit.
_DOB_CUE_STARTS = ("geb", "born", "dob", "d.o.b", "date of birth", "birth", "jahrgang")
_DOB_AFTER_HINT_RE = re.compile(r"\d[ \t]{0,3}(?:geboren|als\s+geburtsdatum|born)")
# "Kundennummer 66778899, meine 66778900": a list of IDs after one cue. A follower only
# counts when it is about as long as the first, so "Nr. 1234, 2024 bestellt" stays.
_ID_MORE_RE = re.compile(
    r"[ \t]*(?:,|;|/|&|und|oder|and|or|sowie)[ \t]*"
    r"(?:(?:meine|mine|my|die|der|seine|ihre)[ \t]+)?#?"
    r"(?P<id>(?=[A-Za-z\-/]*\d)[A-Za-z0-9][A-Za-z0-9\-/_]*[A-Za-z0-9])(?![\w.,]\d)"
)
# The look-behind follows the '#' so that the engine can jump from '#' to '#'.
_HASH_ID_RE = re.compile(r"#(?<![\w&]#)(?P<id>\d[\dA-Za-z\-]{3,}[\dA-Za-z])(?!\w)")
_DATE_LIKE_RE = re.compile(r"\d{1,4}[./-]\d{1,2}(?:[./-]\d{1,4})?|\d{1,2}:\d{2}")

_MONTHS = (
    r"jan(?:uar|uary)?|feb(?:ruar|ruary)?|m(?:ä|ae)rz|march|mar|apr(?:il)?|mai|may|"
    r"jun[ie]?|jul[iy]?|aug(?:ust)?|sep(?:t|tember)?|okt(?:ober)?|oct(?:ober)?|"
    r"nov(?:ember)?|dez(?:ember)?|dec(?:ember)?"
)
# Every character that starts a month name or a digit, ignoring case ('ſ' is an 's' to
# the regex engine): one class test spares trying the month names at most positions.
# The classes list every case themselves, so they are matched case-sensitively, which
# spares folding the case of each character: a scan of all code points finds that the
# class matches the same characters either way.
_MONTH_START = "(?=(?-i:[jfmasondJFMASOND\u017f]))"
_DATE_START = "(?=(?-i:[\\djfmasondJFMASOND\u017f]))"
_DATE = (
    rf"\d{{1,2}}\s?[./-]\s?\d{{1,2}}\s?[./-]\s?(?:\d{{4}}|\d{{2}})(?!\d)"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}"
    rf"|\d{{1,2}}\.?\s*(?:{_MONTHS})\.?\s*\d{{4}}"
    rf"|{_MONTH_START}(?:{_MONTHS})\.?\s*\d{{1,2}}(?:st|nd|rd|th)?,?\s*\d{{4}}"
)
# "ich bin am 3.7.1994 geboren": German puts the cue after the date.
_DOB_AFTER_RE = re.compile(
    rf"(?i){_DATE_START}(?<![\d.])(?P<date>{_DATE})[ \t]{{0,3}}(?:geboren|als\s+geburtsdatum|born)"
)
_DOB_RE = re.compile(
    r"(?i)(?:geboren|geb\.|geb\b|geburtsdatum|geburtstag|geburtstag ist|born|dob|d\.o\.b\.?|"
    r"date of birth|birth ?date|birthday|jahrgang)"
    rf"[^\d\n]{{0,16}}?(?P<date>{_DATE})"
)


def _balanced(span: str) -> bool:
    """Tell whether every ')' in a phone span closes an earlier '('."""
    depth = 0
    for char in span:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0


@lru_cache(maxsize=4096)
def _valid_phone(candidate: str, region: str) -> bool:
    """Tell whether a candidate is a valid, or a possible and phone-shaped, number."""
    digits = sum(map(str.isdigit, candidate))
    if not _PHONE_MIN_DIGITS <= digits <= _PHONE_MAX_DIGITS or not _balanced(candidate):
        return False
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    if phonenumbers.is_valid_number(number):
        return True
    return phonenumbers.is_possible_number(number) and bool(_PHONE_SHAPED_RE.fullmatch(candidate))


def find_phones(text: str, region: str) -> Iterator[Entity]:
    """Yield phone numbers: cheap candidate runs, each validated by phonenumbers."""
    pos = 0
    # A parse budget linear in the text length keeps hostile digit floods cheap.
    budget = _PHONE_BUDGET + len(text) // 8
    while budget > 0 and (match := _PHONE_CANDIDATE_RE.search(text, pos)):
        start, run = match.start(), match.group()
        pos = start + 1
        if _DATE_LIKE_RE.fullmatch(run):
            continue
        # "(0171 1234567)" is a bracketed number, "(0221) 123456" a bracketed area code.
        for skip in (0, 1) if run.startswith("(") else (0,):
            ends = [m.end() for m in _PHONE_GROUP_END_RE.finditer(run, skip)]
            hit = 0
            for rel_end in reversed(ends):
                budget -= 1
                if _valid_phone(run[skip:rel_end], region):
                    hit = rel_end
                    break
            if hit:
                yield Entity(PHONE, start + skip, start + hit)
                pos = start + hit
                break


def _iban_ok(compact: str) -> bool:
    """Tell whether an upper-case IBAN without spaces passes the ISO 7064 mod-97 check."""
    rearranged = compact[4:] + compact[:4]
    return int(rearranged.translate(_IBAN_LETTER_VALUES)) % 97 == 1


def _end_of_char(group: str, count: int) -> int:
    """Return the offset in ``group`` just after its ``count``-th character that is no separator."""
    seen = 0
    for offset, char in enumerate(group):
        if char not in " -":
            seen += 1
            if seen == count:
                return offset + 1
    return len(group)


def _iban_matches(text: str, runs: Sequence[Run]) -> Iterator[re.Match[str]]:
    """Yield what ``_IBAN_RE.finditer`` yields, trying the regex only where one can start."""
    # An IBAN starts with two ASCII letters right before a run of at least two digits.
    pos = 0
    for start, end in runs:
        if not (
            end - start >= 2
            and start >= 2
            and text[start - 1] in _ASCII_LETTERS
            and text[start - 2] in _ASCII_LETTERS
        ):
            continue
        if start - 2 >= pos and (match := _IBAN_RE.match(text, start - 2)):
            pos = match.end()
            yield match


def find_ibans(text: str, runs: Sequence[Run] | None = None) -> Iterator[Entity]:
    """Yield checksum-valid IBANs, spaced or not, in any letter case.

    ``runs`` is what ``digit_runs(text)`` returns, if the caller has it already.
    """
    for match in _iban_matches(text, digit_runs(text) if runs is None else runs):
        group = match.group()
        # The regex takes [A-Za-z0-9] and separators, but "\d" for the check digits: a
        # non-ASCII digit there is no part of the IBAN, and the offsets must skip it.
        compact = "".join(_ALNUM_RE.findall(group)).upper()
        ascii_only = group.isascii()
        lengths = (
            [_IBAN_LENGTHS[compact[:2]]] if compact[:2] in _IBAN_LENGTHS else range(34, 14, -1)
        )
        for length in lengths:
            if length <= len(compact) and _iban_ok(compact[:length]):
                if ascii_only:
                    end = match.start() + _end_of_char(group, length)
                else:
                    ends = [m.end() for m in _ALNUM_RE.finditer(group)]
                    end = match.start() + ends[length - 1]
                if end == match.end() or not text[end].isalnum():
                    yield Entity(IBAN, match.start(), end)
                break


def _luhn_ok(digits: str) -> bool:
    """Tell whether a digit string passes the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card_matches(text: str, runs: Sequence[Run]) -> Iterator[re.Match[str]]:
    """Yield what ``_CARD_RE.finditer`` yields: a card number starts where a digit run does."""
    # A card has at least 13 digits: a shorter run must be followed by a separator.
    pos = 0
    for start, end in runs:
        if (
            start >= pos
            and text[start] in "23456"
            and (end - start >= 13 or text[end : end + 1] in (" ", "-"))
            and (match := _CARD_RE.match(text, start))
        ):
            pos = match.end()
            yield match


def find_cards(text: str, runs: Sequence[Run] | None = None) -> Iterator[Entity]:
    """Yield Luhn-valid payment card numbers of 13 to 19 digits.

    ``runs`` is what ``digit_runs(text)`` returns, if the caller has it already.
    """
    for match in _card_matches(text, digit_runs(text) if runs is None else runs):
        start = match.start()
        # The tail of a longer spaced run (an IBAN with a bad checksum) is not a card.
        if start >= 2 and text[start - 1] == " " and text[start - 2].isdigit():
            continue
        groups = [len(group) for group in _CARD_SPLIT_RE.split(match.group())]
        if len(groups) > 1 and tuple(groups) not in _CARD_GROUPINGS:
            continue
        digits = "".join(ch for ch in match.group() if ch.isdigit())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            yield Entity(CREDIT_CARD, match.start(), match.end())


def _ipv4_matches(text: str, runs: Sequence[Run]) -> Iterator[re.Match[str]]:
    """Yield what ``_IPV4_RE.finditer`` yields: an address starts where a digit run does."""
    pos = 0
    for start, end in runs:
        # The first octet is the whole run, one to three digits, and a '.' follows it.
        if end - start > 3 or text[end : end + 1] != ".":
            continue
        if start >= pos and (match := _IPV4_RE.match(text, start)):
            pos = match.end()
            yield match


def find_ips(text: str, runs: Sequence[Run] | None = None) -> Iterator[Entity]:
    """Yield IPv4 and IPv6 addresses that the ipaddress module accepts.

    ``runs`` is what ``digit_runs(text)`` returns, if the caller has it already.
    """
    ipv4: Iterator[re.Match[str]] | tuple[()] = ()
    if text.count(".") >= 3:
        ipv4 = _ipv4_matches(text, digit_runs(text) if runs is None else runs)
    for match in ipv4:
        if _VERSION_CUE_RE.search(text, max(0, match.start() - 12), match.start()):
            continue
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        yield Entity(IP_ADDRESS, match.start(), match.end())
    if "::" in text or text.count(":") >= 5:
        for match in _IPV6_RE.finditer(text):
            candidate = match.group()
            if sum(map(str.isalnum, candidate)) < 2:
                continue
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            yield Entity(IP_ADDRESS, match.start(), match.end())


def _id_end(text: str, start: int, end: int) -> int:
    """Return where an ID token really ends: without trailing separators."""
    while end > start and text[end - 1] in "-/_. ":
        end -= 1
    return end


@lru_cache(maxsize=256)
def _compile_extra(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """Compile an account's own ID patterns into one alternation."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))


def aligned_lower(text: str, lowered: str | None = None) -> str | None:
    """Return ``text`` lower-cased if its offsets and case-insensitive matches carry over.

    ``lowered`` is ``text.lower()``, if the caller has it already.
    """
    # 'İ', 'ı' and 'ſ' are matched differently by a case-insensitive regex from what
    # str.lower() gives; with one of them, or if lower() changes the length, offsets in the
    # lower-cased text are not offsets in the text: the detectors scan the whole text then.
    if lowered is None:
        lowered = text.lower()
    if len(lowered) != len(text) or "\u0130" in text or "\u0131" in text or "\u017f" in text:
        return None
    return lowered


def _cue_matches(text: str, lowered: str | None, stop: int) -> Iterator[re.Match[str]]:
    """Yield what ``_ID_RE.finditer`` yields, trying the regex only where a cue starts.

    An ID's first digit starts a run of digits, so a cue that ends after ``stop``, the start
    of the last run, is followed by no ID.
    """
    if lowered is None:
        folded = text.lower()
        if any(hint in folded for hint in _ID_HINTS):
            yield from _ID_RE.finditer(text)
        return
    pos = 0
    for hint in _ID_HINT_RE.finditer(lowered, 0, stop):
        start = hint.start()
        if start >= pos and (match := _ID_RE.match(text, start)):
            pos = match.end()
            yield match


def find_ids(
    text: str,
    extra_patterns: Sequence[str] = (),
    lowered: str | None = None,
    runs: Sequence[Run] | None = None,
) -> Iterator[Entity]:
    """Yield customer, order, contract, ticket and tracking numbers next to a cue word.

    ``lowered`` and ``runs`` are what ``aligned_lower(text)`` and ``digit_runs(text)``
    return, if the caller has them already.
    """
    if lowered is None:
        lowered = aligned_lower(text)
    if runs is None:
        runs = digit_runs(text)
    stop = runs[-1][0] if runs else 0
    matches: Iterator[re.Match[str]] = _cue_matches(text, lowered, stop)
    if "#" in text:
        matches = itertools.chain(matches, _HASH_ID_RE.finditer(text))
    for match in matches:
        start, end = match.span("id")
        end = _id_end(text, start, end)
        token = text[start:end]
        if sum(map(str.isalnum, token)) < 4 or _DATE_LIKE_RE.fullmatch(token):
            continue
        # "Rechnung 1.234,56 €" is an amount, not an invoice number.
        if end < len(text) and text[end] == "," and text[end + 1 : end + 2].isdigit():
            continue
        yield Entity(ID_NUMBER, start, end)
        size = len(token)
        while (more := _ID_MORE_RE.match(text, end)) and abs(len(more["id"]) - size) <= 2:
            start, end = more.span("id")
            yield Entity(ID_NUMBER, start, end)
    extra = _compile_extra(tuple(extra_patterns)) if extra_patterns else None
    if extra is not None:
        for match in extra.finditer(text):
            if match.end() > match.start():
                yield Entity(ID_NUMBER, match.start(), match.end())


def _dob_matches(text: str, lowered: str, stop: int) -> Iterator[re.Match[str]]:
    """Yield what ``_DOB_RE.finditer`` yields, trying the regex only where a cue starts.

    A date's first digit starts a run of digits, so no cue that ends after ``stop``, the
    start of the last run, is followed by a date.
    """
    starts: set[int] = set()
    for hint in _DOB_CUE_STARTS:
        at = lowered.find(hint, 0, stop)
        while at >= 0:
            starts.add(at)
            at = lowered.find(hint, at + 1, stop)
    pos = 0
    for start in sorted(starts):
        if start >= pos and (match := _DOB_RE.match(text, start)):
            pos = match.end()
            yield match


def find_birth_dates(
    text: str, lowered: str | None = None, runs: Sequence[Run] | None = None
) -> Iterator[Entity]:
    """Yield dates next to a birth cue; other dates are not personal data here.

    ``lowered`` and ``runs`` are what ``aligned_lower(text)`` and ``digit_runs(text)``
    return, if the caller has them already.
    """
    if lowered is None:
        lowered = aligned_lower(text)
    if lowered is None:
        # A substring test costs a fraction of a regex scan, and most posts have no cue.
        if not _DOB_HINT_RE.search(text.lower()):
            return
        matches: Iterator[re.Match[str]] = itertools.chain(
            _DOB_RE.finditer(text), _DOB_AFTER_RE.finditer(text)
        )
    else:
        if runs is None:
            runs = digit_runs(text)
        matches = _dob_matches(text, lowered, runs[-1][0] if runs else 0)
        # Substring tests first: the regex scan costs more, and few posts have either cue.
        if (
            "geboren" in lowered or "born" in lowered or "geburtsdatum" in lowered
        ) and _DOB_AFTER_HINT_RE.search(lowered):
            matches = itertools.chain(matches, _DOB_AFTER_RE.finditer(text))
    for match in matches:
        start, end = match.span("date")
        yield Entity(DATE_OF_BIRTH, start, end)
