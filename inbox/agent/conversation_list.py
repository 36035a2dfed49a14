"""The conversation list and the rows it refreshes itself with."""

from __future__ import annotations

from flask import render_template, request

from inbox import db
from inbox.agent import AGENT_ROLES, bp
from inbox.auth import roles_required
from inbox.conversation_list import VIEWS, View, list_conversations
from inbox.types import utcnow


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
