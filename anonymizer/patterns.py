"""Building blocks for the detectors' regular expressions."""

from __future__ import annotations

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
