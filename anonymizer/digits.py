"""One pass over a post's runs of decimal digits, shared by the number and address detectors.

Most detectors of numbers start where a run of digits starts: an IBAN's check digits after
its country code, a card or an IPv4 address at a digit with no digit before it, a house
number after a street name. Scanning the whole post with a regex per detector to find
those places costs more than all the detectors' real work together, so the runs are found
once (``digit_runs``) and every detector looks only at them.

``\\d`` in a ``str`` regex is ``str.isdecimal()`` and ``[^\\W\\d_]`` (a letter) is
``str.isalnum() and not str.isdecimal()``; the helpers below use those equivalences, so a
detector that starts from the runs finds exactly what its regex scan found.
"""

from __future__ import annotations

import re

from anonymizer.patterns import bmp_class, is_bmp

Run = tuple[int, int]

# "\d\d*+" finds what "\d+" finds, but a pattern that starts with one character class lets
# the engine skip to the next digit in a tight loop instead of trying a match everywhere.
_RUN_RE = re.compile(r"\d\d*+")
# The same for the texts that is_bmp() accepts, faster: see bmp_class.
_DIGIT = bmp_class(r"\d")
_BMP_RUN_RE = re.compile(f"[{_DIGIT}][{_DIGIT}]*+")
_span = re.Match.span


def digit_runs(text: str) -> list[Run]:
    """Return ``(start, end)`` of every maximal run of decimal digits in ``text``."""
    return list(map(_span, (_BMP_RUN_RE if is_bmp(text) else _RUN_RE).finditer(text)))


def is_letter(char: str) -> bool:
    """Tell whether ``char`` matches ``[^\\W\\d_]``: a letter or a non-decimal numeral."""
    return char.isalnum() and not char.isdecimal()
