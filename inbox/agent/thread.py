"""One conversation: the whole thread, and what agents do with it."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from inbox import db
from inbox import thread_actions as actions
from inbox.agent import AGENT_ROLES, bp, get_conversation, visible_account_ids
from inbox.auth import audit_request, roles_required
from inbox.conversations import load_thread
from inbox.models import ConversationStatus, User
from inbox.thread_actions import ActionError
from inbox.types import utcnow
from inbox.users import active_agents


@bp.get("/<int:conversation_id>")
@roles_required(*AGENT_ROLES)
def thread(conversation_id: int, draft: str = "") -> str:
    """One conversation with its whole thread, the contact, the actions and the reply form."""
    session = db.session()
    get_conversation(conversation_id)
    found = load_thread(
        session=session, conversation_id=conversation_id, accounts=visible_account_ids()
    )
    if found is None:
        abort(404)
    audit_request(
        action="view_conversation",
        target_type="conversation",
        target_id=conversation_id,
        contact_id=found.conversation.contact_id,
    )
    session.commit()
    return render_template(
        "agent/thread.html",
        thread=found,
        draft=draft,
        now=utcnow(),
        agents=active_agents(session=session, account_id=found.conversation.account_id),
        snooze_min=utcnow().astimezone(_zone()).strftime("%Y-%m-%dT%H:%M"),
    )


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def _done(
    conversation_id: int, action: str, message: str, detail: dict[str, Any] | None = None
) -> Response:
    """Audit the action, commit it with the change, and go back to the thread saying so."""
    audit_request(
        action=action,
        target_type="conversation",
        target_id=conversation_id,
        detail=detail,
        contact_id=get_conversation(conversation_id).contact_id,
    )
    db.session().commit()
    flash(message, "success")
    return _back(conversation_id)


def _refused(conversation_id: int, message: str) -> Response:
    db.session().rollback()
    flash(message, "error")
    return _back(conversation_id)


def _back(conversation_id: int) -> Response:
    return redirect(url_for("agent.thread", conversation_id=conversation_id))


@bp.post("/<int:conversation_id>/status")
@roles_required(*AGENT_ROLES)
def set_status(conversation_id: int) -> Response:
    """Set a conversation open, pending or closed."""
    conversation = get_conversation(conversation_id)
    try:
        status = ConversationStatus(request.form.get("status", ""))
    except ValueError:
        abort(400)
    actions.set_status(session=db.session(), conversation=conversation, status=status)
    messages = {
        ConversationStatus.open: _("The conversation is open."),
        ConversationStatus.pending: _("The conversation is pending."),
        ConversationStatus.closed: _("The conversation is closed."),
    }
    return _done(conversation_id, f"status_{status.value}", messages[status])


@bp.post("/<int:conversation_id>/assign")
@roles_required(*AGENT_ROLES)
def assign(conversation_id: int) -> Response:
    """Assign the conversation to me, to a colleague, or to no one."""
    conversation = get_conversation(conversation_id)
    choice = request.form.get("assignee", "")
    if choice == "me":
        assignee_id: int | None = current_user.id
    elif choice == "":
        assignee_id = None
    elif choice.isdigit():
        assignee_id = int(choice)
    else:
        abort(400)
    try:
        actions.assign(session=db.session(), conversation=conversation, assignee_id=assignee_id)
    except ActionError:
        abort(400)
    if assignee_id is None:
        return _done(conversation_id, "unassign", _("The conversation is unassigned."))
    assignee = db.session().get(User, assignee_id)
    assert assignee is not None
    message = (
        _("The conversation is assigned to you.")
        if assignee_id == current_user.id
        else _("The conversation is assigned to %(name)s.", name=assignee.name)
    )
    return _done(conversation_id, "assign", message, {"assignee_id": assignee_id})


@bp.post("/<int:conversation_id>/snooze")
@roles_required(*AGENT_ROLES)
def snooze(conversation_id: int) -> Response:
    """Snooze the conversation until a preset or a chosen time."""
    conversation = get_conversation(conversation_id)
    now = utcnow()
    preset = request.form.get("preset", "")
    try:
        if preset:
            until = actions.preset_time(preset, now=now, zone=_zone())
        else:
            until = actions.parse_local_time(request.form.get("until", ""), zone=_zone())
        actions.snooze(session=db.session(), conversation=conversation, until=until, now=now)
    except ActionError as exc:
        if exc.reason == "unknown_preset":
            abort(400)
        if exc.reason == "snooze_in_past":
            return _refused(conversation_id, _("Snoozing needs a time in the future."))
        return _refused(conversation_id, _("Please choose a date and time to snooze until."))
    return _done(
        conversation_id,
        "snooze",
        _("Snoozed until %(time)s.", time=format_datetime(until, "short")),
        {"until": until.isoformat()},
    )


@bp.post("/<int:conversation_id>/unsnooze")
@roles_required(*AGENT_ROLES)
def unsnooze(conversation_id: int) -> Response:
    """Bring a snoozed conversation back now."""
    conversation = get_conversation(conversation_id)
    actions.unsnooze(session=db.session(), conversation=conversation)
    return _done(conversation_id, "unsnooze", _("The conversation is no longer snoozed."))


@bp.post("/<int:conversation_id>/tags")
@roles_required(*AGENT_ROLES)
def add_tag(conversation_id: int) -> Response:
    """Tag the conversation."""
    conversation = get_conversation(conversation_id)
    try:
        tag = actions.add_tag(session=db.session(), conversation=conversation, raw=_field("tag"))
    except ActionError:
        return _refused(conversation_id, _("A tag cannot be empty."))
    return _done(conversation_id, "tag_add", _("Tagged “%(tag)s”.", tag=tag), {"tag": tag})


@bp.post("/<int:conversation_id>/tags/remove")
@roles_required(*AGENT_ROLES)
def remove_tag(conversation_id: int) -> Response:
    """Take a tag off the conversation."""
    conversation = get_conversation(conversation_id)
    try:
        tag = actions.remove_tag(session=db.session(), conversation=conversation, raw=_field("tag"))
    except ActionError:
        abort(400)
    message = _("Tag “%(tag)s” removed.", tag=tag)
    return _done(conversation_id, "tag_remove", message, {"tag": tag})


@bp.post("/<int:conversation_id>/notes")
@roles_required(*AGENT_ROLES)
def add_note(conversation_id: int) -> Response:
    """Add an internal note; it is shown to colleagues and never sent."""
    session = db.session()
    conversation = get_conversation(conversation_id)
    author = session.get(User, current_user.id)
    assert author is not None
    try:
        note = actions.add_note(
            session=session, conversation=conversation, author=author, text=_field("text")
        )
    except ActionError as exc:
        if exc.reason == "note_too_long":
            return _refused(conversation_id, _("The note is too long."))
        return _refused(conversation_id, _("The note is empty."))
    return _done(conversation_id, "note_add", _("Note added."), {"note_id": note.id})


@bp.post("/<int:conversation_id>/spam")
@roles_required(*AGENT_ROLES)
def spam(conversation_id: int) -> Response:
    """Mark the conversation as spam (and close it), or as not spam."""
    conversation = get_conversation(conversation_id)
    is_spam = request.form.get("spam") == "1"
    actions.mark_spam(session=db.session(), conversation=conversation, spam=is_spam)
    if is_spam:
        return _done(conversation_id, "spam", _("Marked as spam and closed."))
    return _done(conversation_id, "not_spam", _("No longer marked as spam."))


def _field(name: str) -> str:
    return request.form.get(name, "")
