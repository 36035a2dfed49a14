"""Marketing's trend report: rollups of the research store, small cells hidden, filters, CSV."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.fernet import MultiFernet
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, func, select

from anonymizer.keywords import keywords_of
from anonymizer.rollups import refresh_days
from anonymizer.store import (
    ResearchRecord,
    RollupDay,
    RollupHashtag,
    RollupHour,
    RollupKeyword,
    RollupTopic,
)
from inbox.models import Contact, Role, User
from inbox.privacy_models import Setting
from inbox.types import utcnow
from inbox.worker import context_from_app, drain, poll_account
from tests.conftest import login, make_account, make_user

PSEUDONYM = "ps-5f1c0ffee0ddba11"
REDACTED = "Mein Paket an [ADRESSE] ist nicht angekommen, bitte melden"
HOSTILE = "<script>alert(1)</script>"


def hour_now() -> datetime:
    """The current hour as the research store keeps time: naive UTC, truncated."""
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)


def add_records(
    research: Session,
    when: datetime,
    count: int,
    *,
    authors: int | None = None,
    author: str = PSEUDONYM,
    **fields: object,
) -> list[str]:
    """`count` records in one hour from `authors` distinct authors (default: one each)."""
    values: dict[str, object] = {
        "account_label": "Quendelmarkt",
        "platform": "demo",
        "channel_kind": "comment",
        "language": "de",
        "topics": ["delivery"],
        "hashtags": [],
    }
    values.update(fields)
    distinct = authors or count
    records = [
        ResearchRecord(
            time_bucket=when,
            redacted_text=f"{REDACTED} #{n}",
            author_pseudonym=f"{author}-{n % distinct}",
            **values,  # type: ignore[arg-type]
        )
        for n in range(count)
    ]
    research.add_all(records)
    refresh_days(session=research, days={when.date()})
    research.commit()
    return [record.id for record in records]


def table_of(body: str, name: str) -> dict[str, list[str]]:
    """A report table as {row label: [cell texts…]}, the footer under "TOTAL"."""
    found = re.search(rf'<table class="report" id="table-{name}">(.*?)</table>', body, re.S)
    assert found is not None, name
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr[^>]*>\s*<th scope=\"row\">(.*?)</tr>", found.group(1), re.S):
        label, _, rest = row.partition("</th>")
        label = re.sub(r"<span class=\"flag\">.*?</span>", "", label).strip()
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", rest, re.S)
        ]
        key = "TOTAL" if "Total of shown cells" in label else html.unescape(label)
        rows[key] = cells
    return rows


def day_label(day: date) -> str:
    """How the report names a day in English."""
    from babel.dates import format_date

    return format_date(day, "medium", locale="en")


@pytest.fixture
def marketing(session: Session) -> User:
    return make_user(session, role=Role.marketing, name="Mia Marketing")


@pytest.fixture
def marketing_client(client: FlaskClient, marketing: User) -> FlaskClient:
    assert login(client, marketing.email).status_code == 302
    return client


def test_a_cell_of_four_authors_shows_less_than_five_and_stays_out_of_totals(
    marketing_client: FlaskClient, research: Session
) -> None:
    when = hour_now() - timedelta(days=2)
    add_records(research, when, 9, authors=4, language="de")
    add_records(research, when, 5, language="en", author="other")
    add_records(research, when, 7, language="fr", author="third")

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    languages = table_of(body, "languages")
    assert languages["German"] == ["< 5"]
    assert languages["French"] == ["7"]
    # The day's volume (21) is shown, so German would be 21 - 5 - 7: English is hidden too,
    # the smallest shown cell, and only the sum of the two hidden ones can be worked out.
    assert table_of(body, "volume")[day_label(when.date())][0] == "21"
    assert languages["English"] == ["×"]
    assert languages["TOTAL"] == ["7"]


def test_a_cell_of_five_authors_is_shown(marketing_client: FlaskClient, research: Session) -> None:
    when = hour_now() - timedelta(days=1)
    add_records(research, when, 7, authors=5)

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    assert table_of(body, "volume")[day_label(when.date())] == ["7", "0"]
    assert table_of(body, "topics")["delivery"] == ["7", "0"]


def test_multi_day_cells_use_the_largest_daily_author_count_as_a_lower_bound(
    marketing_client: FlaskClient, research: Session
) -> None:
    today = hour_now().replace(hour=0)
    # Three authors on each of three days: 9 authors in truth, but only 3 are provable.
    for n in range(3):
        add_records(research, today - timedelta(days=n + 1), 3, author=f"day{n}")
    # Six on one day: the topic cell over the week has a lower bound of 6 and is shown.
    add_records(research, today - timedelta(days=5), 6, topics=["billing"], author="bill")

    topics = table_of(marketing_client.get("/reports?days=7").get_data(as_text=True), "topics")

    assert topics["delivery"][0] == "< 5"
    assert topics["billing"][0] == "6"
    assert topics["TOTAL"][0] == "6"


def test_totals_equal_the_sum_of_shown_cells_so_a_hidden_cell_cannot_be_subtracted(
    marketing_client: FlaskClient, research: Session
) -> None:
    today = hour_now().replace(hour=0)
    monday = today - timedelta(days=today.weekday() + 7)
    add_records(research, monday + timedelta(hours=9), 6, author="a")
    add_records(research, monday + timedelta(hours=10), 2, author="b")  # hidden
    add_records(research, monday + timedelta(days=1, hours=9), 8, author="c")

    body = marketing_client.get("/reports?days=30").get_data(as_text=True)

    hours = table_of(body, "hours")
    assert hours["Mon"][10] == "< 5"
    # Monday's volume (8) is in the volume table: 8 - 6 would give the hidden cell away, so
    # the 6 is hidden as well.
    assert table_of(body, "volume")[day_label(monday.date())][0] == "8"
    assert hours["Mon"][9] == "×"
    assert hours["Mon"][-1] == "0"  # row total: shown cells only
    assert hours["Tue"][9] == "8"
    assert hours["TOTAL"][9] == "8" and hours["TOTAL"][10] == "0"
    assert hours["TOTAL"][-1] == "8"
    for label, cells in hours.items():
        numbers = [int(c) for c in cells[:-1] if c.isdigit()]
        assert int(cells[-1]) == sum(numbers), label
    volume = table_of(body, "volume")
    assert volume["TOTAL"][0] == str(
        sum(
            int(cells[0])
            for label, cells in volume.items()
            if label != "TOTAL" and cells[0].isdigit()
        )
    )


def test_noise_is_bounded_stable_and_never_negative(
    marketing_client: FlaskClient, research: Session, session: Session
) -> None:
    session.add(Setting(key="report_epsilon", value=1.0))
    session.commit()
    when = hour_now() - timedelta(days=1)
    add_records(research, when, 40, authors=10)

    first = marketing_client.get("/reports?days=7").get_data(as_text=True)
    again = marketing_client.get("/reports?days=7").get_data(as_text=True)

    noisy = int(table_of(first, "volume")[day_label(when.date())][0])
    assert table_of(again, "volume") == table_of(first, "volume")
    assert 0 <= noisy and abs(noisy - 40) <= 20  # Laplace(1): beyond 20 has odds of 1e-9
    assert "epsilon 1.0" in first


def test_laplace_draws_follow_their_seed_and_scale() -> None:
    from anonymizer.disclosure import Cell, Protection, laplace, protect, seed_for

    seed = seed_for(secret=b"s", report="r", cell=("volume", "2026-11-01"))
    draws = [
        laplace(seed=seed_for(secret=b"s", report="r", cell=n), scale=2.0) for n in range(4000)
    ]
    assert laplace(seed=seed, scale=2.0) == laplace(seed=seed, scale=2.0)
    mean_abs = sum(abs(d) for d in draws) / len(draws)
    assert 1.8 < mean_abs < 2.2  # E|Laplace(b)| = b
    zero = protect(
        cell=Cell(1, 6), protection=Protection(k=5, epsilon=0.01, secret=b"x"), report="r", key=1
    )
    assert zero.value is not None and zero.value >= 0


def test_a_higher_k_setting_hides_more(
    marketing_client: FlaskClient, research: Session, session: Session
) -> None:
    session.add(Setting(key="report_k", value=10))
    session.commit()
    when = hour_now() - timedelta(days=1)
    add_records(research, when, 7)

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    assert table_of(body, "volume")[day_label(when.date())][0] == "< 10"


def test_rollups_equal_the_raw_counts_after_a_drain(
    app: Flask, session: Session, research: Session, fernet: MultiFernet
) -> None:
    start = (utcnow() - timedelta(days=2)).isoformat()
    account = make_account(session, fernet, seed=3, rate=200, start=start, backlog=0)
    ctx = context_from_app(app)
    assert account.id is not None
    for _ in range(3):
        poll_account(ctx, account.id)
    while drain(ctx).written:
        pass

    records = research.exec(select(ResearchRecord)).all()
    assert len(records) > 50
    assert research.exec(select(func.sum(RollupDay.count))).one() == len(records)
    assert research.exec(select(func.sum(RollupHour.count))).one() == len(records)
    topic_count = sum(len(set(r.topics)) for r in records)
    assert (research.exec(select(func.sum(RollupTopic.count))).one() or 0) == topic_count
    tag_count = sum(len({t.lower() for t in r.hashtags}) for r in records)
    assert (research.exec(select(func.sum(RollupHashtag.count))).one() or 0) == tag_count
    word_count = sum(len(keywords_of(r.redacted_text)) for r in records)
    assert word_count > 0
    assert (research.exec(select(func.sum(RollupKeyword.count))).one() or 0) == word_count
    for row in research.exec(select(RollupDay)).all():
        authors = {
            r.author_pseudonym
            for r in records
            if r.time_bucket.date() == row.day
            and (r.account_label, r.platform, r.channel_kind, r.language, r.sentiment_label)
            == (
                row.account_label,
                row.platform,
                row.channel_kind,
                row.language,
                row.sentiment_label,
            )
        }
        assert row.authors == len(authors)


def test_filters_narrow_every_table(marketing_client: FlaskClient, research: Session) -> None:
    when = hour_now() - timedelta(days=1)
    add_records(research, when, 6, channel_kind="dm", language="en", author="dm")
    add_records(research, when, 8, channel_kind="comment", author="co", topics=["billing"])

    dms = marketing_client.get("/reports?days=7&channel_kind=dm").get_data(as_text=True)
    billing = marketing_client.get("/reports?days=7&topic=billing").get_data(as_text=True)
    unknown = marketing_client.get("/reports?days=7&channel_kind=fax").get_data(as_text=True)

    assert table_of(dms, "volume")["TOTAL"][0] == "6"
    assert table_of(dms, "languages") == {"English": ["6"], "TOTAL": ["6"]}
    assert table_of(billing, "volume")["TOTAL"][0] == "8"
    assert list(table_of(billing, "topics")) == ["billing", "TOTAL"]
    assert table_of(unknown, "volume")["TOTAL"][0] == "14"  # an unknown value is ignored


def test_custom_range_and_previous_period(marketing_client: FlaskClient, research: Session) -> None:
    today = hour_now().replace(hour=0)
    add_records(research, today - timedelta(days=3), 5, author="now")
    add_records(research, today - timedelta(days=13), 6, author="before")
    start, end = (today - timedelta(days=9)).date(), (today - timedelta(days=1)).date()

    body = marketing_client.get(f"/reports?from={start}&to={end}").get_data(as_text=True)

    volume = table_of(body, "volume")
    assert len(volume) == 10  # nine days and the total
    assert volume["TOTAL"] == ["5", "6"]
    assert day_label(start) in volume and day_label(end) in volume


def test_a_long_range_counts_by_week(marketing_client: FlaskClient, research: Session) -> None:
    today = hour_now().replace(hour=0)
    add_records(research, today - timedelta(days=40), 5)

    volume = table_of(marketing_client.get("/reports?days=90").get_data(as_text=True), "volume")

    assert 13 <= len(volume) - 1 <= 14
    assert volume["TOTAL"][0] == "5"


def test_rising_topics_are_flagged(marketing_client: FlaskClient, research: Session) -> None:
    today = hour_now().replace(hour=0)
    add_records(research, today - timedelta(days=2), 12, topics=["returns"], author="r")
    add_records(research, today - timedelta(days=9), 5, topics=["returns"], author="q")

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    assert re.search(r'<tr class="rising">\s*<th scope="row">returns <span class="flag">', body)


def test_csv_download_per_table_defuses_formulas(
    marketing_client: FlaskClient, research: Session
) -> None:
    when = hour_now() - timedelta(days=1)
    add_records(research, when, 6, hashtags=["=cmd|calc", "lieferung"])
    add_records(research, when - timedelta(hours=1), 3, hashtags=["rare"], author="x")

    response = marketing_client.get("/reports?days=7&format=csv&table=hashtags")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["label", "count"]
    assert ["'=cmd|calc", "6"] in rows and ["lieferung", "6"] in rows
    assert all("rare" not in row for row in rows)  # a hashtag of fewer than k authors is omitted
    assert rows[-1] == ["total of shown cells", "12"]  # the hidden "rare" adds nothing
    assert marketing_client.get("/reports?format=csv&table=nope").status_code == 404
    hours = marketing_client.get("/reports?days=7&format=csv&table=hours").get_data(as_text=True)
    assert "< 5" in hours


def test_hostile_labels_are_escaped_in_charts_and_tables(
    marketing_client: FlaskClient, research: Session
) -> None:
    when = hour_now() - timedelta(days=1)
    add_records(
        research, when, 6, account_label=HOSTILE, topics=[HOSTILE], hashtags=[HOSTILE.lower()]
    )

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    assert HOSTILE not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert" not in body.lower()
    assert ' style="' not in body


def test_report_shows_no_pseudonym_or_internal_ids_and_only_redacted_examples(
    marketing_client: FlaskClient, research: Session
) -> None:
    ids = add_records(research, hour_now() - timedelta(days=1), 6)

    body = marketing_client.get("/reports").get_data(as_text=True)

    assert PSEUDONYM not in body
    for record_id in ids:
        assert record_id not in body
    assert "[ADRESSE]" in body  # the examples are redacted texts


def test_no_examples_for_a_suppressed_topic(
    marketing_client: FlaskClient, research: Session
) -> None:
    add_records(research, hour_now() - timedelta(days=1), 4)

    body = marketing_client.get("/reports").get_data(as_text=True)

    assert REDACTED not in body


def test_report_without_data_says_so_and_states_the_protections(
    marketing_client: FlaskClient,
) -> None:
    body = marketing_client.get("/reports").get_data(as_text=True)

    assert "No data in this range yet." in body
    assert "Protections applied" in body
    assert "fewer than 5 different authors" in body
    assert "No random noise is added" in body


def test_the_range_links_keep_the_filters(marketing_client: FlaskClient, research: Session) -> None:
    add_records(research, hour_now() - timedelta(days=1), 5, channel_kind="dm")

    body = marketing_client.get("/reports?channel_kind=dm").get_data(as_text=True)

    assert '<a href="/reports?days=30&amp;channel_kind=dm" aria-current="page">30 days</a>' in body


def test_admin_may_see_reports(client: FlaskClient, session: Session, research: Session) -> None:
    admin = make_user(session, role=Role.admin, name="Ada Admin")
    login(client, admin.email)
    when = hour_now() - timedelta(days=2)
    add_records(research, when, 5)

    response = client.get("/reports")

    assert response.status_code == 200
    assert table_of(response.get_data(as_text=True), "volume")["TOTAL"][0] == "5"


def test_agent_may_not_see_reports(
    client: FlaskClient, session: Session, research: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    add_records(research, hour_now() - timedelta(days=2), 5)

    assert client.get("/reports?days=90").status_code == 403
    assert client.get("/reports?format=csv&table=volume").status_code == 403


def test_demo_traffic_gives_marketing_a_readable_report(
    app: Flask, client: FlaskClient, session: Session, fernet: MultiFernet
) -> None:
    start = (utcnow() - timedelta(days=1)).isoformat()
    account = make_account(session, fernet, seed=5, rate=300, start=start, backlog=0)
    ctx = context_from_app(app)
    assert account.id is not None
    for _ in range(4):
        poll_account(ctx, account.id)
    while drain(ctx).written:
        pass
    marketing = make_user(session, role=Role.marketing)
    login(client, marketing.email)

    body = client.get("/reports?days=7").get_data(as_text=True)

    volume = table_of(body, "volume")
    assert int(volume["TOTAL"][0]) > 0
    topics = table_of(body, "topics")
    assert any(cells[0].isdigit() and int(cells[0]) > 0 for cells in topics.values())
    contacts = session.exec(select(Contact)).all()
    assert contacts
    for contact in contacts:
        for value in (contact.handle, contact.display_name, contact.email, contact.phone):
            if value and len(value) > 3:
                assert value not in body and html.escape(value) not in body, value
