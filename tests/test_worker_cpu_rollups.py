"""Drains add their records to the rollups without a day's rebuild, and end where one would."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import Table
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from anonymizer.rollups import add_records, refresh_days
from anonymizer.store import (
    MONTHLY,
    ROLLUPS,
    ResearchRecord,
    RollupHashtagTotal,
    RollupHashtagTotalMonth,
    RollupKeywordTotal,
    RollupKeywordTotalMonth,
)
from inbox.db import databases

TABLES = (
    *ROLLUPS,
    *MONTHLY,
    RollupHashtagTotal,
    RollupHashtagTotalMonth,
    RollupKeywordTotal,
    RollupKeywordTotalMonth,
)
WORDS = ["paket", "rechnung", "retoure", "lieferung", "gutschein", "app", "kaputt", "danke"]


def _records(rng: random.Random, count: int) -> list[ResearchRecord]:
    start = datetime(2026, 10, 30, 8)  # the drains cross into a new month
    return [
        ResearchRecord(
            account_label=rng.choice(("Quendelmarkt", "Quendel Style")),
            platform=rng.choice(("x", "facebook")),
            channel_kind=rng.choice(("dm", "mention", "comment")),
            time_bucket=start + timedelta(hours=rng.randrange(72)),
            language=rng.choice(("de", "en")),
            redacted_text=" ".join(rng.sample(WORDS, 3)),
            topics=rng.sample(["delivery", "billing", "returns"], rng.randrange(3)),
            hashtags=rng.sample(["Sale", "Lieferung", "service"], rng.randrange(3)),
            sentiment_label=rng.choice(("negative", "neutral", "positive")),
            sentiment_score=rng.choice((-0.5, 0.0, 0.25, 0.75)),
            author_pseudonym=f"author-{rng.randrange(30)}",
        )
        for _ in range(count)
    ]


def _tables(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        columns: Table = table.__table__  # type: ignore[attr-defined]
        rows = session.execute(sa_select(columns)).all()
        found[columns.name] = sorted(tuple(row) for row in rows)
    return found


def test_drained_batches_leave_the_rollups_a_rebuild_would(app: Flask, research: Session) -> None:
    rng = random.Random(8)
    other = Session(databases(app).research, expire_on_commit=False)
    for batch in range(12):
        if batch == 4:
            # Another worker drains records of the same days meanwhile.
            extra = _records(rng, 15)
            other.add_all(extra)
            add_records(session=other, records=extra)
            other.commit()
        if batch == 7:
            # A drain whose transaction does not commit leaves nothing behind.
            lost = _records(rng, 20)
            research.add_all(lost)
            add_records(session=research, records=lost)
            research.rollback()
        records = _records(rng, 40)
        research.add_all(records)
        add_records(session=research, records=records)
        research.commit()
    other.close()
    drained = _tables(research)
    assert drained["rollup_keyword_month"] and drained["rollup_hashtag_total_month"]

    days = {r.time_bucket.date() for r in research.exec(select(ResearchRecord)).all()}
    refresh_days(session=research, days=days)
    research.commit()

    assert drained == _tables(research)
