"""A contact's page: profile, consent records, research objection, and writing first."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlmodel import col, select
from werkzeug.wrappers import Response

from inbox import audit, db
from inbox.agent import AGENT_ROLES, bp, visible_account_ids
from inbox.auth import roles_required
from inbox.config import multi_fernet
from inbox.consent import (
    CHANNELS,
    WINDOWED_PLATFORMS,
    ConsentError,
    ConsentRow,
    OutboundRefused,
    consent_texts,
    consents_of,
    open_direct_conversation,
    record_consent,
    withdraw_consent,
)
from inbox.models import Account, Contact, Conversation, Delivery, Role, User
from inbox.privacy_models import ConsentPurpose, ConsentRecord
from inbox.replies import ReplyError, send_reply
from inbox.research import object_to_research
from inbox.thread_actions import ActionError, parse_local_time
from inbox.types import utcnow

CONTACT_ROLES = (*AGENT_ROLES, Role.dpo)

REFUSALS = {
    "no_consent": _l(
        "Not sent: this person has not consented to be written to first on this channel."
    ),
    "no_marketing_consent": _l(
        "Not sent: this person has not consented to marketing messages on this channel."
    ),
    "write_first_impossible": _l(
        "Not sent: this platform does not let businesses write to a person first."
    ),
    "window_closed": _l(
        "Not sent: the platform's reply window after the customer's last message is over."
    ),
}
CONSENT_ERRORS = {
    "channel": _l("Choose a channel."),
    "purpose": _l("Choose a purpose."),
    "given_at": _l("The time of consent must be a valid time, not in the future."),
    "text": _l("The consent text does not exist or is for another purpose."),
    "source": _l("Say how the consent was given (at most 200 characters), or choose a text."),
}
PURPOSE_LABELS = {"service": _l("Service"), "marketing": _l("Marketing")}
CHANNEL_LABELS = {"dm": _l("Direct message"), "mention": _l("Mention"), "comment": _l("Comment")}


def refusal_text(reason: str) -> str | None:
    """The agent's words for an outbound-gate refusal, or None for another kind of error."""
    found = REFUSALS.get(reason)
    return str(found) if found is not None else None


def parse_purpose(value: str | None) -> str:
    """A purpose from a form (service when left out); 400 for anything else."""
    try:
        return ConsentPurpose(value or ConsentPurpose.service).value
    except ValueError:
        abort(400)


@bp.app_template_global("consent_summary")
def consent_summary(contact_id: int) -> list[ConsentRow]:
    """The contact's active consents, for the contact panel beside a thread."""
    return [r for r in consents_of(session=db.session(), contact_id=contact_id) if r.active]


def _contact(contact_id: int) -> Contact:
    """The contact, or 404 when missing or without a conversation on the agent's accounts."""
    session = db.session()
    contact = session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    accounts = _accounts_seen()
    if accounts is not None:
        shared = session.exec(
            select(Conversation.id)
            .where(
                Conversation.contact_id == contact_id,
                col(Conversation.account_id).in_(accounts),
            )
            .limit(1)
        ).first()
        if shared is None:
            abort(404)
    return contact


def _accounts_seen() -> frozenset[int] | None:
    # Data-protection officers handle consent and objections for everyone.
    return None if current_user.role == Role.dpo else visible_account_ids()


def _sending_accounts(contact: Contact) -> list[Account]:
    """The official accounts on the contact's platform the user may write from."""
    if current_user.role not in AGENT_ROLES:
        return []
    query = select(Account).where(Account.platform == contact.platform)
    accounts = visible_account_ids()
    if accounts is not None:
        query = query.where(col(Account.id).in_(accounts))
    return list(db.session().exec(query.order_by(col(Account.display_name))).all())


def _audit(action: str, contact: Contact, detail: dict[str, Any] | None = None) -> None:
    # The audit row names the person it touched, so a data-subject request finds it.
    audit.record(
        session=db.session(),
        action=action,
        user_id=current_user.id,
        target_type="contact",
        target_id=contact.id,
        contact_id=contact.id,
        ip=request.remote_addr,
        detail=detail,
    )


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def _page(
    contact: Contact, status: int = 200, form: dict[str, str] | None = None
) -> tuple[str, int]:
    session = db.session()
    assert contact.id is not None
    accounts = _accounts_seen()
    query = select(Conversation, Account).join(Account, col(Account.id) == Conversation.account_id)
    query = query.where(Conversation.contact_id == contact.id)
    if accounts is not None:
        query = query.where(col(Conversation.account_id).in_(accounts))
    conversations = session.exec(
        query.order_by(col(Conversation.last_message_at).desc()).limit(50)
    ).all()
    _audit("view_contact", contact)
    session.commit()
    body = render_template(
        "agent/contact.html",
        contact=contact,
        consents=consents_of(session=session, contact_id=contact.id),
        texts=consent_texts(session=session),
        conversations=conversations,
        sending_accounts=_sending_accounts(contact),
        write_first_possible=contact.platform not in WINDOWED_PLATFORMS,
        channels=CHANNELS,
        channel_labels=CHANNEL_LABELS,
        purpose_labels=PURPOSE_LABELS,
        now_local=utcnow().astimezone(_zone()).strftime("%Y-%m-%dT%H:%M"),
        form=form or {},
    )
    return body, status


@bp.get("/contacts/<int:contact_id>")
@roles_required(*CONTACT_ROLES)
def contact(contact_id: int) -> tuple[str, int]:
    """The contact's profile, consents and objection, and a form to write to them first."""
    return _page(_contact(contact_id))


def _back(contact: Contact) -> Response:
    return redirect(url_for("agent.contact", contact_id=contact.id))


def _consent_changed(
    action: str, contact: Contact, record: ConsentRecord, message: str
) -> Response:
    detail = {"consent_id": record.id, "channel": record.channel, "purpose": record.purpose}
    _audit(action, contact, detail)
    db.session().commit()
    flash(message, "success")
    return _back(contact)


@bp.post("/contacts/<int:contact_id>/consents")
@roles_required(*CONTACT_ROLES)
def consent_record(contact_id: int) -> Response | tuple[str, int]:
    """Record a consent the contact gave."""
    session = db.session()
    contact = _contact(contact_id)
    form = request.form
    now = utcnow()
    text_id = form.get("text_id", "")
    try:
        given_raw = form.get("given_at", "").strip()
        given_at = parse_local_time(given_raw, zone=_zone()) if given_raw else now
        record = record_consent(
            session=session,
            contact=contact,
            channel=form.get("channel", ""),
            purpose=form.get("purpose", ""),
            source=form.get("source", ""),
            text_id=int(text_id) if text_id.isdigit() else None,
            recorded_by=current_user.id,
            given_at=given_at,
            now=now,
        )
    except (ConsentError, ActionError) as exc:
        session.rollback()
        reason = exc.reason if isinstance(exc, ConsentError) else "given_at"
        flash(str(CONSENT_ERRORS[reason]), "error")
        return _page(contact, 422, form.to_dict())
    session.flush()
    return _consent_changed("consent_recorded", contact, record, _("Consent recorded."))


@bp.post("/contacts/<int:contact_id>/consents/<int:record_id>/withdraw")
@roles_required(*CONTACT_ROLES)
def consent_withdraw(contact_id: int, record_id: int) -> Response:
    """Record that the contact withdrew a consent; the record stays, marked withdrawn."""
    session = db.session()
    contact = _contact(contact_id)
    record = session.get(ConsentRecord, record_id)
    if record is None or record.contact_id != contact.id:
        abort(404)
    withdraw_consent(session=session, record=record, withdrawn_by=current_user.id, now=utcnow())
    return _consent_changed(
        "consent_withdrawn",
        contact,
        record,
        _("Consent withdrawn. Nothing more is sent on its strength."),
    )


@bp.post("/contacts/<int:contact_id>/objection")
@roles_required(*CONTACT_ROLES)
def research_objection(contact_id: int) -> Response:
    """Record the contact's objection to research use; their pending messages are dropped."""
    session = db.session()
    contact = _contact(contact_id)
    if request.form.get("clear") == "1":
        # Only the data-protection officer lifts an objection, after checking it was withdrawn.
        if current_user.role != Role.dpo:
            abort(403)
        contact.research_objection = False
        session.add(contact)
        _audit("research_objection_cleared", contact)
        session.commit()
        flash(_("The objection is lifted: new messages are used for research again."), "success")
        return _back(contact)
    dropped = object_to_research(session=session, contact=contact)
    _audit("research_objection", contact, {"dropped": dropped})
    session.commit()
    flash(
        _("Objection recorded: this person's messages are no longer used for research."), "success"
    )
    return _back(contact)


@bp.post("/contacts/<int:contact_id>/write")
@roles_required(*AGENT_ROLES)
def write_first(contact_id: int) -> Response | tuple[str, int]:
    """Write a direct message to the contact first, through an official account.

    A refusal stores nothing (no conversation, no message) and shows the form again with the
    text, so the agent can record the consent first and send then.
    """
    session = db.session()
    contact = _contact(contact_id)
    form = request.form
    account_id = form.get("account_id", type=int)
    if account_id is None:
        abort(400)
    allowed = {a.id: a for a in _sending_accounts(contact)}
    account = allowed.get(account_id)
    if account is None:
        abort(404)
    purpose = parse_purpose(form.get("purpose"))
    agent = session.get(User, current_user.id)
    assert agent is not None
    fernet = multi_fernet(current_app.config["ENCRYPTION_KEYS"])
    try:
        conversation = open_direct_conversation(
            session=session,
            fernet=fernet,
            account=account,
            contact=contact,
            purpose=purpose,
            now=utcnow(),
        )
        message = send_reply(
            session=session,
            fernet=fernet,
            conversation=conversation,
            agent=agent,
            text=form.get("text", ""),
            ip=request.remote_addr,
            purpose=purpose,
        )
    except OutboundRefused as refused:
        session.rollback()
        _audit("reply_refused", contact, {"reason": refused.reason, "purpose": purpose})
        session.commit()
        flash(refusal_text(refused.reason) or refused.reason, "error")
        return _page(contact, 422, form.to_dict())
    except ReplyError as exc:
        # Nothing was stored: the new conversation goes with the rolled-back transaction.
        session.rollback()
        flash(refusal_text(exc.reason) or _reply_problem(exc), "error")
        return _page(contact, 422, form.to_dict())
    if message.delivery == Delivery.sent:
        flash(_("Direct message sent."), "success")
    else:
        flash(_("The platform did not accept the message; it is kept to retry."), "error")
    return redirect(url_for("agent.thread", conversation_id=message.conversation_id))


def _reply_problem(error: ReplyError) -> str:
    if error.reason == "too_long":
        return str(
            _(
                "The message was not sent: it has %(length)s characters, "
                "the platform allows %(limit)s.",
                length=error.length,
                limit=error.limit,
            )
        )
    return str(_("The message was not sent: it is empty."))
