"""Migrations: both databases go from empty to head, and the result matches the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from anonymizer.store import metadata as research_metadata
from inbox import migrate
from inbox.db import make_engine
from inbox.migrations.runner import include_object
from tests.conftest import DatabaseUrls


def _differences(engine: Engine, metadata: Any) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(context, metadata))


def test_both_databases_migrate_from_empty_to_head_and_match_the_models(
    database_urls: DatabaseUrls,
) -> None:
    inbox_engine = make_engine(database_urls.inbox)
    research_engine = make_engine(database_urls.research)
    try:
        assert migrate.pending(inbox_engine, "inbox")
        migrate.upgrade(inbox_engine, "inbox")
        migrate.upgrade(research_engine, "research")

        assert migrate.pending(inbox_engine, "inbox") == []
        assert migrate.pending(research_engine, "research") == []
        assert _differences(inbox_engine, SQLModel.metadata) == []
        assert _differences(research_engine, research_metadata) == []
    finally:
        inbox_engine.dispose()
        research_engine.dispose()


def test_the_research_store_holds_nothing_of_the_inbox_and_the_inbox_nothing_of_it(
    database_urls: DatabaseUrls,
) -> None:
    inbox_engine = make_engine(database_urls.inbox)
    research_engine = make_engine(database_urls.research)
    try:
        migrate.upgrade(inbox_engine, "inbox")
        migrate.upgrade(research_engine, "research")
        inbox_tables = set(inspect(inbox_engine).get_table_names()) - {"alembic_version"}
        research_tables = set(inspect(research_engine).get_table_names()) - {"alembic_version"}
        assert "message" in inbox_tables and "contact" in inbox_tables
        assert research_tables == {
            "research_record",
            "rollup_day",
            "rollup_topic",
            "rollup_hashtag",
            "rollup_keyword",
            "rollup_hour",
            "rollup_topic_month",
            "rollup_hashtag_month",
            "rollup_keyword_month",
            "rollup_hour_month",
            "rollup_hashtag_total",
            "rollup_hashtag_total_month",
            "rollup_keyword_total",
            "rollup_keyword_total_month",
        }
        assert not inbox_tables & research_tables
        columns = {c["name"] for c in inspect(research_engine).get_columns("research_record")}
        # Nothing that could be joined back to an inbox row or a person.
        assert not {c for c in columns if c.endswith("_id")}
        assert columns.isdisjoint({"handle", "display_name", "external_id", "text", "email"})
    finally:
        inbox_engine.dispose()
        research_engine.dispose()


def test_upgrading_twice_changes_nothing(database_urls: DatabaseUrls) -> None:
    engine = make_engine(database_urls.inbox)
    try:
        migrate.upgrade(engine, "inbox")
        migrate.upgrade(engine, "inbox")
        assert migrate.pending(engine, "inbox") == []
    finally:
        engine.dispose()
