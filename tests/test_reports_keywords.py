"""Top keywords of the trend report: words of redacted texts, stop words out, few authors hidden."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from anonymizer.keywords import keywords_of
from anonymizer.rollups import refresh_days
from anonymizer.store import ResearchRecord
from inbox.models import Role, User
from tests.conftest import login, make_user
from tests.test_reports import table_of


def _hour(days_ago: int) -> datetime:
    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return now - timedelta(days=days_ago)


def add_texts(research: Session, text: str, authors: int, *, prefix: str = "ps") -> None:
    """One record of `text` from each of `authors` distinct authors, yesterday."""
    when = _hour(1)
    research.add_all(
        [
            ResearchRecord(
                account_label="Quendelmarkt",
                platform="demo",
                channel_kind="comment",
                time_bucket=when,
                language="de",
                redacted_text=text,
                topics=[],
                hashtags=[],
                author_pseudonym=f"{prefix}-{n}",
            )
            for n in range(authors)
        ]
    )
    research.commit()
    refresh_days(session=research, days={when.date()})
    research.commit()


@pytest.fixture
def marketing_client(client: FlaskClient, session: Session) -> FlaskClient:
    user: User = make_user(session, role=Role.marketing, name="Mia Marketing")
    assert login(client, user.email).status_code == 302
    return client


def test_keywords_leave_out_stop_words_placeholders_tags_handles_urls_and_numbers() -> None:
    text = (
        "Hallo <PERSON>, [ADRESSE] und the Paket 12345 ab1 #Versand @quendel_de "
        "https://example.com/lieferung www.example.org ist NICHT da. Paket-Dienst!"
    )

    assert keywords_of(text) == {"paket", "paket-dienst"}


def test_top_keywords_count_each_message_once(
    marketing_client: FlaskClient, research: Session
) -> None:
    add_texts(research, "Die Lieferung kommt nicht, Lieferung verspätet <PERSON>", 6)

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    keywords = table_of(body, "keywords")
    assert keywords["lieferung"] == ["6"]
    assert keywords["verspätet"] == ["6"]
    assert keywords["kommt"] == ["6"]
    assert not {"die", "nicht", "person", "<person>"} & set(keywords)
    assert "Top keywords" in body


def test_a_keyword_of_four_authors_is_not_listed_at_all(
    marketing_client: FlaskClient, research: Session
) -> None:
    add_texts(research, "Paket fehlt", 5)
    add_texts(research, "Schmidtke Paket", 4, prefix="other")

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)
    rows = list(
        csv.reader(
            io.StringIO(
                marketing_client.get("/reports?days=7&format=csv&table=keywords").get_data(
                    as_text=True
                )
            )
        )
    )

    keywords = table_of(body, "keywords")
    assert keywords["paket"] == ["9"]
    assert keywords["fehlt"] == ["5"]
    assert "schmidtke" not in body.lower()
    assert rows[0] == ["label", "count"]
    assert ["paket", "9"] in rows and ["fehlt", "5"] in rows
    assert all("schmidtke" not in cell for row in rows for cell in row)
    assert rows[-1] == ["total of shown cells", "14"]


def test_hostile_words_are_escaped(marketing_client: FlaskClient, research: Session) -> None:
    add_texts(research, "<script>alert(1)</script> o'brien", 5)

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    keywords = table_of(body, "keywords")
    assert keywords["o'brien"] == ["5"]
    assert "o&#39;brien" in body
    assert "<script>alert" not in body.lower()
