"""What a privacy reviewer checks in the first cut of personal-data detection."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from anonymizer import Entity, Redaction, anonymize_text, find_entities, redact


def found(
    text: str,
    *,
    keep_handles: Collection[str] = (),
    known_names: Collection[str] = (),
    default_region: str = "DE",
) -> list[tuple[str, str]]:
    """Return (type, exact substring) pairs so a wrong span shows up as wrong text."""
    entities = find_entities(
        text, keep_handles=keep_handles, known_names=known_names, default_region=default_region
    )
    return [(e.type, text[e.start : e.end]) for e in entities]


# Each case: a realistic post, the one entity it must contain (type and exact text).
POSITIVES = [
    # E-mail: odd casing, brackets, trailing punctuation, no space after the colon.
    ("Bitte an Jana.Mueller@Example.COM antworten", "EMAIL", "Jana.Mueller@Example.COM"),
    ("meine mail (jana.m+shop@web.de) geht nicht", "EMAIL", "jana.m+shop@web.de"),
    ("schreibt mir:max_1990@gmx.net!!", "EMAIL", "max_1990@gmx.net"),
    ("Mail ist kunde@firma.co.uk.", "EMAIL", "kunde@firma.co.uk"),
    ("ich hab euch geschrieben...jana@x.de", "EMAIL", "jana@x.de"),
    # URL: with and without scheme, trailing sentence punctuation stays outside.
    ("siehe https://acme.de/faq?q=retoure.", "URL", "https://acme.de/faq?q=retoure"),
    ("Link: http://example.com/a/b, bitte prüfen", "URL", "http://example.com/a/b"),
    ("guckt mal www.example.de/x!", "URL", "www.example.de/x"),
    ("(bit.ly/3abc)", "URL", "bit.ly/3abc"),
    ("tracking: acme-shop.de/track?id=1, kommt nicht an", "URL", "acme-shop.de/track?id=1"),
    ("mein blog jana-mueller.de 😊", "URL", "jana-mueller.de"),
    ("WWW.Example.DE/Impressum", "URL", "WWW.Example.DE/Impressum"),
    (
        "(https://de.wikipedia.org/wiki/Foo_(Bar))",
        "URL",
        "https://de.wikipedia.org/wiki/Foo_(Bar)",
    ),
    # Handles, including Mastodon's two-part form.
    ("@user das ist doch Quatsch", "HANDLE", "@user"),
    ("danke @user_name!", "HANDLE", "@user_name"),
    ("cc @user@instance.social.", "HANDLE", "@user@instance.social"),
    ("hey,@Jana.M was sagst du", "HANDLE", "@Jana.M"),
    ("RT@jana_m: stimmt!", "HANDLE", "@jana_m"),
    # Phones as customers type them.
    ("ruft mich an 0171 1234567 danke", "PHONE", "0171 1234567"),
    ("Handy:0171/1234567", "PHONE", "0171/1234567"),
    ("Festnetz 0221-9876543.", "PHONE", "0221-9876543"),
    ("Büro +49 (30) 123456, ab 9 Uhr", "PHONE", "+49 (30) 123456"),
    ("erreichbar unter +49 171 1234567\nLG", "PHONE", "+49 171 1234567"),
    ("tel 0049 171 1234567 📞", "PHONE", "0049 171 1234567"),
    ("call me on +44 20 7946 0958!", "PHONE", "+44 20 7946 0958"),
    ("(0171 1234567)", "PHONE", "0171 1234567"),
    ("+4915112345678", "PHONE", "+4915112345678"),
    # phonenumbers alone drops a number right after an ISO date; the fallback must not.
    ("2024-03-12 0171 1234567", "PHONE", "0171 1234567"),
    # A digit short for the numbering plan, but still the customer's own number.
    ("Bitte ruft mich an: 0157 5108233", "PHONE", "0157 5108233"),
]


@pytest.mark.parametrize(("text", "kind", "expected"), POSITIVES)
def test_form_is_found_with_type_and_exact_span(text: str, kind: str, expected: str) -> None:
    assert found(text) == [(kind, expected)]


@pytest.mark.parametrize(("text", "kind", "expected"), POSITIVES)
def test_redaction_leaves_no_trace(text: str, kind: str, expected: str) -> None:
    result = anonymize_text(text)
    assert expected not in result.text
    assert f"<{kind}>" in result.text
    # Nothing around the placeholder may change.
    start = text.index(expected)
    assert result.text == text[:start] + f"<{kind}>" + text[start + len(expected) :]


NEGATIVES = [
    "bestellt am 12.03.2024, geliefert am 2024-03-15",
    "hat 49,99 € gekostet, jetzt 19,99€?!",
    "Hausnummer 12a steht nicht dran",
    "Hallo.Wie geht's? z.B. heute,da.Es war im.Shop",
    "Meeting @ 5pm, ok?",
    "<script>alert(1)</script>",
    "Version 2.0.1 ist raus 🎉",
    "Rechnung vom 01.03.2024 10:00",
    "geöffnet von 08:00 - 17:00, Artikel 0815",
    "",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_harmless_text_is_not_flagged(text: str) -> None:
    assert find_entities(text) == []
    assert anonymize_text(text).text == text


@pytest.mark.parametrize(
    "address", ["service@acme.de", "Jana.Mueller@Example.COM", "x_y@sub.mail.example.org"]
)
def test_email_local_part_is_not_a_handle(address: str) -> None:
    text = f"kontakt: {address}, danke"
    assert found(text) == [("EMAIL", address)]
    assert anonymize_text(text).text == "kontakt: <EMAIL>, danke"


def test_company_handle_is_kept_case_insensitively_with_or_without_at() -> None:
    text = "@ACME_Support warum antwortet ihr nicht? cc @jana_m"
    for keep in (["acme_support"], ["@Acme_Support"]):
        result = anonymize_text(text, keep_handles=keep)
        assert result.text == "@ACME_Support warum antwortet ihr nicht? cc <HANDLE>"


def test_kept_handle_is_kept_even_if_listed_as_a_name() -> None:
    result = anonymize_text("danke @acme!", keep_handles=["acme"], known_names=["acme"])
    assert result.text == "danke @acme!"
    assert result.entities == ()


def test_known_display_name_matches_whole_and_parts_case_insensitively() -> None:
    text = "JANA MÜLLER hier.\nfrau müller ist sauer, jana auch. Janas Paket fehlt"
    assert found(text, known_names=["Jana Müller"]) == [
        ("PERSON", "JANA MÜLLER"),
        ("PERSON", "müller"),
        ("PERSON", "jana"),
        ("PERSON", "Janas"),
    ]


def test_known_name_respects_word_boundaries() -> None:
    # "Jan" must not hit "Januar" or "Jana"; "Ali" must not hit "Qualität".
    text = "Im Januar schrieb sie über die Qualität"
    assert found(text, known_names=["Jan", "Ali Demir"]) == []


def test_name_particles_and_salutations_are_not_matched_alone() -> None:
    text = "Frau von der Leyen und Herr Berg; der Berg ruft von oben"
    assert found(text, known_names=["Frau Anna von Berg"]) == [
        ("PERSON", "Berg"),
        ("PERSON", "Berg"),
    ]


def test_known_handle_matches_with_and_without_at() -> None:
    text = "jana_m hat recht, @Jana_M sowieso"
    assert found(text, known_names=["@jana_m"]) == [
        ("PERSON", "jana_m"),
        ("HANDLE", "@Jana_M"),
    ]


def test_mixed_german_post_is_fully_redacted() -> None:
    text = (
        "Hallo @acme_de 👋\n"
        "ich bin Jana Müller (@jana_m), Bestellung #4711-2024 vom 12.03.2024 für 49,99€ "
        "ist nicht da!!! Tracking:acme-shop.de/track?id=1\n"
        "Ruft mich an: 0171/1234567 oder mailt JANA.M@WEB.DE.<script>alert(1)</script>"
    )
    result = anonymize_text(text, keep_handles=["@ACME_DE"], known_names=["Jana Müller"])
    assert result.text == (
        "Hallo @acme_de 👋\n"
        "ich bin <PERSON> (<HANDLE>), Bestellung #<ID_NUMBER> vom 12.03.2024 für 49,99€ "
        "ist nicht da!!! Tracking:<URL>\n"
        "Ruft mich an: <PHONE> oder mailt <EMAIL>.<script>alert(1)</script>"
    )
    for secret in ("jana_m", "acme-shop.de", "1234567", "WEB.DE", "Müller"):
        assert secret not in result.text


def test_english_post_with_several_numbers() -> None:
    text = "pls call +44 20 7946 0958 or 0221-9876543,or email Bob@Example.org (urgent)"
    assert [e.type for e in find_entities(text)] == ["PHONE", "PHONE", "EMAIL"]
    assert anonymize_text(text).text == "pls call <PHONE> or <PHONE>,or email <EMAIL> (urgent)"


def test_entities_are_sorted_and_never_overlap() -> None:
    text = "https://x.com/@jana_m?mail=jana@x.de 0171 1234567 @jana_m Jana jana@x.de"
    entities = find_entities(text, known_names=["Jana", "jana_m"])
    assert entities == sorted(entities, key=lambda e: e.start)
    for left, right in zip(entities, entities[1:], strict=False):
        assert left.end <= right.start
    assert [e.type for e in entities] == ["URL", "EMAIL", "PHONE", "HANDLE", "PERSON", "EMAIL"]


def test_email_inside_link_wins_but_rest_of_link_is_redacted_too() -> None:
    text = "https://x.com/@jana_m?mail=jana@x.de&u=jana_m."
    assert found(text) == [
        ("URL", "https://x.com/@jana_m?mail="),
        ("EMAIL", "jana@x.de"),
        ("URL", "&u=jana_m"),
    ]
    assert anonymize_text(text).text == "<URL><EMAIL><URL>."


def test_url_beats_handle_and_phone_inside_it() -> None:
    text = "siehe https://mastodon.social/@jana_m/0171 danke"
    assert found(text) == [("URL", "https://mastodon.social/@jana_m/0171")]


def test_mastodon_handle_is_not_read_as_an_email() -> None:
    assert found("@jana.m@chaos.social") == [("HANDLE", "@jana.m@chaos.social")]


def test_offsets_count_code_points_after_emoji() -> None:
    text = "😡😡 0171 1234567"
    assert find_entities(text) == [Entity("PHONE", 3, 15)]


def test_redact_uses_typed_placeholders_in_any_order() -> None:
    text = "a@b.de und @x"
    entities = [Entity("HANDLE", 11, 13), Entity("EMAIL", 0, 6)]
    assert redact(text, entities) == "<EMAIL> und <HANDLE>"


@pytest.mark.parametrize(
    "entities",
    [
        [Entity("EMAIL", 0, 6), Entity("HANDLE", 5, 8)],
        [Entity("URL", 3, 99)],
        [Entity("PHONE", 4, 4)],
    ],
)
def test_redact_refuses_overlapping_or_invalid_spans(entities: list[Entity]) -> None:
    with pytest.raises(ValueError, match="entity"):
        redact("a@b.de und @x", entities)


def test_anonymize_text_returns_redaction_with_entities() -> None:
    result = anonymize_text("mail: x@y.de")
    assert result == Redaction(text="mail: <EMAIL>", entities=(Entity("EMAIL", 6, 12),))


def test_default_region_changes_national_numbers() -> None:
    # An unformatted British national number only counts when the post is read as British.
    text = "ring 02079460958 pls"
    assert found(text, default_region="GB") == [("PHONE", "02079460958")]
    assert found(text, default_region="DE") == []
