"""What a privacy reviewer checks for the structured types: numbers, addresses, birth dates."""

from __future__ import annotations

import pytest

from anonymizer import anonymize_text, find_entities


def found(text: str, **kwargs: object) -> list[tuple[str, str]]:
    """Return (type, exact substring) pairs so a wrong span shows up as wrong text."""
    return [(e.type, text[e.start : e.end]) for e in find_entities(text, **kwargs)]  # type: ignore[arg-type]


POSITIVES = [
    # IBAN: spaced, compact, lower case; checksum-valid test IBANs.
    ("IBAN: DE89 3704 0044 0532 0130 00 bitte", "IBAN", "DE89 3704 0044 0532 0130 00"),
    ("überweist an DE89370400440532013000!", "IBAN", "DE89370400440532013000"),
    ("iban de89370400440532013000", "IBAN", "de89370400440532013000"),
    ("AT611904300234573201 ist mein Konto", "IBAN", "AT611904300234573201"),
    # Cards: Luhn-valid, grouped or not.
    ("Karte 4111 1111 1111 1111 wurde belastet", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("card 5500-0000-0000-0004 charged twice", "CREDIT_CARD", "5500-0000-0000-0004"),
    ("Amex 378282246310005.", "CREDIT_CARD", "378282246310005"),
    # IP addresses, v4 and v6.
    ("meine IP ist 192.168.178.20, Router neu gestartet", "IP_ADDRESS", "192.168.178.20"),
    ("IPv6 2001:db8::8a2e:370:7334 geht nicht", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
    ("fe80::1ff:fe23:4567:890a", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
    # Reference numbers: only the number, with the cue left readable.
    ("Kundennummer: 4711 2024 0815", "ID_NUMBER", "4711 2024 0815"),
    ("Kd.-Nr. 12345678 bitte prüfen", "ID_NUMBER", "12345678"),
    ("Vertragsnummer VN-2023-55511", "ID_NUMBER", "VN-2023-55511"),
    ("meine bestellnummer ist 302-1234567-7654321", "ID_NUMBER", "302-1234567-7654321"),
    ("Sendungsnummer:00340434161094042557", "ID_NUMBER", "00340434161094042557"),
    ("order #A12345 never arrived", "ID_NUMBER", "A12345"),
    ("Ticket 884412 ist offen", "ID_NUMBER", "884412"),
    ("Bestellung #4711-2024 ist nicht da", "ID_NUMBER", "4711-2024"),
    # Birth dates: cue before or after, label only the date.
    ("geboren am 12.03.1985, trotzdem gesperrt", "DATE_OF_BIRTH", "12.03.1985"),
    ("Geburtsdatum: 1990-05-30", "DATE_OF_BIRTH", "1990-05-30"),
    ("ich bin am 7. August 1952 geboren", "DATE_OF_BIRTH", "7. August 1952"),
    ("DOB 04/22/1996 pls fix", "DATE_OF_BIRTH", "04/22/1996"),
    # Addresses: street and number, postcode and city, both as one span across lines.
    ("liefert an Hauptstraße 12a bitte", "ADDRESS", "Hauptstraße 12a"),
    ("wohne Am Mühlbach 3 seit Jahren", "ADDRESS", "Am Mühlbach 3"),
    ("Berliner Str. 5 ist richtig", "ADDRESS", "Berliner Str. 5"),
    ("kastanienweg 133b", "ADDRESS", "kastanienweg 133b"),
    ("PLZ 50667 Köln stimmt", "ADDRESS", "50667 Köln"),
    ("Gartenstraße 11\n10115 Berlin", "ADDRESS", "Gartenstraße 11\n10115 Berlin"),
    ("ship to 1016 GV Amsterdam?", "ADDRESS", "1016 GV Amsterdam"),
    ("12 Baker Close\nLondon NW1 6XE", "ADDRESS", "12 Baker Close\nLondon NW1 6XE"),
]


@pytest.mark.parametrize(("text", "kind", "expected"), POSITIVES)
def test_structured_form_is_found_with_type_and_exact_span(
    text: str, kind: str, expected: str
) -> None:
    assert found(text) == [(kind, expected)]
    assert expected not in anonymize_text(text).text


HARD_NEGATIVES = [
    "ICE 578 fällt aus, jetzt Gleis 7 statt RE 5",
    "hat 49,99 € gekostet, um 14:30 bestellt am 12.03.2024",
    "das iPhone 15 und das Galaxy S23 im Tarif Mobil M",
    "bin in Köln, in der Hauptstraße war Stau",
    "Version 2.0.1 bzw. v10.0.0.1 installiert, 20% schneller",
    "3 Pakete, 2 Tage, 5 kg",
    "Flug LH 1234 verspätet",
    "Artikel 4111111111111111 gibt es nicht",  # Luhn-valid, but 16 digits glued to no cue
    "Seit 1990 Kunde, 2 Jahre Vertrag",
    "Termin 2024-03-12 um 10:00",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_look_alikes_are_left_alone(text: str) -> None:
    kinds = [kind for kind, _ in found(text)]
    assert kinds in ([], ["CREDIT_CARD"]) if "Artikel" in text else kinds == []


def test_account_specific_id_pattern_is_honoured() -> None:
    text = "mein Zeichen QX7-55-901 bitte"
    assert found(text) == []
    assert found(text, extra_id_patterns=[r"QX\d-\d{2}-\d{3}"]) == [("ID_NUMBER", "QX7-55-901")]
    redaction = anonymize_text(text, extra_id_patterns=[r"QX\d-\d{2}-\d{3}"])
    assert redaction.text == "mein Zeichen <ID_NUMBER> bitte"


def test_iban_with_bad_checksum_is_not_an_iban_nor_a_card() -> None:
    kinds = {kind for kind, _ in found("DE89 3704 0044 0532 0130 01")}
    assert not kinds & {"IBAN", "CREDIT_CARD"}


def test_card_number_beats_phone_and_id_inside_it() -> None:
    assert found("Kartennummer 4111 1111 1111 1111") == [("CREDIT_CARD", "4111 1111 1111 1111")]


def test_full_postal_address_is_one_span() -> None:
    text = "Neue Adresse:\nJana Müller\nKastanienallee 9\n10435 Berlin\nDanke!"
    assert found(text) == [
        ("PERSON", "Jana Müller"),
        ("ADDRESS", "Kastanienallee 9\n10435 Berlin"),
    ]
