"""The agents' pages: the conversation list, a conversation with its actions, the composer."""

from __future__ import annotations

from flask import Blueprint, abort, g
from flask_login import current_user

from inbox import db
from inbox.accounts import visible_accounts
from inbox.models import Conversation, Role

bp = Blueprint("agent", __name__, url_prefix="/conversations")
AGENT_ROLES = (Role.agent, Role.admin)


def visible_account_ids() -> frozenset[int] | None:
    """The accounts the logged-in user works on (None: all), looked up once per request."""
    if "visible_accounts" not in g:
        g.visible_accounts = visible_accounts(
            session=db.session(), user_id=current_user.id, role=current_user.role
        )
    found: frozenset[int] | None = g.visible_accounts
    return found


def get_conversation(conversation_id: int) -> Conversation:
    """The conversation with this id, or a 404 when it is not there or not on an account of
    the user's: a stranger's conversation does not exist as far as they can tell."""
    conversation = db.session().get(Conversation, conversation_id)
    if conversation is None:
        abort(404)
    visible = visible_account_ids()
    if visible is not None and conversation.account_id not in visible:
        abort(404)
    return conversation


# The views register themselves on `bp`; they import it from here, so they come last.
from inbox.agent import (  # noqa: E402,F401
    compose,
    contact,
    conversation_list,
    presence_views,
    search,
    thread,
)
