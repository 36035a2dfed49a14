"""Context cues that announce a person's name: introductions, greetings and sign-offs."""

from __future__ import annotations

import re

WEAK, LINE, STRONG = 1, 2, 3

# Introductions and sign-offs are followed by the writer's own name so reliably that an
# unlisted but capitalised word after them counts ("Gruß Kowalczyk"). Greetings and
# thanks name someone often enough that a listed first name counts, even an ambiguous
# one, but an unlisted word does not ("Hallo zusammen"). Cues are matched on tokens,
# which is an order of magnitude faster than a case-insensitive regex alternation.
_STRONG_PHRASES = """
ich heiße|ich heisse|ich heise|mein name ist|mein name|my name is|my name's|hier ist|
hier schreibt|this is|name|viele grüße|viele grüsse|viele gruesse|liebe grüße|liebe grüsse|
liebe gruesse|beste grüße|beste grüsse|freundliche grüße|herzliche grüße|schöne grüße|
sonnige grüße|mit freundlichen grüßen|mit freundlichen grüssen|mit freundlichen gruessen|
mfg|lg|vg|bg|gruß|grüße|gruss|grüsse|gruesse|best regards|kind regards|warm regards|regards|
cheers|best|sincerely|yours|signed|gez|unterschrift|z hd|zu händen|zu haenden|attn|
dziękuję|dziekuje|dzięki|dzieki|teşekkürler|tesekkurler|sağol|sagol|spasibo|gracias|grazie|
agent|agentin|mitarbeiter|mitarbeiterin|kollege|kollegin|sachbearbeiter|sachbearbeiterin|
berater|beraterin|ansprechpartner|ansprechpartnerin|kundenberater|kundenberaterin
"""
_WEAK_PHRASES = """
hallo|hallöchen|hi|hey|moin|servus|huhu|hello|dear|liebe|lieber|liebes|sehr geehrte|
sehr geehrter|sehr geehrtes|danke|danke an|danke schön|danke sehr|vielen dank|vielen dank an|
dankeschön|thanks|thanks to|many thanks|thank you|thx|merci|grüße an|gruß an|shoutout to|
shoutout an|ich bin|i am|i'm|it's|it is|called|namens|named|frage an|cc
"""


def _table(phrases: str, level: int) -> dict[tuple[str, ...], int]:
    """Return cue phrases as word tuples mapped to their evidence level."""
    return {tuple(p.split()): level for p in phrases.replace("\n", "").split("|") if p.strip()}


CUES = {**_table(_WEAK_PHRASES, WEAK), **_table(_STRONG_PHRASES, STRONG)}
CUE_LAST_WORDS = frozenset(words[-1] for words in CUES)
# Every tail of a cue phrase: a run of words that is none of these ends no cue.
CUE_TAILS = frozenset(words[at:] for words in CUES for at in range(len(words)))
MAX_CUE_WORDS = max(len(words) for words in CUES)
# The level of each cue's last word as a cue of its own (often none: "is", "ist"), the
# strongest level of any cue that ends with it, and the words before it in the longer
# cues that end with it: after any other word it ends no longer cue.
CUE_WORD_LEVELS = {word: CUES.get((word,), 0) for word in CUE_LAST_WORDS}
CUE_TOP_LEVELS = {
    word: max(level for words, level in CUES.items() if words[-1] == word)
    for word in CUE_LAST_WORDS
}
CUE_PREVIOUS = {
    word: frozenset(words[-2] for words in CUES if len(words) > 1 and words[-1] == word)
    for word in CUE_LAST_WORDS
}
# "name: Jana" is an introduction; "der Name des Produkts" is not.
COLON_CUES = frozenset({"name"})
# "Ola here, ..." and "Kat hier:" put the cue after the name.
AFTER_CUES = frozenset({"here", "hier"})

# Between a cue and the name: punctuation, spaces and line breaks, nothing else.
CUE_GAP_RE = re.compile(r"[ \t]*[,:;!.\-–—~]*[ \t]*(?:\r?\n[ \t\-~–—]*)*")
WORD_GAP_RE = re.compile(r"[ \t]+|\.[ \t]*|[ \t]*\n[ \t]*")
# A lone word closing the post after a full stop is a signature ("... often. Pete").
CLOSING_RE = re.compile(r"[ \t]*[.!]?[ \t]*$")
CLOSING_BEFORE_RE = re.compile(r"[.!?)][ \t]*|\n[ \t\-~–—]*")
# Agents sign replies with their initials ("^JS"), a convention of care teams on X.
INITIALS_RE = re.compile(r"(?<![\w^])\^(?P<initials>[A-ZÄÖÜ]{2,3})(?![\w])")
