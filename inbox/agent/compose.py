"""The reply composer: send a reply through the official account, retry a refused one."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from inbox import db
from inbox.agent import AGENT_ROLES, bp, get_conversation
from inbox.agent.thread import thread
from inbox.auth import roles_required
from inbox.config import multi_fernet
from inbox.models import Delivery, Message, User
from inbox.replies import ReplyError, deliver, send_reply


@bp.post("/<int:conversation_id>/reply")
@roles_required(*AGENT_ROLES)
def reply(conversation_id: int) -> Response | tuple[str, int]:
    """Send the agent's reply through the conversation's official account."""
    session = db.session()
    conversation = get_conversation(conversation_id)
    agent = session.get(User, current_user.id)
    assert agent is not None
    text = request.form.get("text", "")
    try:
        message = send_reply(
            session=session,
            fernet=multi_fernet(current_app.config["ENCRYPTION_KEYS"]),
            conversation=conversation,
            agent=agent,
            text=text,
            ip=request.remote_addr,
        )
    except ReplyError as exc:
        flash(_reply_error_text(exc), "error")
        return thread(conversation_id, draft=text), 422
    if message.delivery == Delivery.sent:
        flash(_("Reply sent."), "success")
    else:
        flash(_("The platform did not accept the reply; it is kept to retry."), "error")
    return redirect(url_for("agent.thread", conversation_id=conversation_id))


def _reply_error_text(error: ReplyError) -> str:
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
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        abort(404)
    deliver(
        session=session,
        fernet=multi_fernet(current_app.config["ENCRYPTION_KEYS"]),
        message=message,
    )
    if message.delivery == Delivery.sent:
        flash(_("Reply sent."), "success")
    else:
        flash(_("The platform did not accept the reply; it is kept to retry."), "error")
    return redirect(url_for("agent.thread", conversation_id=conversation_id))
