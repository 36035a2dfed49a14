"""Entity types and the span record shared by all detectors."""

from __future__ import annotations

from typing import NamedTuple

EMAIL = "EMAIL"
URL = "URL"
IBAN = "IBAN"
CREDIT_CARD = "CREDIT_CARD"
IP_ADDRESS = "IP_ADDRESS"
PHONE = "PHONE"
ID_NUMBER = "ID_NUMBER"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
ADDRESS = "ADDRESS"
HANDLE = "HANDLE"
PERSON = "PERSON"

ENTITY_TYPES = (
    EMAIL, URL, IBAN, CREDIT_CARD, IP_ADDRESS, PHONE, ID_NUMBER, DATE_OF_BIRTH, ADDRESS,
    HANDLE, PERSON,
)  # fmt: skip


class Entity(NamedTuple):
    """A span of personal data in the original text; ``end`` is exclusive.

    A named tuple rather than a frozen dataclass: just as immutable, and a post yields
    several candidates, which a tuple builds in half the time.
    """

    type: str
    start: int
    end: int
