"""How X counts the length of a post (twitter-text v3 weighting) and how to compare two texts.

twitter-text v3 config (the one X's web client and API enforce): after NFC normalisation,
each code point in 0–4351, 8192–8205, 8208–8223 or 8242–8247 weighs 1 and everything else
weighs 2; an emoji sequence (ZWJ family, flag, keycap, skin tone) weighs 2 as a whole; every
URL weighs 23 however long it is, because X rewrites it to a t.co link. The limit is 280.

The URL rule is an approximation of twitter-text's extractor: links with http(s):// and bare
domains on a list of common TLDs count as URLs. A domain we miss is counted by its characters,
which X may then refuse; the refusal reaches the agent as ReplyRefused.
"""

from __future__ import annotations

import html
import re
import unicodedata

MAX_TWEET_WEIGHT = 280
URL_WEIGHT = 23

_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

# Common TLDs only: twitter-text ships the whole IANA list, which is far more than replies
# of a German/EU care team need.
_TLDS = (
    "com|de|at|ch|eu|net|org|info|biz|io|co|app|shop|store|online|site|tech|dev|me|tv|ly|gl|"
    "uk|fr|nl|be|lu|it|es|pt|pl|cz|dk|se|no|fi|ie|gr|hu|ro|sk|si|hr|bg|lt|lv|ee|li|us|ca|"
    "gmbh|berlin|hamburg|koeln|bayern|nrw|email|link|page|help|support"
)
# A URL never ends in punctuation that closes the sentence around it.
_TAIL = r"""[^\s<>"'.,;:!?)\]]"""
_HOST_TAIL = r"""[^\s/?#<>"'.,;:!?)\]]"""
_SCHEME_URL = rf"""https?://[^\s/?#<>"]*{_HOST_TAIL}(?:[/?#](?:[^\s<>"]*{_TAIL})?)?"""
_BARE_URL = (
    r"(?<![\w@.\-/])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
    rf"(?:{_TLDS})(?![\w-])(?::\d{{1,5}})?(?:/(?:[^\s<>\"]*{_TAIL})?)?"
)
URL_RE = re.compile(f"{_SCHEME_URL}|{_BARE_URL}", re.IGNORECASE)

_PICT = (
    "[\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a-\u23ff\u24c2\u25aa-\u27bf"
    "\u2934\u2935\u2b00-\u2bff\u3030\u303d\u3297\u3299\U0001f000-\U0001faff]"
)
# © and ® are plain text (weight 1) unless the emoji presentation selector follows.
_TEXT_DEFAULT = "[\u00a9\u00ae]\ufe0f"
_MODIFIER = "(?:\ufe0f|[\U0001f3fb-\U0001f3ff]|[\U000e0020-\U000e007f])"
_EMOJI = (
    "[\U0001f1e6-\U0001f1ff]{2}"
    "|[0-9#*]\ufe0f?\u20e3"
    f"|(?:{_PICT}|{_TEXT_DEFAULT}){_MODIFIER}*(?:\u200d{_PICT}{_MODIFIER}*)*"
)
_TOKEN = re.compile(f"(?P<url>{_SCHEME_URL}|{_BARE_URL})|(?P<emoji>{_EMOJI})|.", re.I | re.S)
_LEADING_MENTIONS = re.compile(r"^(?:[@＠]\w{1,15}\s+)+")


def _weight(char: str) -> int:
    point = ord(char)
    return 1 if any(low <= point <= high for low, high in _LIGHT_RANGES) else 2


def weighted_length(text: str) -> int:
    """Count a text the way X counts it against the 280 limit."""
    total = 0
    for match in _TOKEN.finditer(unicodedata.normalize("NFC", text)):
        if match.group("url"):
            total += URL_WEIGHT
        elif match.group("emoji"):
            total += 2
        else:
            total += _weight(match.group())
    return total


def comparable(text: str) -> str:
    """Reduce a text to what survives X's rewriting, to recognise a reply we already sent."""
    # X escapes &, < and > in v2 tweet text, rewrites links to t.co and may prepend the
    # @handles of a reply; none of that makes it a different reply.
    plain = unicodedata.normalize("NFC", html.unescape(text)).strip()
    plain = _LEADING_MENTIONS.sub("", plain)
    plain = URL_RE.sub("\x00", plain)
    return " ".join(plain.split())
