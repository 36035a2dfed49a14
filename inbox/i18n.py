"""German and English: picked from the browser, switchable, remembered in the session."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Flask, current_app, redirect, request, session
from flask_babel import Babel, format_date, format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

bp = Blueprint("i18n", __name__)

KIND_LABELS = {"mention": _l("Mention"), "comment": _l("Comment"), "dm": _l("Direct message")}
STATUS_LABELS = {"open": _l("open"), "pending": _l("pending"), "closed": _l("closed")}
DELIVERY_LABELS = {
    "pending": _l("sending…"),
    "sent": _l("sent"),
    "failed": _l("not sent"),
}


def _label(labels: dict[str, object]) -> object:
    def lookup(value: object) -> str:
        key = getattr(value, "value", value)
        return str(labels.get(str(key), key))

    return lookup


def select_locale() -> str | None:
    """The user's chosen language, else the browser's best match."""
    languages: list[str] = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    return request.accept_languages.best_match(languages)


@bp.post("/language")
def switch_language() -> Response:
    """Remember the chosen language and go back where the user was."""
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    target = request.form.get("next", "")
    # Only local paths: the form must not become an open redirect.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    return redirect(target)


def init_app(app: Flask) -> None:
    """Set up Flask-Babel with the package's translations."""
    Babel(app, locale_selector=select_locale, default_translation_directories="translations")
    app.jinja_env.globals.update(
        get_locale=get_locale,
        format_datetime=format_datetime,
        format_date=format_date,
        kind_label=_label(dict(KIND_LABELS)),
        status_label=_label(dict(STATUS_LABELS)),
        delivery_label=_label(dict(DELIVERY_LABELS)),
    )
    app.jinja_env.filters["to_date"] = date.fromisoformat
    app.register_blueprint(bp)
