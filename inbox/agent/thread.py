"""One conversation: the whole thread, and what agents do with it."""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from inbox import db
from inbox.agent import AGENT_ROLES, bp, get_conversation
from inbox.auth import audit_request, roles_required
from inbox.conversations import load_thread
from inbox.models import ConversationStatus
from inbox.types import utcnow


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


@bp.post("/<int:conversation_id>/status")
@roles_required(*AGENT_ROLES)
def set_status(conversation_id: int) -> Response:
    """Close or reopen a conversation."""
    session = db.session()
    conversation = get_conversation(conversation_id)
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
