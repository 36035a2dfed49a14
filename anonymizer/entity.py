"""Entity types and the span record shared by all detectors."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Entity:
    """A span of personal data in the original text; ``end`` is exclusive."""

    type: str
    start: int
    end: int
