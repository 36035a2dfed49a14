"""Name lexicons (bundled lists, stop words) and matching of names the caller knows."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterator
from functools import lru_cache
from importlib import resources

from anonymizer.entity import HANDLE, PERSON, Entity

# Words that are names in some list but far more often something else in a German or
# English post: they need a title, a cue or a surname next to them to count as a name.
AMBIGUOUS = frozenset(
    """
    mark frank ernst wolf rose iris heide linde will may art bill hope grace joy summer winter
    sommer lange klein fuchs kaiser könig engel stern sonne paris florence holland jordan chance
    page amber crystal sky rain dean major lord earl rich don guy ray sunny august april june
    nur can line else beat us darin said lee tan tea toy van mir nas ira ole jo
    """.split()
)
# Capitalised words that are never names here even when a list has them: brands, places,
# greetings, weekdays and the words customers start sentences with.
STOP = frozenset(
    """
    telekom vodafone amazon dhl dpd gls hermes ups otto zalando apple iphone samsung galaxy
    google netflix spotify lidl aldi rewe edeka penny kaufland rossmann bahn db ice sbahn
    lufthansa eurowings ryanair paypal klarna sparkasse volksbank commerzbank ing check tarif
    mobil magenta congstar allianz ikea mediamarkt saturn tesla bmw audi mercedes porsche opel
    ford golf polo mini smart alexa siri echo kindle prime gmail outlook whatsapp instagram
    facebook twitter tiktok youtube android windows microsoft sony xbox playstation nintendo
    berlin hamburg münchen köln frankfurt stuttgart düsseldorf dortmund essen leipzig bremen
    dresden hannover nürnberg london wien rom paris zürich deutschland germany europa
    montag dienstag mittwoch donnerstag freitag samstag sonntag monday tuesday wednesday
    thursday friday saturday sunday januar februar märz mai juni juli oktober november
    dezember january february march july october december
    hallo hi hey danke bitte team service support kundenservice kundendienst herr frau
    sie wir ich du er es ihr aber wenn kann will leider seit immer heute morgen gestern alles
    also jetzt noch schon mal gut super toll warum wieso weshalb was wie wo wer der die das
    ein eine mein meine dein euer eure und oder doch ja nein nee ok okay na naja ach echt mega
    top liebe lieber liebes grüße gruß viele beste the and but this that thanks thank hello
    dear love best kind regards cheers not no yes you your my our his her they them we
    german english deutsch server pro plus ultra earl admin user kunde kundin
    """.split()
)
TITLES = frozenset("herr herrn frau hr fr mr mrs ms miss dr prof sir madam madame monsieur".split())

# Non-ASCII characters that lower-case to themselves but case-fold to ASCII letters: a word
# that case-folds to a title either lower-cases to it or holds one of them. A scan of every
# code point lists just these, 'ẞ' (lower-cased 'ß') and the Kelvin sign (lower-cased 'k'):
# [c for c in map(chr, range(0x110000)) if c.casefold().isascii() and not c.isascii()]
_FOLD_PIECES = {char: char.casefold() for char in "ßſﬀﬁﬂﬃﬄﬅﬆ"}


def _spellings(folded: str) -> set[str]:
    """Return every spelling of an ASCII word with the characters of ``_FOLD_PIECES``."""
    if not folded:
        return {""}
    found = {folded[0] + rest for rest in _spellings(folded[1:])}
    for char, piece in _FOLD_PIECES.items():
        if folded.startswith(piece):
            found.update(char + rest for rest in _spellings(folded[len(piece) :]))
    return found


# Lower-cased words that case-fold to a title without being one ("miß", "mſ").
FOLDED_TITLES = frozenset(word for title in TITLES for word in _spellings(title)) - TITLES

# Surname particles that stay inside a name span ("Frau von der Leyen", "Omar al-Masri").
PARTICLES = frozenset(
    "von vom van der den de del della di da le la zu zur al el bin ibn ten".split()
)

# A surname particle or salutation alone would match ordinary words all over the text.
_NAME_PART_STOPWORDS = frozenset(
    {"von", "van", "der", "den", "dem", "zum", "zur", "del", "della", "les", "los"}
    | {"frau", "herr", "mrs", "miss", "prof", "dipl", "ing"}
)
_MIN_NAME_PART = 3
_HANDLE_RE = re.compile(r"@\w(?:[\w.]*\w)?(?:@[\w.\-]+)?")
_FOLD = str.maketrans({"ı": "i", "ß": "ss"})
_EXPAND = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _variants(name: str) -> set[str]:
    """Return a name case-folded as written, without accents and with umlauts spelled out."""
    folded = name.casefold()
    plain = unicodedata.normalize("NFKD", folded.translate(_FOLD))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return {folded, plain, folded.translate(_EXPAND)}


def _load(filename: str) -> frozenset[str]:
    """Return the variants of every entry of one bundled list."""
    text = resources.files("anonymizer.data").joinpath(filename).read_text("utf-8")
    entries: set[str] = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            entries |= _variants(line.strip())
    return frozenset(entries)


@lru_cache(maxsize=1)
def lexicon() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Return the first-name, surname and never-a-name sets, loaded once per process."""
    common = _load("common_words.txt") | _load("cities.txt") | STOP
    first = _load("first_names.txt")
    surnames = _load("surnames.txt")
    # A common word stays usable as a surname after a first name ("Jana Koch"), but is
    # only a first name with a cue.
    return first, surnames, common


def _name_patterns(name: str) -> list[tuple[str, str]]:
    """Return regex alternatives for a known name: the whole name and its longer parts,
    each with the characters that a match of it can start with."""
    words = name.strip().split()
    if not words:
        return []
    if len(words) == 1:
        bare = words[0].removeprefix("@")
        return [(rf"@?{re.escape(bare)}", "@" + bare[0])] if bare else []
    patterns = [(r"\s+".join(re.escape(word) for word in words), words[0][0])]
    for word in words:
        part = word.strip(".,;:()\"'")
        if len(part) >= _MIN_NAME_PART and part.casefold() not in _NAME_PART_STOPWORDS:
            patterns.append((re.escape(part), part[0]))
    # German genitive ("Janas Paket", "Müllers Antwort") would otherwise leave the name.
    return [(rf"{pattern}s?", start) for pattern, start in patterns]


@lru_cache(maxsize=2048)
def _known_regex(names: frozenset[str]) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    """Compile one alternation for a set of known names; authors repeat, so cache it.

    Return the regex, and the same one led by the character before a match, whose group
    "name" holds the match: see _known_spans.
    """
    alternatives = [alternative for name in names for alternative in _name_patterns(name)]
    patterns = sorted({pattern for pattern, _ in alternatives}, key=len, reverse=True)
    if not patterns:
        return None
    # Every match starts with one of these characters. With IGNORECASE, a character in a
    # class matches at least what it matches as a literal, so the look-ahead only rejects
    # positions where no alternative could match; it rejects most of them at once, before
    # the alternatives are tried, which saves a third of the search.
    starts = "".join(sorted({re.escape(char) for _, start in alternatives for char in start}))
    body = rf"(?=[{starts}])(?:{'|'.join(patterns)})(?!\w)"
    return (
        re.compile(rf"(?<![\w@]){body}", re.IGNORECASE),
        re.compile(rf"(?-i:[^\w@])(?P<name>{body})", re.IGNORECASE),
    )


def _known_spans(
    text: str, whole: re.Pattern[str], after_gap: re.Pattern[str]
) -> Iterator[tuple[int, int]]:
    """Yield the spans of what ``whole.finditer(text)`` finds, searching with ``after_gap``."""
    # A match starts at the text's start or after a character that is neither a word
    # character nor '@'. Searching for that character first costs a fifth less than trying
    # the look-ahead, which folds case, at every character.
    match = whole.match(text)
    end = 0
    if match is not None:
        end = match.end()
        yield match.span()
    # The search goes on from a match's last character: it may be the one before the next.
    while (match := after_gap.search(text, max(end - 1, 0))) is not None:
        end = match.end()
        yield match.span("name")


def find_known_names(text: str, known_names: Collection[str]) -> Iterator[Entity]:
    """Yield PERSON (or HANDLE, for '@'-prefixed handle tokens) entities for known names."""
    if not known_names:
        return
    regexes = _known_regex(frozenset(known_names))
    if regexes is None:
        return
    for start, end in _known_spans(text, *regexes):
        name = text[start:end]
        is_handle = name.startswith("@") and _HANDLE_RE.fullmatch(name)
        yield Entity(HANDLE if is_handle else PERSON, start, end)
