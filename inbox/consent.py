"""Consent to be contacted, the texts people agree to, and the gate every outbound send passes.

Answering a customer who wrote first needs no record: the gate derives that consent from the
conversation itself, so no row is written per inbound message. Writing first, and marketing
on any channel, needs a recorded consent that has not been withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import MultiFernet
from sqlmodel import Session, col, func, select

from connectors import Author
from connectors.graph_items import HUMAN_AGENT_WINDOW, WINDOW
from inbox.accounts import connector_for
from inbox.models import Account, Contact, Conversation, Direction, Message, User
from inbox.privacy_models import ConsentPurpose, ConsentRecord, ConsentText

CHANNELS = ("dm", "mention", "comment")
# Platforms whose messengers only answer within a window after the customer's last message,
# and never let a business write first.
WINDOWED_PLATFORMS = ("facebook", "instagram")
SOURCE_MAX = 200
TEXT_MAX = 20_000
LANGUAGES = ("de", "en")


class ConsentError(ValueError):
    """A consent or consent text cannot be recorded as entered: `reason` says which field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundRefused(Exception):
    """The gate refuses a send; `reason` is a code the views turn into words.

    Codes: `no_consent` (writing first without the contact's consent for this channel),
    `no_marketing_consent`, `write_first_impossible` (the platform forbids writing first),
    `window_closed` (the platform's messaging window is over).
    """

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """A consent record with the text version and the names of who recorded and withdrew it."""

    record: ConsentRecord
    text_version: int | None
    recorded_by: str | None
    withdrawn_by: str | None

    @property
    def active(self) -> bool:
        """Whether the consent still holds."""
        return self.record.withdrawn_at is None


def agent_source(text: ConsentText) -> str:
    """The source of a consent an agent recorded after reading out or showing this text."""
    return f"agent recorded with text version {text.version} ({text.purpose}, {text.language})"


def record_consent(
    *,
    session: Session,
    contact: Contact,
    channel: str,
    purpose: str,
    source: str = "",
    text_id: int | None = None,
    recorded_by: int | None,
    given_at: datetime,
    now: datetime,
) -> ConsentRecord:
    """Add a consent record (not committed); with a text version the source names that version."""
    assert contact.id is not None
    if channel not in CHANNELS:
        raise ConsentError("channel")
    try:
        purpose = ConsentPurpose(purpose).value
    except ValueError:
        raise ConsentError("purpose") from None
    if given_at.tzinfo is None or given_at > now:
        raise ConsentError("given_at")
    if text_id is not None:
        text = session.get(ConsentText, text_id)
        if text is None or text.purpose != purpose:
            raise ConsentError("text")
        source = agent_source(text)
    source = " ".join(source.split())
    if not source or len(source) > SOURCE_MAX:
        raise ConsentError("source")
    record = ConsentRecord(
        contact_id=contact.id,
        channel=channel,
        purpose=purpose,
        given_at=given_at,
        source=source,
        text_id=text_id,
        recorded_by_user_id=recorded_by,
    )
    session.add(record)
    return record


def withdraw_consent(
    *, session: Session, record: ConsentRecord, withdrawn_by: int | None, now: datetime
) -> ConsentRecord:
    """Mark a consent withdrawn (not committed); the record itself is kept as proof."""
    if record.withdrawn_at is None:
        record.withdrawn_at = now
        record.withdrawn_by_user_id = withdrawn_by
        session.add(record)
    return record


def consents_of(*, session: Session, contact_id: int) -> list[ConsentRow]:
    """Every consent record of a contact, active and withdrawn, newest first."""
    records = session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.contact_id == contact_id)
        .order_by(col(ConsentRecord.given_at).desc(), col(ConsentRecord.id).desc())
    ).all()
    user_ids = {
        uid for r in records for uid in (r.recorded_by_user_id, r.withdrawn_by_user_id) if uid
    }
    text_ids = {r.text_id for r in records if r.text_id}
    names = (
        {u.id: u.name for u in session.exec(select(User).where(col(User.id).in_(user_ids)))}
        if user_ids
        else {}
    )
    versions = (
        {
            t.id: t.version
            for t in session.exec(select(ConsentText).where(col(ConsentText.id).in_(text_ids)))
        }
        if text_ids
        else {}
    )
    return [
        ConsentRow(
            record=r,
            text_version=versions.get(r.text_id) if r.text_id else None,
            recorded_by=names.get(r.recorded_by_user_id) if r.recorded_by_user_id else None,
            withdrawn_by=names.get(r.withdrawn_by_user_id) if r.withdrawn_by_user_id else None,
        )
        for r in records
    ]


def has_consent(
    *, session: Session, contact_id: int, channel: str, purpose: str, now: datetime
) -> bool:
    """Whether the contact has an active consent for this channel and purpose at `now`."""
    found = session.exec(
        select(ConsentRecord.id)
        .where(
            ConsentRecord.contact_id == contact_id,
            ConsentRecord.channel == channel,
            ConsentRecord.purpose == purpose,
            col(ConsentRecord.given_at) <= now,
            (col(ConsentRecord.withdrawn_at).is_(None)) | (col(ConsentRecord.withdrawn_at) > now),
        )
        .limit(1)
    ).first()
    return found is not None


def check_outbound(
    *, session: Session, conversation: Conversation, purpose: str, now: datetime
) -> None:
    """Raise OutboundRefused unless this send is allowed; used for every send and every retry.

    `conversation` may be one not yet stored (writing first): it then has no messages.
    """
    account = session.get(Account, conversation.account_id)
    assert account is not None
    last_inbound = _last_inbound_at(session, conversation)
    windowed = account.platform in WINDOWED_PLATFORMS and conversation.kind == "dm"
    if windowed and last_inbound is None:
        raise OutboundRefused("write_first_impossible", detail=account.platform)
    if purpose not in (ConsentPurpose.marketing, ConsentPurpose.service):
        raise ValueError(f"unknown purpose {purpose!r}")
    # Marketing always needs consent; service only while we are still writing first (the
    # customer has not answered yet).
    writing_first = conversation.initiated_by_agent and last_inbound is None
    if (purpose == ConsentPurpose.marketing or writing_first) and not has_consent(
        session=session,
        contact_id=conversation.contact_id,
        channel=conversation.kind,
        purpose=purpose,
        now=now,
    ):
        reason = "no_marketing_consent" if purpose == ConsentPurpose.marketing else "no_consent"
        raise OutboundRefused(reason, detail=conversation.kind)
    if windowed and last_inbound is not None:
        limit = HUMAN_AGENT_WINDOW if _human_agent(account) else WINDOW
        if now - last_inbound > limit:
            hours = int((now - last_inbound) // timedelta(hours=1))
            raise OutboundRefused("window_closed", detail=f"{hours} hours")


def _last_inbound_at(session: Session, conversation: Conversation) -> datetime | None:
    if conversation.id is None:
        return None
    # Only the contact's own messages open the window or make the conversation theirs.
    latest: datetime | None = session.exec(
        select(Message.created_at)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.inbound,
            Message.author_contact_id == conversation.contact_id,
        )
        .order_by(col(Message.created_at).desc())
        .limit(1)
    ).first()
    return latest


def _human_agent(account: Account) -> bool:
    # Read as the Meta connectors read it: only a real `true` enables the tag.
    return account.settings.get("human_agent_enabled", False) is True


# In English for the stored delivery error and logs; the views translate the reason code.
REFUSAL_WORDS = {
    "no_consent": "Not sent: this person has not consented to be written to first on this channel",
    "no_marketing_consent": "Not sent: this person has not consented to marketing messages on "
    "this channel",
    "write_first_impossible": "Not sent: this platform does not let businesses write first",
    "window_closed": "Not sent: the platform's reply window after the customer's last message "
    "is over",
}


def refusal_words(error: OutboundRefused) -> str:
    """The refusal as an English sentence for the stored delivery error."""
    return REFUSAL_WORDS.get(error.reason, f"Not sent: {error.reason}")


def open_direct_conversation(
    *,
    session: Session,
    fernet: MultiFernet,
    account: Account,
    contact: Contact,
    purpose: str,
    now: datetime,
) -> Conversation:
    """The DM conversation an agent writes first in, flushed but not committed, once the gate
    allows it; raises OutboundRefused otherwise (and nothing is stored).

    A DM conversation the customer already has with this account is reused: answering in it
    is then what the gate judges.
    """
    if account.platform != contact.platform:
        raise ValueError("the account is on another platform than the contact")
    connector = connector_for(account, fernet)
    thread_key = connector.direct_thread_key(
        Author(
            platform_user_id=contact.platform_user_id,
            handle=contact.handle,
            display_name=contact.display_name,
        )
    )
    if thread_key is None:
        raise OutboundRefused("write_first_impossible", detail=account.platform)
    assert account.id is not None and contact.id is not None
    existing = session.exec(
        select(Conversation).where(
            Conversation.account_id == account.id, Conversation.thread_key == thread_key
        )
    ).first()
    conversation = existing or Conversation(
        account_id=account.id,
        contact_id=contact.id,
        kind="dm",
        thread_key=thread_key,
        opened_at=now,
        last_message_at=now,
        initiated_by_agent=True,
    )
    if conversation.contact_id != contact.id:
        raise ValueError("the thread key belongs to another contact's conversation")
    check_outbound(session=session, conversation=conversation, purpose=purpose, now=now)
    session.add(conversation)
    session.flush()
    return conversation


def consent_texts(*, session: Session) -> list[ConsentText]:
    """Every consent text version, by purpose, language and newest version first."""
    return list(
        session.exec(
            select(ConsentText).order_by(
                col(ConsentText.purpose),
                col(ConsentText.language),
                col(ConsentText.version).desc(),
            )
        ).all()
    )


def add_consent_text(
    *, session: Session, purpose: str, language: str, text: str, created_by: int | None
) -> ConsentText:
    """Add the next version of a purpose's text in a language (not committed); versions are
    never changed, so every record keeps pointing at the words the person agreed to."""
    try:
        purpose = ConsentPurpose(purpose).value
    except ValueError:
        raise ConsentError("purpose") from None
    if language not in LANGUAGES:
        raise ConsentError("language")
    text = text.strip()
    if not text or len(text) > TEXT_MAX:
        raise ConsentError("text")
    latest = session.exec(
        select(func.max(ConsentText.version)).where(
            ConsentText.purpose == purpose, ConsentText.language == language
        )
    ).one()
    version = ConsentText(
        purpose=purpose,
        language=language,
        version=(latest or 0) + 1,
        text=text,
        created_by_user_id=created_by,
    )
    session.add(version)
    session.flush()
    return version
