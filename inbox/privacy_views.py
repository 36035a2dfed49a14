"""Data-subject requests in the browser, for the data-protection officer and admins.

Find the contact, look at what is stored, download it (JSON) or read it (HTML summary), and
erase it after typing the contact's id or handle. Every step is audited.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, abort, make_response, render_template, request
from flask_login import current_user
from sqlmodel import Session
from werkzeug.wrappers import Response

from inbox import audit, db
from inbox.auth import roles_required
from inbox.dsr import (
    UnknownContact,
    contact_counts,
    erase_contact,
    export_contact,
    find_contacts,
)
from inbox.models import Contact, Role
from inbox.tombstones import register
from inbox.types import utcnow

bp = Blueprint("privacy", __name__, url_prefix="/privacy")
_ROLES = (Role.dpo, Role.admin)


@bp.after_request
def _no_store(response: Response) -> Response:
    # Every page here shows a person's data: nothing of it may stay in a browser's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("utc_minute")
def utc_minute(value: str | None) -> str:
    """An ISO time from an export as "2026-11-02 09:30 UTC" (exports keep UTC, as stored)."""
    return f"{value[:16].replace('T', ' ')} UTC" if value else ""


@bp.get("/")
@roles_required(*_ROLES)
def find() -> str:
    """Find the contact a request is about, by handle, name, platform user id or e-mail."""
    query = request.args.get("q", "").strip()
    contacts = find_contacts(session=db.session(), query=query) if query else []
    if query:
        # Who searched, and how many people it showed; never what was typed (a person's name).
        _audit("dsr_search", None, detail={"results": len(contacts)})
    return render_template("privacy/find.html", query=query, contacts=contacts)


@bp.get("/contacts/<int:contact_id>")
@roles_required(*_ROLES)
def contact(contact_id: int) -> str:
    """The request page: what is stored about the contact, and what can be done."""
    session = db.session()
    found = _contact(session, contact_id)
    counts = contact_counts(session=session, contact_id=contact_id)
    _audit("dsr_view", contact_id)
    return render_template("privacy/contact.html", contact=found, counts=counts)


@bp.get("/contacts/<int:contact_id>/export.json")
@roles_required(*_ROLES)
def export_json(contact_id: int) -> Response:
    """Everything stored about the contact, as a JSON file to hand over."""
    data = _export(contact_id, "dsr_export")
    body = json.dumps(data, ensure_ascii=False, indent=2)
    response = make_response(body)
    response.mimetype = "application/json"
    # No name in the file name: it ends up in download folders and mail attachments.
    filename = f"contact-{contact_id}-{utcnow().date().isoformat()}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/contacts/<int:contact_id>/summary")
@roles_required(*_ROLES)
def summary(contact_id: int) -> str:
    """The same data as a readable, printable page."""
    return render_summary(_export(contact_id, "dsr_summary"))


def render_summary(data: dict[str, Any]) -> str:
    """The printable HTML summary of an export: messages and notes under their conversation."""
    threads: dict[int, list[dict[str, Any]]] = {c["id"]: [] for c in data["conversations"]}
    elsewhere = []
    for message in data["messages"]:
        if message["conversation_id"] in threads:
            threads[message["conversation_id"]].append(message)
        else:
            elsewhere.append(message)
    notes: dict[int, list[dict[str, Any]]] = {}
    for note in data["notes"]:
        notes.setdefault(note["conversation_id"], []).append(note)
    return render_template(
        "privacy/export_summary.html", data=data, threads=threads, notes=notes, elsewhere=elsewhere
    )


@bp.route("/contacts/<int:contact_id>/erase", methods=["GET", "POST"])
@roles_required(*_ROLES)
def erase(contact_id: int) -> str | tuple[str, int]:
    """Confirm an erasure by typing the contact's id or handle, then erase and report."""
    session = db.session()
    found = _contact(session, contact_id)
    counts = contact_counts(session=session, contact_id=contact_id)
    if request.method == "GET":
        return render_template("privacy/erase.html", contact=found, counts=counts, wrong=False)
    if not _confirmed(found, request.form.get("confirm", "")):
        page = render_template("privacy/erase.html", contact=found, counts=counts, wrong=True)
        return page, 400
    report = erase_contact(
        session=session,
        contact_id=contact_id,
        by_user_id=current_user.id,
        ip=request.remote_addr,
    )
    return render_template("privacy/erased.html", report=report)


def init_app(app: Flask) -> None:
    """Register the pages, and let ingestion in this app open the tombstone key."""
    from inbox.config import ConfigError, multi_fernet

    app.register_blueprint(bp)
    try:
        fernet = multi_fernet(app.config.get("ENCRYPTION_KEYS") or "")
    except ConfigError:
        return  # only demo and tests start without keys, and they have no tombstones yet
    register(engine=db.databases(app).inbox, fernet=fernet)


def _confirmed(contact: Contact, typed: str) -> bool:
    typed = typed.strip()
    if typed == str(contact.id):
        return True
    handle = (contact.handle or "").lower()
    return bool(handle) and typed.lstrip("@").lower() == handle


def _export(contact_id: int, action: str) -> dict[str, Any]:
    session = db.session()
    try:
        data = export_contact(session=session, contact_id=contact_id)
    except UnknownContact:
        abort(404)
    _audit(action, contact_id)
    return data


def _contact(session: Session, contact_id: int) -> Contact:
    found = session.get(Contact, contact_id)
    if found is None:
        abort(404)
    return found


def _audit(action: str, contact_id: int | None, detail: dict[str, Any] | None = None) -> None:
    session = db.session()
    audit.record(
        session=session,
        action=action,
        user_id=current_user.id,
        target_type="contact" if contact_id is not None else None,
        target_id=contact_id,
        ip=request.remote_addr,
        detail=detail,
        contact_id=contact_id,
    )
    session.commit()
