"""Building blocks for the detectors' regular expressions."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence


def group_by_first_letter(alternatives: Sequence[str]) -> str:
    """Return regex alternatives as "s(?:tr|teig)|w(?:eg)", keeping their order per letter.

    Every alternative must start with a distinct-enough literal: an ASCII letter. No
    character matches two different ASCII letters, even ignoring case, so the engine tries
    the same alternatives in the same order and finds the same match; but at a character
    it tests one group per letter instead of every alternative, and the regex engine skips
    a group whose letter does not match after a single comparison.
    """
    groups: dict[str, list[str]] = {}
    for alternative in alternatives:
        if not ("a" <= alternative[:1].lower() <= "z" and alternative[:1].isascii()):
            raise ValueError(f"alternative does not start with an ASCII letter: {alternative!r}")
        groups.setdefault(alternative[0], []).append(alternative[1:])
    return "|".join(f"{head}(?:{'|'.join(tails)})" for head, tails in groups.items())


def bmp_class(members: str) -> str:
    """Return the body of a character class matching what ``[members]`` matches in the BMP.

    In a ``str`` regex, ``\\d``, ``\\w`` and ``[^\\W\\d_]`` ask the Unicode database about
    every character they test; the engine tests an explicit class of BMP characters with
    one table look-up instead, two to three times faster. The two classes disagree only on
    the characters beyond the BMP that ``[members]`` matches: a regex finds the same with
    either class on a text without such a character (see wide_members).
    """
    # One scan over every BMP character, in order, finds the members' ranges.
    runs = re.finditer(f"[{members}]+", "".join(map(chr, range(0x10000))))
    return "".join(f"{re.escape(run[0][0])}-{re.escape(run[0][-1])}" for run in runs)


# CPython stores a string with a character beyond the BMP in four bytes per character, after
# a header no smaller than this one's (the terminating character included); other strings
# take one or two bytes per character. Asking the size costs a tenth of encoding the text.
# chr() builds a fresh string, whose size holds no cached UTF-8 form.
_WIDE_BASE = sys.getsizeof(chr(0x10000)) - 4


def wide_members(members: str) -> re.Pattern[str]:
    """Return a regex that finds a character beyond the BMP that ``[members]`` matches."""
    # The range comes first, so that the engine skips the BMP characters in a tight loop;
    # the look-behind tests the character just passed.
    return re.compile(f"[\\U00010000-\\U0010ffff](?<=[{members}])")


def is_bmp(text: str) -> bool:
    """Tell whether every character of ``text`` lies in the Basic Multilingual Plane."""
    # A narrow string may look wide (its UTF-8 form, once cached, adds to its size): then
    # the caller only takes the slower path. A wide one never looks narrow.
    return text.isascii() or sys.getsizeof(text) < _WIDE_BASE + 4 * len(text)
