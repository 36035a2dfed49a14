"""Finding conversations by the words in their messages, the contact's handle or name, and tags."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from markupsafe import Markup
from sqlalchemy import Integer, any_, column, exists, func, literal, literal_column, or_, table
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from inbox.models import Account, Contact, Conversation, Message
from inbox.search_text import (
    WORD,
    Term,
    fts5_query,
    highlight,
    highlight_substring,
    trigram_phrase,
    tsquery,
)
from inbox.workflow_models import ConversationTag

Order = Literal["newest", "relevance"]
ORDERS: tuple[Order, ...] = ("newest", "relevance")
LIMIT = 50
# At most this many matching messages are read (newest first) and grouped into conversations:
# it bounds the work for a word that occurs in every tenth message. "Best match first" ranks
# these newest matches only, not every match in the inbox.
SCAN = 1000
_Rows = Sequence[tuple[int | None, int]]  # (message id, conversation id)
# PostgreSQL looks for matches among the newest this many messages first.
_WINDOW = 50_000
# Past this many tagged conversations, the tag is checked per match instead of listed first.
_TAGGED = 20_000
_MAX_TERMS = 16
# Names and handles are found through trigram indexes, which need three characters.
NAME_MIN = 3
_TAG = re.compile(r"tag:(\S+)", re.IGNORECASE)
_OUTER = "".join(map(chr, range(33, 48))) + ":;<=>?@[\\]^_`{|}~ "
_FTS = table("message_fts", column("rowid", Integer), column("rank"))
_CONTACT_FTS = table("contact_fts", column("rowid", Integer))


@dataclass(frozen=True, slots=True)
class Query:
    """What an agent asked for: words in messages, a piece of a name or handle, tags."""

    terms: tuple[Term, ...]
    name: str
    tags: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Whether nothing searchable is left once the punctuation is gone."""
        return not self.terms and not self.name and not self.tags


@dataclass(frozen=True, slots=True)
class Hit:
    """One conversation in the results, with the message that matched, marked up safely."""

    conversation: Conversation
    contact: Contact
    account: Account
    name: Markup
    handle: Markup
    snippet: Markup
    # The matching message, or the latest one when only the name or a tag matched.
    message: Message | None
    message_matched: bool


@dataclass(frozen=True, slots=True)
class Results:
    """The first LIMIT hits and whether there were more."""

    hits: list[Hit]
    more: bool


def parse_query(text: str, *, tags: Iterable[str] = ()) -> Query:
    """Read the search box: `tag:x` filters, words (a trailing * for prefixes), a name part."""
    text = unicodedata.normalize("NFC", text)
    wanted = [tag.strip() for tag in tags if tag.strip()]
    wanted += _TAG.findall(text)
    chunks = _TAG.sub(" ", text).split()
    terms = []
    for chunk in chunks:
        tokens = tuple(WORD.findall(chunk))
        if tokens:
            bare = chunk.rstrip("*")
            prefix = bare != chunk and bool(WORD.fullmatch(bare[-1:]))
            # As typed, for PostgreSQL's parser, which keeps "QM-22414555" as qm, -22414555.
            typed = chunk.replace('"', " ").strip(_OUTER)
            typed = "" if typed == " ".join(tokens) else typed
            terms.append(Term(tokens=tokens, prefix=prefix, typed=typed))
    # A handle is often typed with its @. Shorter pieces than NAME_MIN are no name search:
    # the trigram indexes cannot serve them, and they would match most contacts anyway.
    name = " ".join(chunk.rstrip("*") for chunk in chunks).lstrip("@").strip()
    return Query(
        terms=tuple(terms[:_MAX_TERMS]),
        name=name if len(name) >= NAME_MIN else "",
        # Stored as the thread's tag action stores them: spaces collapsed, lower case.
        tags=tuple(dict.fromkeys(" ".join(tag.split()).lower()[:64] for tag in wanted)),
    )


def search_conversations(
    *,
    session: Session,
    query: Query,
    order: Order = "newest",
    account_ids: Collection[int] | None = None,
) -> Results:
    """Conversations matching the query, newest match or best match first; None: all accounts."""
    if query.empty:
        return Results(hits=[], more=False)
    stemmed = session.get_bind().dialect.name == "postgresql"
    by_message, cut = (
        _message_hits(session, query, order, account_ids) if query.terms else ({}, False)
    )
    by_name: list[int] = []
    if query.name or not query.terms:
        by_name = _conversation_hits(session, query, account_ids)
    ids = _merge(session, by_message, by_name, order)[: LIMIT + 1]
    hits = _load(session, ids[:LIMIT], by_message, query, stemmed)
    return Results(hits=hits, more=len(ids) > LIMIT or cut)


def _filters(
    query: Query, account_ids: Collection[int] | None, conversation_id: Any, account_id: Any
) -> list[Any]:
    found = _tag_filters(query.tags, conversation_id)
    if account_ids is not None:
        found.append(account_id.in_(list(account_ids)))
    return found


def _tag_filters(tags: Iterable[str], conversation_id: Any) -> list[Any]:
    return [
        exists().where(
            col(ConversationTag.conversation_id) == conversation_id,
            col(ConversationTag.tag) == tag,
        )
        for tag in tags
    ]


def _message_hits(
    session: Session, query: Query, order: Order, account_ids: Collection[int] | None
) -> tuple[dict[int, int], bool]:
    """Conversation id → its best matching message id in result order; whether the scan was cut."""
    if session.get_bind().dialect.name == "postgresql":
        rows = _postgresql_matches(session, query, order, account_ids)
    else:
        newest = (
            select(col(Message.id), col(Message.conversation_id), _FTS.c.rank)
            .join(_FTS, _FTS.c.rowid == Message.id)
            .where(literal_column("message_fts").op("MATCH")(fts5_query(query.terms)))
            .where(*_filters(query, account_ids, Message.conversation_id, col(Message.account_id)))
            .order_by(_FTS.c.rowid.desc())
            .limit(SCAN)
            .subquery()
        )
        # Only the newest matches are ranked: bm25 over every match of a frequent word is slow.
        rank = newest.c.rank if order == "relevance" else newest.c.id.desc()
        rows = session.exec(
            select(newest.c.id, newest.c.conversation_id).order_by(rank, newest.c.id.desc())
        ).all()
    found: dict[int, int] = {}
    for message_id, conversation_id in rows:
        found.setdefault(conversation_id, message_id or 0)
    return found, len(rows) == SCAN


def _postgresql_matches(
    session: Session, query: Query, order: Order, account_ids: Collection[int] | None
) -> _Rows:
    vector = func.to_tsvector(literal_column("'german'"), col(Message.text))
    words = tsquery(query.terms)

    def newest(*where: Any) -> _Rows:
        matched = (
            select(col(Message.id), col(Message.conversation_id), col(Message.account_id))
            .where(vector.bool_op("@@")(words), *where)
            .cte("matched")
            .prefix_with("MATERIALIZED")
        )
        return _bitmaps_only(
            session,
            select(matched.c.id, matched.c.conversation_id)
            .where(*_filters(query, account_ids, matched.c.conversation_id, matched.c.account_id))
            .order_by(matched.c.id.desc())
            .limit(SCAN),
        )

    # The newest messages first: they hold the results of a frequent word (or of any word
    # with a common tag), and every match in the window is newer than every match outside.
    # Done when the scan is full or more conversations than a page came out of it.
    top = session.exec(select(func.max(Message.id))).one() or 0
    rows = newest(col(Message.id) > top - _WINDOW) if top > _WINDOW else []
    if len(rows) < SCAN and len({conversation_id for _, conversation_id in rows}) <= LIMIT:
        tagged = _tagged(session, query.tags)
        if tagged is not None and not tagged:
            return []
        rows = newest(*([] if tagged is None else [col(Message.conversation_id) == _any(tagged)]))
    if order == "relevance" and rows:
        # Ranking recomputes each text's vector, so only these newest matches are ranked.
        rows = session.exec(
            select(col(Message.id), col(Message.conversation_id))
            .where(col(Message.id) == _any([message_id or 0 for message_id, _ in rows]))
            .order_by(func.ts_rank(vector, words).desc(), col(Message.id).desc())
        ).all()
    return rows


def _any(ids: list[int]) -> Any:
    # One array parameter: a thousand placeholders cost more to send than the query takes.
    return any_(literal(ids, type_=postgresql.ARRAY(Integer)))


def _bitmaps_only(session: Session, statement: Any) -> _Rows:
    """Rows of a statement planned without plain index scans (PostgreSQL), settings restored."""
    # The planner underrates to_tsvector: it would walk the primary key and compute the vector
    # of every row in the window (~1 s) instead of ANDing the GIN bitmap with the id range or
    # the tagged conversations' messages (~30 ms). SET LOCAL ends with the savepoint.
    savepoint = session.begin_nested()
    try:
        session.exec(select(func.set_config("enable_indexscan", "off", True))).one()
        rows: _Rows = session.exec(statement).all()
        return rows
    finally:
        savepoint.rollback()


def _tagged(session: Session, tags: tuple[str, ...]) -> list[int] | None:
    """Conversations carrying every tag, or None without tags or when there are too many."""
    if not tags:
        return None
    first = aliased(ConversationTag)
    ids = session.exec(
        select(col(first.conversation_id))
        .where(col(first.tag) == tags[0], *_tag_filters(tags[1:], first.conversation_id))
        .limit(_TAGGED + 1)
    ).all()
    return None if len(ids) > _TAGGED else list(ids)


def _conversation_hits(
    session: Session, query: Query, account_ids: Collection[int] | None
) -> list[int]:
    """Conversations whose contact's handle or name holds the name part, within the tags."""
    statement = (
        select(col(Conversation.id))
        .join(Contact, col(Contact.id) == Conversation.contact_id)
        .where(*_filters(query, account_ids, Conversation.id, col(Conversation.account_id)))
        .order_by(col(Conversation.last_message_at).desc(), col(Conversation.id).desc())
        .limit(LIMIT + 1)
    )
    if query.name and session.get_bind().dialect.name == "postgresql":
        # lower() with LIKE, as the trigram indexes are built on lower(handle) and
        # lower(display_name); they serve any needle of three characters or more.
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", query.name.lower()) + "%"
        fields = [col(Contact.handle), col(Contact.display_name)]
        statement = statement.where(
            or_(*(func.lower(field).like(pattern, escape="\\") for field in fields))
        )
    elif query.name:
        # The trigram FTS5 table finds the phrase anywhere in either field, case ignored.
        contacts = select(_CONTACT_FTS.c.rowid).where(
            literal_column("contact_fts").op("MATCH")(trigram_phrase(query.name))
        )
        statement = statement.where(col(Conversation.contact_id).in_(contacts))
    return [conversation_id for conversation_id in session.exec(statement).all() if conversation_id]


def _merge(
    session: Session, by_message: dict[int, int], by_name: list[int], order: Order
) -> list[int]:
    """One list of conversation ids: name matches first by relevance, else by latest match."""
    if order == "relevance":
        return list(dict.fromkeys([*by_name, *by_message]))
    when: dict[int, datetime] = {}
    if by_message:
        messages = select(col(Message.conversation_id), col(Message.created_at)).where(
            col(Message.id).in_(list(by_message.values())[: LIMIT + 1])
        )
        when.update(session.exec(messages).all())
    if by_name:
        latest = select(col(Conversation.id), col(Conversation.last_message_at)).where(
            col(Conversation.id).in_(by_name)
        )
        for conversation_id, at in session.exec(latest).all():
            if conversation_id is not None:
                when.setdefault(conversation_id, at)
    return sorted(when, key=lambda conversation_id: (when[conversation_id], conversation_id))[::-1]


def _load(
    session: Session, ids: list[int], by_message: dict[int, int], query: Query, stemmed: bool
) -> list[Hit]:
    if not ids:
        return []
    rows = session.exec(
        select(Conversation, Contact, Account)
        .join(Contact, col(Contact.id) == Conversation.contact_id)
        .join(Account, col(Account.id) == Conversation.account_id)
        .where(col(Conversation.id).in_(ids))
    ).all()
    message_ids = [by_message[i] for i in ids if i in by_message]
    others = [i for i in ids if i not in by_message]
    if others:
        latest = session.exec(
            select(func.max(Message.id))
            .where(col(Message.conversation_id).in_(others))
            .group_by(col(Message.conversation_id))
        ).all()
        message_ids += [message_id for message_id in latest if message_id is not None]
    messages = {
        message.conversation_id: message
        for message in session.exec(select(Message).where(col(Message.id).in_(message_ids))).all()
    }
    by_id = {
        conversation.id: (conversation, contact, account) for conversation, contact, account in rows
    }
    hits = []
    for conversation_id in ids:
        conversation, contact, account = by_id[conversation_id]
        message = messages.get(conversation_id)
        matched = conversation_id in by_message
        hits.append(
            Hit(
                conversation=conversation,
                contact=contact,
                account=account,
                name=highlight_substring(contact.display_name or "", query.name),
                handle=highlight_substring(contact.handle or "", query.name),
                snippet=highlight(message.text, query.terms if matched else (), stemmed=stemmed)
                if message
                else Markup(""),
                message=message,
                message_matched=matched,
            )
        )
    return hits
