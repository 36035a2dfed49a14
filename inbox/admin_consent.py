"""Admin page for consent texts: every version per purpose and language, and new versions."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from inbox import db
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.consent import LANGUAGES, ConsentError, add_consent_text, consent_texts
from inbox.models import Role
from inbox.privacy_models import ConsentText

TEXT_ERRORS = {
    "purpose": _l("Choose a purpose."),
    "language": _l("Choose a language."),
    "text": _l("The consent text must not be empty (at most 20,000 characters)."),
}
PURPOSE_LABELS = {"service": _l("Service"), "marketing": _l("Marketing")}
LANGUAGE_LABELS = {"de": _l("German"), "en": _l("English")}


def _page(status: int = 200, form: dict[str, str] | None = None) -> tuple[str, int]:
    body = render_template(
        "admin/consent_texts.html",
        texts=consent_texts(session=db.session()),
        languages=LANGUAGES,
        purpose_labels=PURPOSE_LABELS,
        language_labels=LANGUAGE_LABELS,
        form=form or {},
    )
    return body, status


@bp.get("/consent-texts")
@roles_required(Role.admin)
def consent_texts_list() -> tuple[str, int]:
    """Every version of the consent texts, newest first per purpose and language.

    `?from=<id>` fills the form with that version, to change it into the next one.
    """
    base = db.session().get(ConsentText, request.args.get("from", 0, type=int))
    if base is None:
        return _page()
    return _page(form={"purpose": base.purpose, "language": base.language, "text": base.text})


@bp.post("/consent-texts")
@roles_required(Role.admin)
def consent_text_new() -> Response | tuple[str, int]:
    """Add a new version of a consent text; earlier versions stay as they were."""
    session = db.session()
    form = request.form
    try:
        text = add_consent_text(
            session=session,
            purpose=form.get("purpose", ""),
            language=form.get("language", ""),
            text=form.get("text", ""),
            created_by=current_user.id,
        )
    except ConsentError as exc:
        session.rollback()
        flash(str(TEXT_ERRORS[exc.reason]), "error")
        return _page(422, form.to_dict())
    except IntegrityError:
        # Another admin saved the same version a moment ago.
        session.rollback()
        flash(_("Someone else added a version just now; please check and save again."), "error")
        return _page(409, form.to_dict())
    audit_request(
        action="consent_text_created",
        target_type="consent_text",
        target_id=text.id,
        detail={"purpose": text.purpose, "language": text.language, "version": text.version},
    )
    session.commit()
    flash(
        _(
            "Version %(version)s of the %(purpose)s text (%(language)s) saved.",
            version=text.version,
            purpose=PURPOSE_LABELS[text.purpose],
            language=LANGUAGE_LABELS[text.language],
        ),
        "success",
    )
    return redirect(url_for("admin.consent_texts_list"))
