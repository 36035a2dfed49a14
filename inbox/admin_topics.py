"""Admin page for an account's topic taxonomy, with a preview on its latest anonymized records."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import Session, col, select
from werkzeug.wrappers import Response

from anonymizer.store import ResearchRecord
from anonymizer.topics import DEFAULT_RULES, Taxonomy, TaxonomyError
from inbox import db
from inbox.admin import bp
from inbox.auth import audit_request, roles_required
from inbox.models import Account, Role

PREVIEW_SIZE = 100
RULES_MAX = 50


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One anonymized record with the topics it has now and would have under the edited rules."""

    text: str
    before: list[str]
    after: list[str]


def rules_text(rules: dict[str, str]) -> str:
    """The rules as the text area shows them: `name: rule`, one a line."""
    return "\n".join(f"{name}: {rule}" for name, rule in rules.items())


def parse_rules_text(text: str) -> dict[str, str]:
    """`name: rule` lines back into rules, checked by Taxonomy.parse (TaxonomyError if not)."""
    rules: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, rule = line.partition(":")
        name, rule = name.strip(), rule.strip()
        if not colon or not name or not rule:
            raise TaxonomyError(_("line %(number)s: write it as name: rule", number=number))
        if name in rules:
            raise TaxonomyError(
                _("line %(number)s: the topic %(name)s comes twice", number=number, name=name)
            )
        rules[name] = rule
    if len(rules) > RULES_MAX:
        raise TaxonomyError(_("at most %(count)s topics", count=RULES_MAX))
    Taxonomy.parse(rules)
    return rules


def current_rules(account: Account) -> dict[str, str]:
    """The account's own rules, or the default set while it has none."""
    rules = account.settings.get("topics")
    if isinstance(rules, dict) and rules:
        return {str(k): str(v) for k, v in rules.items()}
    return dict(DEFAULT_RULES)


def preview(*, research: Session, account: Account, rules: dict[str, str]) -> list[PreviewRow]:
    """The account's latest anonymized records with their stored and their new topics."""
    taxonomy = Taxonomy.parse(rules)
    records = research.exec(
        select(ResearchRecord)
        .where(col(ResearchRecord.account_label) == account.display_name)
        .order_by(col(ResearchRecord.time_bucket).desc(), col(ResearchRecord.id))
        .limit(PREVIEW_SIZE)
    ).all()
    return [
        PreviewRow(r.redacted_text, list(r.topics), taxonomy.topics(r.redacted_text))
        for r in records
    ]


def _account(account_id: int) -> Account:
    account = db.session().get(Account, account_id)
    if account is None:
        abort(404)
    return account


def _page(account: Account, text: str, rows: list[PreviewRow] | None = None) -> str:
    custom = isinstance(account.settings.get("topics"), dict) and bool(account.settings["topics"])
    counts: dict[str, int] = {}
    for row in rows or []:
        for topic in row.after:
            counts[topic] = counts.get(topic, 0) + 1
    return render_template(
        "admin/topics.html",
        account=account,
        text=text,
        custom=custom,
        rows=rows,
        counts=counts,
        size=PREVIEW_SIZE,
    )


@bp.get("/accounts/<int:account_id>/topics")
@roles_required(Role.admin)
def account_topics(account_id: int) -> str:
    """An account's topic rules (the default set while it has none of its own)."""
    account = _account(account_id)
    return _page(account, rules_text(current_rules(account)))


@bp.post("/accounts/<int:account_id>/topics")
@roles_required(Role.admin)
def account_topics_save(account_id: int) -> Response | tuple[str, int]:
    """Preview the edited rules on the latest records, save them, or go back to the defaults."""
    session = db.session()
    account = _account(account_id)
    action = request.form.get("action", "preview")
    text = request.form.get("rules", "")
    old = sorted(current_rules(account)) if account.settings.get("topics") else None
    if action == "default":
        account.settings = {k: v for k, v in account.settings.items() if k != "topics"}
        session.add(account)
        audit_request(
            action="topics_changed",
            target_type="account",
            target_id=account_id,
            detail={"old": old, "new": None},
        )
        session.commit()
        flash(_("%(name)s uses the default topics again.", name=account.display_name), "success")
        return redirect(url_for("admin.account_topics", account_id=account_id))
    try:
        rules = parse_rules_text(text)
    except TaxonomyError as exc:
        flash(_("The topics are not valid: %(error)s", error=str(exc)), "error")
        return _page(account, text), 422
    if not rules:
        flash(_("Enter at least one topic, or go back to the default topics."), "error")
        return _page(account, text), 422
    if action != "save":
        rows = preview(research=db.research_session(), account=account, rules=rules)
        return _page(account, text, rows), 200
    account.settings = {**account.settings, "topics": rules}
    session.add(account)
    audit_request(
        action="topics_changed",
        target_type="account",
        target_id=account_id,
        detail={"old": old, "new": sorted(rules)},
    )
    session.commit()
    flash(_("Topics of %(name)s saved.", name=account.display_name), "success")
    return redirect(url_for("admin.account_topics", account_id=account_id))
