"""What the conversation list's filter form offers: the user's accounts, their platforms and
the tags there are."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session, col, select

from inbox.models import Account


@dataclass(frozen=True, slots=True)
class AccountOption:
    """An account as the filter form names it."""

    id: int
    display_name: str
    platform: str


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """What the filter form offers."""

    accounts: list[AccountOption]
    platforms: list[str]
    tags: list[str]


# A loose index scan: one index seek per distinct tag instead of reading every tagging.
_DISTINCT_TAGS = text(
    """
    WITH RECURSIVE t(tag) AS (
        SELECT MIN(tag) FROM conversationtag
        UNION ALL
        SELECT (SELECT MIN(tag) FROM conversationtag WHERE tag > t.tag) FROM t
        WHERE t.tag IS NOT NULL
    )
    SELECT tag FROM t WHERE tag IS NOT NULL LIMIT :limit
    """
)


def filter_options(
    *, session: Session, tag_limit: int = 200, accounts: Collection[int] | None = None
) -> FilterOptions:
    """The accounts (of `accounts`, None: all), platforms and tags there are to filter by."""
    named = select(Account.id, Account.display_name, Account.platform).order_by(
        col(Account.display_name)
    )
    if accounts is not None:
        named = named.where(col(Account.id).in_(sorted(accounts)))
    options = [AccountOption(*account) for account in session.exec(named).all()]
    tags = [tag for (tag,) in session.execute(_DISTINCT_TAGS, {"limit": tag_limit}).all()]
    return FilterOptions(
        accounts=options,
        platforms=sorted({option.platform for option in options}),
        tags=tags,
    )
