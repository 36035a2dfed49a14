"""The agents' pages: the conversation list, a conversation with its actions, the composer."""

from __future__ import annotations

from flask import Blueprint, abort

from inbox import db
from inbox.models import Conversation, Role

bp = Blueprint("agent", __name__, url_prefix="/conversations")
AGENT_ROLES = (Role.agent, Role.admin)


def get_conversation(conversation_id: int) -> Conversation:
    """The conversation with this id, or a 404."""
    conversation = db.session().get(Conversation, conversation_id)
    if conversation is None:
        abort(404)
    return conversation


# The views register themselves on `bp`; they import it from here, so they come last.
from inbox.agent import (  # noqa: E402,F401
    compose,
    conversation_list,
    presence_views,
    search,
    thread,
)
