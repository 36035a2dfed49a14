"""What a privacy reviewer checks for person names found without the caller's help."""

from __future__ import annotations

import pytest

from anonymizer import anonymize_text, find_entities


def people(text: str) -> list[str]:
    """Return the PERSON substrings found in ``text``."""
    return [text[e.start : e.end] for e in find_entities(text) if e.type == "PERSON"]


NAMED = [
    ("Hallo, ich heiße Jana Kowalczyk und habe ein Problem", ["Jana Kowalczyk"]),
    ("mein Name ist Svetlana Iwanowa", ["Svetlana Iwanowa"]),
    ("my name is John Smith, order is late", ["John Smith"]),
    ("Frau Müller hat mich angerufen", ["Müller"]),
    ("bitte an Herrn Dr. Özdemir weiterleiten", ["Özdemir"]),
    ("Mr Thompson promised a refund", ["Thompson"]),
    ("danke an Jana aus dem Team", ["Jana"]),
    ("Hallo Mark, wo bleibt mein Paket?", ["Mark"]),
    ("Mark Weber hat gesagt es kommt heute", ["Mark Weber"]),
    ("Viele Grüße\nMax Mustermann", ["Max Mustermann"]),
    ("Mit freundlichen Grüßen\nAyşe Yılmaz", ["Ayşe Yılmaz"]),
    ("LG jana", ["jana"]),
    ("grüße\nolga smirnowa", ["olga smirnowa"]),
    ("Paket ist weg.\nGruß Kowalczyk", ["Kowalczyk"]),
    ("Cheers, Tom", ["Tom"]),
    ("Wir prüfen das. ^JS", ["JS"]),
    ("z. Hd. Ewa Kamińska\nGewerbepark 12", ["Ewa Kamińska"]),
    ("Lieferadresse:\nHatice Arslan\nBergstraße 17", ["Hatice Arslan"]),
    ("Name: Kowalczyk", ["Kowalczyk"]),
]


@pytest.mark.parametrize(("text", "names"), NAMED)
def test_name_is_found_from_evidence(text: str, names: list[str]) -> None:
    assert people(text) == names
    redacted = anonymize_text(text).text
    for name in names:
        assert name not in redacted


NOT_NAMED = [
    "Mark meinte nichts, der Tarif Mobil M ist gut",
    "Paris war toll, Frankfurt auch",
    "Gruß aus Berlin",
    "Ich bin Kunde seit Jahren",
    "Die Telekom und Vodafone sind beide schlecht",
    "Hallo zusammen, bitte um Rückmeldung",
    "Will ich wirklich kündigen?",
    "Nur noch heute gültig",
    "Der Link geht nicht, die Bestellung ist weg",
    "the page is German only",
    "iPhone 15 Pro Max listed at 1,199 €",
]


@pytest.mark.parametrize("text", NOT_NAMED)
def test_capitalised_words_without_evidence_are_not_names(text: str) -> None:
    assert people(text) == []


def test_known_names_and_list_names_do_not_overlap() -> None:
    text = "Jana Müller hier, jana_m auf X"
    entities = find_entities(text, known_names=["Jana Müller", "jana_m"])
    assert [(e.type, text[e.start : e.end]) for e in entities] == [
        ("PERSON", "Jana Müller"),
        ("PERSON", "jana_m"),
    ]
