"""Views marked read-only run without a transaction, and cannot change the database."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlmodel import Session

from inbox import db
from inbox.db import ReadOnlyError, ReadOnlySession
from inbox.models import Contact


def dbapi_autocommit(session: Session, backend: str) -> bool:
    """Whether the session's database connection runs each statement on its own."""
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    if backend == "sqlite":
        return raw.isolation_level is None
    return bool(raw.autocommit)


def test_the_list_reads_without_a_transaction_and_refuses_to_write(app: Flask) -> None:
    backend = db.databases(app).inbox.dialect.name
    with app.test_request_context("/conversations?view=open"):
        session = db.session()
        assert isinstance(session, ReadOnlySession)
        assert dbapi_autocommit(session, backend)
        session.add(Contact(platform="x", platform_user_id="1"))
        with pytest.raises(ReadOnlyError):
            session.flush()
        session.rollback()
    with app.test_request_context("/conversations/rows"):
        assert isinstance(db.session(), ReadOnlySession)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/conversations/1"), ("POST", "/conversations"), ("GET", "/reports")],
)
def test_other_views_and_methods_keep_their_transaction(app: Flask, method: str, path: str) -> None:
    backend = db.databases(app).inbox.dialect.name
    with app.test_request_context(path, method=method):
        session = db.session()
        assert not isinstance(session, ReadOnlySession)
        assert not dbapi_autocommit(session, backend)


def test_the_pooled_connection_gets_its_transaction_back_after_a_read_only_view(
    app: Flask,
) -> None:
    backend = db.databases(app).inbox.dialect.name
    for _ in range(3):  # the pool hands the same connection out in turn
        with app.test_request_context("/conversations"):
            assert dbapi_autocommit(db.session(), backend)
        with app.test_request_context("/conversations/1"):
            assert not dbapi_autocommit(db.session(), backend)
