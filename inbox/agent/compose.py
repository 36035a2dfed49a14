"""The reply composer: send a signed reply through the official account, retry a refused one."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from connectors import ConnectorError
from inbox import db
from inbox.accounts import connector_for
from inbox.agent import AGENT_ROLES, bp, get_conversation
from inbox.agent.contact import parse_purpose, refusal_text
from inbox.agent.thread import thread
from inbox.auth import roles_required
from inbox.canned import canned_for, signature_for, with_signature
from inbox.config import multi_fernet
from inbox.conversations import Thread
from inbox.crypto import CredentialsError
from inbox.models import Delivery, Direction, Message, User
from inbox.presence import Present, missed_messages, others_present
from inbox.replies import ReplyError, deliver, send_reply
from inbox.workflow_models import CannedReply

PLATFORM_NAMES = {"x": "X", "facebook": "Facebook", "instagram": "Instagram", "demo": "Demo"}


@dataclass(frozen=True, slots=True)
class Composer:
    """What the composer shows besides the draft: who posts, limits, signature, colleagues."""

    platform: str
    limit: int | None
    length: int
    signature: str
    seen_id: int
    collision: bool
    canned: list[CannedReply]
    others: list[Present]
    # One-time key of this form: sending it twice stores and posts one reply.
    submission_key: str


SUBMISSION_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


@bp.app_template_global("composer_for")
def composer_for(thread: Thread, draft: str = "") -> Composer:
    """The composer's state for the logged-in agent on this thread (called by the template)."""
    session = db.session()
    account, conversation = thread.account, thread.conversation
    assert account.id is not None and conversation.id is not None
    signature = signature_for(session=session, account_id=account.id, user_id=current_user.id)
    limit, length = None, len(with_signature(draft, signature))
    try:
        connector = connector_for(account, multi_fernet(current_app.config["ENCRYPTION_KEYS"]))
        limit = connector.max_reply_length
        length = connector.reply_length(with_signature(draft, signature))
    except (ConnectorError, CredentialsError):
        pass  # the composer still works; sending will tell what is wrong with the account
    return Composer(
        platform=PLATFORM_NAMES.get(account.platform, account.platform),
        limit=limit,
        length=length,
        signature=signature,
        seen_id=max((item.message.id or 0 for item in thread.messages), default=0),
        collision=bool(g.get("composer_collision", False)),
        canned=canned_for(session=session, account_id=account.id, language=conversation.language),
        others=others_present(
            session=session, conversation_id=conversation.id, user_id=current_user.id
        ),
        submission_key=secrets.token_urlsafe(18),
    )


@bp.post("/<int:conversation_id>/reply")
@roles_required(*AGENT_ROLES)
def reply(conversation_id: int) -> Response | tuple[str, int]:
    """Send the agent's reply, unless something new arrived that the agent has not seen."""
    session = db.session()
    conversation = get_conversation(conversation_id)
    agent = session.get(User, current_user.id)
    assert agent is not None and agent.id is not None
    text = request.form.get("text", "")
    purpose = g.composer_purpose = parse_purpose(request.form.get("purpose"))
    seen_id = request.form.get("seen", type=int)
    if seen_id is not None and request.form.get("confirm") != "1":
        missed = missed_messages(
            session=session, conversation_id=conversation_id, seen_id=seen_id, user_id=agent.id
        )
        if missed:
            g.composer_collision = True
            return thread(conversation_id, draft=text), 409
    signature = signature_for(session=session, account_id=conversation.account_id, user_id=agent.id)
    key = request.form.get("submission", "")
    try:
        message = send_reply(
            session=session,
            fernet=multi_fernet(current_app.config["ENCRYPTION_KEYS"]),
            conversation=conversation,
            agent=agent,
            text=with_signature(text, signature),
            ip=request.remote_addr,
            purpose=purpose,
            submission_key=key if SUBMISSION_KEY.fullmatch(key) else None,
        )
    except ReplyError as exc:
        flash(_reply_error_text(exc), "error")
        return thread(conversation_id, draft=text), 422
    _flash_delivery(message)
    return redirect(url_for("agent.thread", conversation_id=conversation_id))


def _flash_delivery(message: Message) -> None:
    if message.delivery == Delivery.sent:
        flash(_("Reply sent."), "success")
    else:
        flash(_("The platform did not accept the reply; it is kept to retry."), "error")


def _reply_error_text(error: ReplyError) -> str:
    refused = refusal_text(error.reason)
    if refused is not None:
        return refused
    if error.reason == "too_long":
        return str(
            _(
                "The reply was not sent: it has %(length)s characters, "
                "the platform allows %(limit)s.",
                length=error.length,
                limit=error.limit,
            )
        )
    return str(_("The reply was not sent: it is empty."))


@bp.post("/<int:conversation_id>/messages/<int:message_id>/retry")
@roles_required(*AGENT_ROLES)
def retry(conversation_id: int, message_id: int) -> Response:
    """Try again to send a reply the platform refused."""
    session = db.session()
    get_conversation(conversation_id)
    message = session.get(Message, message_id)
    # Only our own replies are sent again: never a customer's message, never one sent already.
    if (
        message is None
        or message.conversation_id != conversation_id
        or message.direction != Direction.outbound
    ):
        abort(404)
    deliver(
        session=session,
        fernet=multi_fernet(current_app.config["ENCRYPTION_KEYS"]),
        message=message,
        user_id=current_user.id,
        ip=request.remote_addr,
    )
    refused = refusal_text(str(message.context.get("refused", "")))
    if message.delivery == Delivery.failed and refused is not None:
        flash(refused, "error")
    else:
        _flash_delivery(message)
    return redirect(url_for("agent.thread", conversation_id=conversation_id))
