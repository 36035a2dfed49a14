"""Rollups: rebuilt per day, idempotent, and backfilled for records older than the rollups."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import Session, func, select

from anonymizer.disclosure import Cell
from anonymizer.report_queries import (
    ReportFilter,
    _by_label,
    hashtags,
    hour_of_week,
    keywords,
    spans,
    topics,
)
from anonymizer.rollups import refresh_days, refresh_range
from anonymizer.store import (
    ResearchRecord,
    RollupDay,
    RollupHashtag,
    RollupHashtagMonth,
    RollupKeyword,
    RollupKeywordMonth,
    RollupKeywordTotal,
    RollupTopic,
    RollupTopicMonth,
)
from inbox import migrate
from inbox.db import make_engine
from tests.conftest import DatabaseUrls

WHEN = datetime(2026, 11, 3, 14)


def _record(author: str, **fields: object) -> ResearchRecord:
    values: dict[str, object] = {
        "account_label": "Quendelmarkt",
        "platform": "demo",
        "channel_kind": "dm",
        "time_bucket": WHEN,
        "language": "de",
        "redacted_text": "Paket fehlt",
        "topics": ["delivery", "delivery"],
        "hashtags": ["Lieferung", "lieferung"],
        "author_pseudonym": author,
    }
    values.update(fields)
    return ResearchRecord(**values)  # type: ignore[arg-type]


def test_a_refresh_rebuilds_a_day_and_repeating_it_changes_nothing(research: Session) -> None:
    research.add_all([_record("a"), _record("a"), _record("b", sentiment_label="negative")])
    research.commit()

    refresh_days(session=research, days={WHEN.date()})
    refresh_days(session=research, days={WHEN.date()})
    research.commit()

    rows = {r.sentiment_label: (r.count, r.authors) for r in research.exec(select(RollupDay))}
    assert rows == {"neutral": (2, 1), "negative": (1, 1)}
    topic = research.exec(select(RollupTopic)).one()
    assert (topic.topic, topic.count, topic.authors) == ("delivery", 3, 2)
    tag = research.exec(select(RollupHashtag)).one()
    assert (tag.hashtag, tag.count) == ("lieferung", 3)  # one count per message, case folded
    words = {r.keyword: (r.count, r.authors) for r in research.exec(select(RollupKeyword))}
    assert words == {"paket": (3, 2), "fehlt": (3, 2)}


def test_deleted_records_leave_the_rollups_on_the_next_refresh(research: Session) -> None:
    research.add_all([_record("a"), _record("b")])
    research.commit()
    refresh_range(session=research, since=WHEN.date(), until=WHEN.date().replace(day=4))

    for record in research.exec(select(ResearchRecord)).all():
        research.delete(record)
    research.commit()
    refresh_range(session=research, since=WHEN.date(), until=WHEN.date().replace(day=4))

    assert research.exec(select(func.count()).select_from(RollupDay)).one() == 0


def test_upgrading_the_research_store_backfills_rollups(database_urls: DatabaseUrls) -> None:
    engine = make_engine(database_urls.research)
    try:
        migrate.upgrade(engine, "research", "0002_research")
        with engine.begin() as connection:
            for n, author in enumerate(("a", "b", "b")):
                connection.execute(
                    text(
                        "INSERT INTO research_record (id, account_label, platform, channel_kind,"
                        " time_bucket, language, redacted_text, topics, hashtags,"
                        " sentiment_label, sentiment_score, author_pseudonym) VALUES (:id,"
                        " 'Q', 'demo', 'dm', :when, 'de', 't', '[\"delivery\"]', '[]',"
                        " 'neutral', 0.5, :author)"
                    ),
                    {"id": f"r{n}", "when": WHEN, "author": author},
                )
        migrate.upgrade(engine, "research")
        with Session(engine) as research:
            day = research.exec(select(RollupDay)).one()
            assert (day.count, day.authors, day.score_sum) == (3, 2, 1.5)
            assert research.exec(select(RollupTopic.count)).one() == 3
    finally:
        engine.dispose()


def test_upgrading_to_keyword_rollups_backfills_them(database_urls: DatabaseUrls) -> None:
    engine = make_engine(database_urls.research)
    try:
        migrate.upgrade(engine, "research", "0003_research")
        with engine.begin() as connection:
            for n, author in enumerate(("a", "b", "b")):
                connection.execute(
                    text(
                        "INSERT INTO research_record (id, account_label, platform, channel_kind,"
                        " time_bucket, language, redacted_text, topics, hashtags,"
                        " sentiment_label, sentiment_score, author_pseudonym) VALUES (:id,"
                        " 'Q', 'demo', 'dm', :when, 'de', :text, '[]', '[]',"
                        " 'neutral', 0.5, :author)"
                    ),
                    {"id": f"r{n}", "when": WHEN, "author": author, "text": "<PERSON> Paket fehlt"},
                )
        migrate.upgrade(engine, "research")
        with Session(engine) as research:
            rows = {r.keyword: (r.count, r.authors) for r in research.exec(select(RollupKeyword))}
            assert rows == {"paket": (3, 2), "fehlt": (3, 2)}
            month = research.exec(select(RollupKeywordMonth.count)).all()
            assert month == [3, 3]
    finally:
        engine.dispose()


def test_ranges_over_whole_months_read_the_monthly_rollups_with_the_same_result(
    research: Session,
) -> None:
    days = {
        datetime(2026, 9, 30, 14): 5,
        datetime(2026, 10, 10, 14): 3,
        datetime(2026, 10, 20, 9): 6,
        datetime(2026, 11, 2, 14): 2,
    }
    for when, authors in days.items():
        research.add_all(
            [_record(f"{when.day}-{n}", time_bucket=when, topics=["A"]) for n in range(authors)]
        )
    research.commit()
    refresh_days(session=research, days={when.date() for when in days})
    research.commit()
    where = ReportFilter(since=date(2026, 9, 30), until=date(2026, 11, 3))

    assert spans(where) == (
        [(date(2026, 9, 30), date(2026, 10, 1)), (date(2026, 11, 1), date(2026, 11, 3))],
        (date(2026, 10, 1), date(2026, 11, 1)),
    )
    assert topics(session=research, where=where) == {"A": Cell(count=16, authors=6)}
    assert hashtags(session=research, where=where) == {"lieferung": Cell(count=16, authors=6)}
    assert keywords(session=research, where=where) == {
        "paket": Cell(count=16, authors=6),
        "fehlt": Cell(count=16, authors=6),
    }
    keyword_month = research.exec(
        select(RollupKeywordMonth).where(
            RollupKeywordMonth.keyword == "paket", RollupKeywordMonth.day == date(2026, 10, 1)
        )
    ).one()
    assert (keyword_month.day, keyword_month.count) == (date(2026, 10, 1), 9)
    hours = hour_of_week(session=research, where=where)
    # Sep 30, Oct 10 and Nov 2 2026 were Wednesday, Saturday and Monday.
    assert hours == {
        (0, 14): Cell(2, 2),
        (1, 9): Cell(6, 6),
        (2, 14): Cell(5, 5),
        (5, 14): Cell(3, 3),
    }
    month = research.exec(
        select(RollupTopicMonth).where(RollupTopicMonth.day == date(2026, 10, 1))
    ).one()
    assert (month.day, month.count, month.authors) == (date(2026, 10, 1), 9, 6)


def _random_traffic(research: Session, seed: int) -> None:
    rng = random.Random(seed)
    words = ["paket", "rechnung", "retoure", "lieferung", "gutschein", "app"]
    records = []
    for _ in range(400):
        when = datetime(2026, 9, 20, 8) + timedelta(days=rng.randrange(60), hours=rng.randrange(12))
        records.append(
            _record(
                f"author-{rng.randrange(40)}",
                time_bucket=when,
                account_label=rng.choice(("Quendelmarkt", "Quendel Style")),
                platform=rng.choice(("x", "facebook")),
                channel_kind=rng.choice(("dm", "mention", "comment")),
                language=rng.choice(("de", "en")),
                redacted_text=" ".join(rng.sample(words, 2)),
                hashtags=rng.sample(["Sale", "Lieferung", "Service"], rng.randrange(3)),
            )
        )
    research.add_all(records)
    research.commit()
    refresh_days(session=research, days={r.time_bucket.date() for r in records})
    research.commit()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unfiltered_hashtags_and_keywords_read_the_all_channel_totals_with_the_same_result(
    research: Session, seed: int
) -> None:
    _random_traffic(research, seed)
    rng = random.Random(seed)
    for _ in range(6):
        since = date(2026, 9, 18) + timedelta(days=rng.randrange(40))
        where = ReportFilter(since=since, until=since + timedelta(days=rng.randrange(1, 50)))
        per_channel = _by_label(research, where, RollupKeyword, RollupKeywordMonth, "keyword")
        assert keywords(session=research, where=where) == per_channel
        per_channel = _by_label(research, where, RollupHashtag, RollupHashtagMonth, "hashtag")
        assert hashtags(session=research, where=where) == per_channel
    # Fewer rows (a fourteenth on real traffic): what makes the unfiltered report cheap.
    totals = research.exec(select(func.count()).select_from(RollupKeywordTotal)).one()
    channels = research.exec(select(func.count()).select_from(RollupKeyword)).one()
    assert 0 < totals < channels / 2
    # With a channel filter, the per-channel rows answer.
    where = ReportFilter(since=date(2026, 9, 1), until=date(2026, 12, 1), language="en")
    filtered = keywords(session=research, where=where)
    everyone = keywords(session=research, where=replace(where, language=None))
    assert filtered and all(cell.count < everyone[word].count for word, cell in filtered.items())


def test_upgrading_to_the_totals_backfills_them_from_the_rollups(
    database_urls: DatabaseUrls,
) -> None:
    engine = make_engine(database_urls.research)
    try:
        migrate.upgrade(engine, "research")
        with Session(engine) as research:
            _random_traffic(research, 4)
        # Back to the release before the totals, with its rollups, and up again.
        config = migrate.alembic_config("research")
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005_research")
        migrate.upgrade(engine, "research")
        with Session(engine) as research:
            where = ReportFilter(since=date(2026, 9, 1), until=date(2026, 12, 1))
            per_channel = _by_label(research, where, RollupKeyword, RollupKeywordMonth, "keyword")
            assert per_channel and keywords(session=research, where=where) == per_channel
            per_channel = _by_label(research, where, RollupHashtag, RollupHashtagMonth, "hashtag")
            assert per_channel and hashtags(session=research, where=where) == per_channel
    finally:
        engine.dispose()
