"""The agents' pages: conversation list, thread, reply."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from inbox import db
from inbox.auth import audit_request, roles_required
from inbox.config import multi_fernet
from inbox.conversations import VIEWS, View, list_conversations, load_thread
from inbox.models import Conversation, ConversationStatus, Delivery, Message, Role, User
from inbox.replies import ReplyError, deliver, send_reply
from inbox.types import utcnow

bp = Blueprint("agent", __name__, url_prefix="/conversations")
AGENT_ROLES = (Role.agent, Role.admin)


def _view() -> View:
    view = request.args.get("view", "open")
    return view if view in VIEWS else "open"


@bp.get("")
@roles_required(*AGENT_ROLES)
def conversations() -> str:
    """The conversation list, most urgent first."""
    view = _view()
    rows = list_conversations(session=db.session(), view=view)
    return render_template(
        "agent/conversations.html", rows=rows, view=view, views=VIEWS, now=utcnow()
    )


@bp.get("/rows")
@roles_required(*AGENT_ROLES)
def conversation_rows() -> str:
    """Just the list's rows, fetched by the page every few seconds so new items appear."""
    rows = list_conversations(session=db.session(), view=_view())
    return render_template("agent/_rows.html", rows=rows, now=utcnow())


def _conversation(conversation_id: int) -> Conversation:
    conversation = db.session().get(Conversation, conversation_id)
    if conversation is None:
        abort(404)
    return conversation


@bp.get("/<int:conversation_id>")
@roles_required(*AGENT_ROLES)
def thread(conversation_id: int, draft: str = "") -> str:
    """One conversation with its whole thread and the reply form."""
    session = db.session()
    found = load_thread(session=session, conversation_id=conversation_id)
    if found is None:
        abort(404)
    audit_request(
        action="view_conversation",
        target_type="conversation",
        target_id=conversation_id,
    )
    session.commit()
    return render_template("agent/thread.html", thread=found, draft=draft, now=utcnow())


@bp.post("/<int:conversation_id>/reply")
@roles_required(*AGENT_ROLES)
def reply(conversation_id: int) -> Response | tuple[str, int]:
    """Send the agent's reply through the conversation's official account."""
    session = db.session()
    conversation = _conversation(conversation_id)
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


@bp.post("/<int:conversation_id>/status")
@roles_required(*AGENT_ROLES)
def set_status(conversation_id: int) -> Response:
    """Close or reopen a conversation."""
    session = db.session()
    conversation = _conversation(conversation_id)
    try:
        status = ConversationStatus(request.form.get("status", ""))
    except ValueError:
        abort(400)
    conversation.status = status
    conversation.closed_at = utcnow() if status == ConversationStatus.closed else None
    session.add(conversation)
    audit_request(
        action=f"status_{status.value}",
        target_type="conversation",
        target_id=conversation_id,
    )
    session.commit()
    return redirect(url_for("agent.thread", conversation_id=conversation_id))
