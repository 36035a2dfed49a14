"""The composer's helpers: presence heartbeats and canned replies filled in for a conversation."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from inbox import db
from inbox.agent import AGENT_ROLES, bp, get_conversation
from inbox.agent.thread import thread
from inbox.auth import audit_request, roles_required
from inbox.canned import find_canned, placeholder_values, resolve
from inbox.models import User
from inbox.presence import heartbeat, leave, others_present


@bp.post("/<int:conversation_id>/presence")
@roles_required(*AGENT_ROLES)
def presence(conversation_id: int) -> Response:
    """Note that this agent has the conversation open; answer who else has, and who types."""
    session = db.session()
    get_conversation(conversation_id)
    if request.form.get("leave") == "1":
        leave(session=session, conversation_id=conversation_id, user_id=current_user.id)
    else:
        heartbeat(
            session=session,
            conversation_id=conversation_id,
            user_id=current_user.id,
            typing=request.form.get("typing") == "1",
        )
    session.commit()
    others = others_present(
        session=session, conversation_id=conversation_id, user_id=current_user.id
    )
    return jsonify(others=[{"name": p.name, "typing": p.typing} for p in others])


def _canned_text(conversation_id: int) -> str:
    session = db.session()
    conversation = get_conversation(conversation_id)
    canned_id = request.args.get("canned", type=int)
    canned = (
        find_canned(session=session, canned_id=canned_id, account_id=conversation.account_id)
        if canned_id is not None
        else None
    )
    if canned is None:
        abort(404)
    agent = session.get(User, current_user.id)
    assert agent is not None
    values = placeholder_values(session=session, conversation=conversation, agent=agent)
    # The text names the customer: inserting it is an access like viewing the thread.
    audit_request(
        action="canned_reply_inserted",
        target_type="conversation",
        target_id=conversation_id,
        detail={"canned_reply_id": canned.id},
    )
    session.commit()
    return resolve(canned.text, values)


@bp.get("/<int:conversation_id>/canned.json")
@roles_required(*AGENT_ROLES)
def canned_json(conversation_id: int) -> Any:
    """A canned reply's text for this conversation, placeholders filled in, as JSON."""
    return jsonify(text=_canned_text(conversation_id))


@bp.get("/<int:conversation_id>/canned")
@roles_required(*AGENT_ROLES)
def canned_fill(conversation_id: int) -> Response | str:
    """The thread with a canned reply in the composer: the way to insert one without JS."""
    get_conversation(conversation_id)
    if not request.args.get("canned"):
        return redirect(url_for("agent.thread", conversation_id=conversation_id))
    return thread(conversation_id, draft=_canned_text(conversation_id))
