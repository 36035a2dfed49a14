"""Agents' replies: stored first, then sent through the official account; failures stay to retry."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.fernet import MultiFernet
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from connectors import Author, ConnectorError, OutboundReply
from inbox import audit, metrics
from inbox.accounts import connector_for
from inbox.consent import OutboundRefused, check_outbound, refusal_words
from inbox.crypto import CredentialsError
from inbox.models import Account, Contact, Conversation, Delivery, Direction, Message, User
from inbox.types import utcnow


class ReplyError(ValueError):
    """The reply cannot be sent as written: `reason` says why, `length`/`limit` by how much."""

    def __init__(self, reason: str, *, length: int = 0, limit: int = 0) -> None:
        super().__init__(f"{reason} (length {length}, limit {limit})" if limit else reason)
        self.reason = reason
        self.length = length
        self.limit = limit


def send_reply(
    *,
    session: Session,
    fernet: MultiFernet,
    conversation: Conversation,
    agent: User,
    text: str,
    ip: str | None = None,
    purpose: str = "service",
    submission_key: str | None = None,
) -> Message:
    """Store the agent's reply, then deliver it; the stored message tells how delivery went.

    The outbound gate comes first: a refused reply raises ReplyError with the gate's reason
    and nothing is stored but the audit event. A form submitted again with the same
    `submission_key` (a double click, or the same form sent to two web nodes) gets the reply
    stored the first time, delivered once.
    """
    if submission_key is not None:
        earlier = submitted(session=session, conversation=conversation, key=submission_key)
        if earlier is not None:
            return earlier
    text = text.strip()
    account = session.get(Account, conversation.account_id)
    assert account is not None and account.id is not None and conversation.id is not None
    try:
        check_outbound(session=session, conversation=conversation, purpose=purpose, now=utcnow())
    except OutboundRefused as refused:
        _audit_refusal(session, conversation, refused, purpose, agent.id, ip)
        session.commit()
        raise ReplyError(refused.reason) from refused
    connector = connector_for(account, fernet)
    limit, length = connector.max_reply_length, connector.reply_length(text)
    if not text:
        raise ReplyError("empty")
    if length > limit:
        raise ReplyError("too_long", length=length, limit=limit)
    message = Message(
        conversation_id=conversation.id,
        account_id=account.id,
        direction=Direction.outbound,
        text=text,
        author_user_id=agent.id,
        created_at=utcnow(),
        delivery=Delivery.pending,
        # Kept with the reply so a retry passes the gate for the same purpose.
        context={"purpose": purpose},
        submission_key=submission_key,
    )
    session.add(message)
    audit.record(
        session=session,
        action="reply",
        user_id=agent.id,
        target_type="conversation",
        target_id=conversation.id,
        contact_id=conversation.contact_id,
        ip=ip,
    )
    try:
        session.commit()
    except IntegrityError:
        # The same form, sent at the same moment through another request, stored it first.
        session.rollback()
        if submission_key is None:
            raise
        earlier = submitted(session=session, conversation=conversation, key=submission_key)
        if earlier is None:
            raise
        return earlier
    return deliver(session=session, fernet=fernet, message=message)


def submitted(*, session: Session, conversation: Conversation, key: str) -> Message | None:
    """The reply a composer form with this key stored already, if any."""
    return session.exec(
        select(Message).where(
            Message.conversation_id == conversation.id, Message.submission_key == key
        )
    ).first()


def deliver(
    *,
    session: Session,
    fernet: MultiFernet,
    message: Message,
    user_id: int | None = None,
    ip: str | None = None,
) -> Message:
    """Send a pending or failed reply through its account's connector and record the outcome.

    A reply that was attempted before is first looked for on the platform: if the earlier
    attempt got through (a timeout after the post, a crash before we saved its id) it is
    recorded as sent and not posted a second time. Before every post the outbound gate is
    asked again: consent withdrawn since keeps the reply failed with the reason.
    """
    if message.delivery == Delivery.sent:
        return message
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    account = session.get(Account, conversation.account_id)
    contact = session.get(Contact, conversation.contact_id)
    assert account is not None and contact is not None
    last_inbound = session.exec(
        select(Message.external_id, Message.created_at)
        .where(Message.conversation_id == conversation.id, Message.direction == Direction.inbound)
        .order_by(col(Message.created_at).desc())
        .limit(1)
    ).first()
    reply = OutboundReply(
        kind=conversation.kind,  # type: ignore[arg-type]
        thread_key=conversation.thread_key,
        in_reply_to=last_inbound[0] if last_inbound else None,
        recipient=Author(
            platform_user_id=contact.platform_user_id,
            handle=contact.handle,
            display_name=contact.display_name,
        ),
        text=message.text,
        last_inbound_at=last_inbound[1] if last_inbound else None,
    )
    purpose = str(message.context.get("purpose", "service"))
    try:
        connector = connector_for(account, fernet)
        sent = connector.find_sent(reply, message.created_at) if message.attempts else None
        if sent is None:
            check_outbound(
                session=session, conversation=conversation, purpose=purpose, now=utcnow()
            )
            message.context = {k: v for k, v in message.context.items() if k != "refused"}
            # Counted before the call: should we die mid-send, the next try looks first.
            message.attempts += 1
            message.delivery = Delivery.pending
            session.add(message)
            session.commit()
            sent = connector.send_reply(reply)
    except OutboundRefused as refused:
        message.delivery = Delivery.failed
        message.delivery_error = refusal_words(refused)
        message.context = {**message.context, "refused": refused.reason}
        session.add(message)
        _audit_refusal(session, conversation, refused, purpose, user_id, ip)
        session.commit()
        metrics.count_reply(account_id=account.id, platform=account.platform, outcome="refused")
        return message
    except (ConnectorError, CredentialsError) as exc:
        message.delivery = Delivery.failed
        message.delivery_error = str(exc)
        session.add(message)
        session.commit()
        metrics.count_reply(account_id=account.id, platform=account.platform, outcome="failed")
        return message
    message.delivery = Delivery.sent
    message.delivery_error = None
    message.external_id = sent.external_id
    message.raw = dict(sent.raw)
    _record_response_time(conversation, account, sent.created_at)
    if conversation.first_response_at is None:
        conversation.first_response_at = sent.created_at
    conversation.sla_due_at = None
    conversation.last_message_at = max(conversation.last_message_at, sent.created_at)
    session.add_all([message, conversation])
    session.commit()
    metrics.count_reply(account_id=account.id, platform=account.platform, outcome="sent")
    return message


def _audit_refusal(
    session: Session,
    conversation: Conversation,
    refused: OutboundRefused,
    purpose: str,
    user_id: int | None,
    ip: str | None,
) -> None:
    audit.record(
        session=session,
        action="reply_refused",
        user_id=user_id,
        target_type="conversation",
        target_id=conversation.id,
        contact_id=conversation.contact_id,
        ip=ip,
        detail={"reason": refused.reason, "purpose": purpose},
    )


def _record_response_time(
    conversation: Conversation, account: Account, answered_at: datetime
) -> None:
    # Only an answer to a waiting customer counts; a second reply in a row is not a response.
    if conversation.sla_due_at is None:
        return
    # The due time is kept as the wait's start plus the target, so the start can be recovered.
    waiting_since = conversation.sla_due_at - timedelta(minutes=account.sla_minutes)
    conversation.response_seconds_total += _seconds(answered_at - waiting_since)
    conversation.response_count += 1
    if conversation.first_response_at is None:
        conversation.first_response_seconds = _seconds(answered_at - conversation.opened_at)


def _seconds(delta: timedelta) -> int:
    # Platform clocks may run a little behind ours: never a negative response time.
    return max(0, round(delta.total_seconds()))


def stuck_replies(*, session: Session, older_than: timedelta) -> list[Message]:
    """Replies left `pending` by a crash mid-send, oldest first."""
    return list(
        session.exec(
            select(Message)
            .where(
                Message.direction == Direction.outbound,
                Message.delivery == Delivery.pending,
                col(Message.created_at) < utcnow() - older_than,
            )
            .order_by(col(Message.created_at))
            .limit(100)
        ).all()
    )
