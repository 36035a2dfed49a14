"""Marketing's reports: daily counts per channel from the anonymized research store only."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.dates import format_date
from flask.testing import FlaskClient
from sqlmodel import Session

from anonymizer.store import ResearchRecord
from inbox.models import Role, User
from tests.conftest import login, make_user

PSEUDONYM = "ps-5f1c0ffee0ddba11"
REDACTED = "Mein Paket an [ADRESSE] ist nicht angekommen, bitte melden"


def hour_now() -> datetime:
    """The current hour as the research store keeps time: naive UTC, truncated."""
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)


def add_records(research: Session, when: datetime, channel_kind: str, count: int) -> list[str]:
    """Anonymized messages in one hour through one channel kind; returns their ids."""
    records = [
        ResearchRecord(
            account_label="Quendelmarkt",
            platform="demo",
            channel_kind=channel_kind,
            time_bucket=when,
            language="de",
            redacted_text=f"{REDACTED} #{n}",
            topics=["delivery"],
            author_pseudonym=f"{PSEUDONYM}{n}",
        )
        for n in range(count)
    ]
    research.add_all(records)
    research.commit()
    return [record.id for record in records]


def day_label(day: date) -> str:
    """How the report names a day in English."""
    return format_date(day, "medium", locale="en")


def report_table(body: str) -> dict[str, dict[str, int]]:
    """The report as {day label: {column: number}}."""
    found = re.search(r'<table class="report">(.*?)</table>', body, re.S)
    if found is None:
        return {}
    table = found.group(1)
    head = re.search(r"<thead>(.*?)</thead>", table, re.S)
    assert head is not None
    columns = [html.unescape(c) for c in re.findall(r"<th>(.*?)</th>", head.group(1), re.S)]
    assert columns[0] == "Day" and columns[-1] == "Total"
    result: dict[str, dict[str, int]] = {}
    for row in re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", table, re.S):
        label = re.search(r'<th scope="row">(.*?)</th>', row, re.S)
        assert label is not None
        cells = re.findall(r"<td>(\d+)</td>", row)
        assert len(cells) == len(columns) - 1, row
        result[html.unescape(label.group(1))] = dict(
            zip(columns[1:], (int(c) for c in cells), strict=True)
        )
    return result


@pytest.fixture
def marketing(session: Session) -> User:
    return make_user(session, role=Role.marketing, name="Mia Marketing")


@pytest.fixture
def marketing_client(client: FlaskClient, marketing: User) -> FlaskClient:
    assert login(client, marketing.email).status_code == 302
    return client


def test_report_counts_messages_per_day_and_channel(
    marketing_client: FlaskClient, research: Session
) -> None:
    now = hour_now()
    two_days_ago = now - timedelta(days=2)
    five_days_ago = now - timedelta(days=5)
    add_records(research, two_days_ago, "comment", 3)
    add_records(research, two_days_ago + timedelta(minutes=0), "dm", 1)
    add_records(research, five_days_ago, "dm", 2)

    response = marketing_client.get("/reports")

    assert response.status_code == 200
    table = report_table(response.get_data(as_text=True))
    assert table == {
        day_label(five_days_ago.date()): {"Comment": 0, "Direct message": 2, "Total": 2},
        day_label(two_days_ago.date()): {"Comment": 3, "Direct message": 1, "Total": 4},
    }


def test_records_of_one_day_in_different_hours_add_up(
    marketing_client: FlaskClient, research: Session
) -> None:
    day = (hour_now() - timedelta(days=3)).replace(hour=0)
    add_records(research, day + timedelta(hours=1), "mention", 2)
    add_records(research, day + timedelta(hours=22), "mention", 3)

    table = report_table(marketing_client.get("/reports").get_data(as_text=True))

    assert table == {day_label(day.date()): {"Mention": 5, "Total": 5}}


def test_report_lists_days_oldest_first(marketing_client: FlaskClient, research: Session) -> None:
    now = hour_now()
    add_records(research, now - timedelta(days=1), "dm", 1)
    add_records(research, now - timedelta(days=9), "dm", 1)
    add_records(research, now - timedelta(days=4), "dm", 1)

    table = report_table(marketing_client.get("/reports").get_data(as_text=True))

    assert list(table) == [day_label((now - timedelta(days=d)).date()) for d in (9, 4, 1)]


def test_records_older_than_the_range_are_not_counted(
    marketing_client: FlaskClient, research: Session
) -> None:
    now = hour_now()
    recent = now - timedelta(days=3)
    ten_days = now - timedelta(days=10)
    forty_days = now - timedelta(days=40)
    add_records(research, recent, "dm", 1)
    add_records(research, ten_days, "comment", 2)
    add_records(research, forty_days, "mention", 4)

    week = report_table(marketing_client.get("/reports?days=7").get_data(as_text=True))
    month = report_table(marketing_client.get("/reports?days=30").get_data(as_text=True))
    quarter = report_table(marketing_client.get("/reports?days=90").get_data(as_text=True))

    assert week == {day_label(recent.date()): {"Direct message": 1, "Total": 1}}
    assert month == {
        day_label(ten_days.date()): {"Comment": 2, "Direct message": 0, "Total": 2},
        day_label(recent.date()): {"Comment": 0, "Direct message": 1, "Total": 1},
    }
    assert set(quarter) == {day_label(d.date()) for d in (forty_days, ten_days, recent)}
    assert quarter[day_label(forty_days.date())]["Mention"] == 4
    assert sum(counts["Total"] for counts in quarter.values()) == 7


def test_a_seven_day_range_covers_today_and_the_six_days_before(
    marketing_client: FlaskClient, research: Session
) -> None:
    today = hour_now().replace(hour=0)
    add_records(research, today - timedelta(days=6), "dm", 1)
    add_records(research, today - timedelta(days=6, hours=1), "dm", 2)  # 23:00, seven days back

    week = report_table(marketing_client.get("/reports?days=7").get_data(as_text=True))

    assert week == {
        day_label((today - timedelta(days=6)).date()): {"Direct message": 1, "Total": 1}
    }


def test_default_range_is_30_days(marketing_client: FlaskClient, research: Session) -> None:
    now = hour_now()
    add_records(research, now - timedelta(days=20), "dm", 1)
    add_records(research, now - timedelta(days=60), "dm", 1)

    body = marketing_client.get("/reports").get_data(as_text=True)

    assert '<a href="/reports?days=30" aria-current="page">30 days</a>' in body
    assert list(report_table(body)) == [day_label((now - timedelta(days=20)).date())]


@pytest.mark.parametrize("days", ["5", "365", "abc", "-7"])
def test_unknown_range_falls_back_to_30_days(
    marketing_client: FlaskClient, research: Session, days: str
) -> None:
    now = hour_now()
    add_records(research, now - timedelta(days=20), "dm", 1)
    add_records(research, now - timedelta(days=60), "dm", 1)

    response = marketing_client.get(f"/reports?days={days}")

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'href="/reports?days=30" aria-current="page"' in body
    assert list(report_table(body)) == [day_label((now - timedelta(days=20)).date())]


def test_report_shows_no_text_pseudonym_or_internal_ids(
    marketing_client: FlaskClient, research: Session
) -> None:
    ids = add_records(research, hour_now() - timedelta(days=1), "dm", 2)

    body = marketing_client.get("/reports").get_data(as_text=True)

    assert report_table(body) != {}
    assert REDACTED not in body
    assert "[ADRESSE]" not in body
    assert PSEUDONYM not in body
    assert "delivery" not in body
    for record_id in ids:
        assert record_id not in body


def test_report_without_data_says_so(marketing_client: FlaskClient) -> None:
    body = marketing_client.get("/reports").get_data(as_text=True)

    assert "No data in this range yet." in body
    assert report_table(body) == {}


def test_report_with_only_old_data_says_there_is_none_in_range(
    marketing_client: FlaskClient, research: Session
) -> None:
    add_records(research, hour_now() - timedelta(days=45), "dm", 3)

    body = marketing_client.get("/reports?days=7").get_data(as_text=True)

    assert "No data in this range yet." in body
    assert report_table(body) == {}


def test_admin_may_see_reports(client: FlaskClient, session: Session, research: Session) -> None:
    admin = make_user(session, role=Role.admin, name="Ada Admin")
    login(client, admin.email)
    when = hour_now() - timedelta(days=2)
    add_records(research, when, "comment", 2)

    response = client.get("/reports")

    assert response.status_code == 200
    assert report_table(response.get_data(as_text=True)) == {
        day_label(when.date()): {"Comment": 2, "Total": 2}
    }


def test_agent_may_not_see_reports(
    client: FlaskClient, session: Session, research: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    login(client, agent.email)
    add_records(research, hour_now() - timedelta(days=2), "comment", 2)

    response = client.get("/reports?days=90")

    assert response.status_code == 403
    assert report_table(response.get_data(as_text=True)) == {}
